"""ConfluencePublisher through atlassian-python-api against the local fake, for Cloud (v2) and Data Center (v1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from atlassian import ConfluenceV2

from bot.errors import PublishError, StaleVersionError
from bot.publish.confluence import Attachment, ConfluencePublisher, PublishedPage, legal_labels
from tests.fakes.confluence import ConfluenceFake, FakePage, storage_error
from tests.fakes.http import Fault
from tests.fakes.tls import server_context, write_ca_bundle

TITLE = "Postmortem: PD-9876 — High severity API latency spikes in production"
BODY = (
    "<h2>Summary</h2><p>customer-api p99 latency stayed above 2&nbsp;s for 63 minutes after deploy 1003.</p>"
    '<ac:structured-macro ac:name="info"><ac:rich-text-body><p>Draft by Postmortem Bot</p>'
    "</ac:rich-text-body></ac:structured-macro>"
)
BODY_V2 = BODY + "<h2>Action items</h2><ul><li>Add a CI check on the DB pool size</li></ul>"
LABELS = ("postmortem", "SEV-1", "customer-api")
CHART = Attachment(name="timeline.png", data=b"\x89PNG\r\n\x1a\n\x00\x00\r\nchart", mime="image/png")
TIMEOUT = 0.5


@pytest.fixture
def fake() -> Iterator[ConfluenceFake]:
    with ConfluenceFake() as server:
        yield server


@pytest.fixture
def parent(fake: ConfluenceFake) -> FakePage:
    return fake.add_page(space_key="PM", title="Postmortems", body="<p>All our postmortems.</p>")


@pytest.fixture(params=["cloud", "datacenter"])
def cloud(request: pytest.FixtureRequest) -> bool:
    return request.param == "cloud"


def publisher_for(
    fake: ConfluenceFake, parent: FakePage, *, cloud: bool, **overrides: object
) -> ConfluencePublisher:
    options: dict = {
        "url": overrides.pop("url", None) or (fake.cloud_url if cloud else fake.dc_url),
        "username": fake.username,
        "api_token": fake.api_token,
        "space_key": "PM",
        "parent_page_id": parent.id,
        "cloud": cloud,
        "timeout": TIMEOUT,
        "max_retries": 3,
        "backoff_factor": 0.01,
    }
    return ConfluencePublisher(**{**options, **overrides})


@pytest.fixture
def publisher(fake: ConfluenceFake, parent: FakePage, cloud: bool) -> ConfluencePublisher:
    return publisher_for(fake, parent, cloud=cloud)


def publish(publisher: ConfluencePublisher, *, body: str = BODY, page_id: str | None = None) -> PublishedPage:
    return publisher.publish(title=TITLE, body=body, labels=LABELS, attachments=[CHART], page_id=page_id)


def page_writes(fake: ConfluenceFake) -> list[str]:
    """Method and status of every create or update of a page (v2 /pages, v1 /content)."""
    return [
        f"{r.method} {r.status}"
        for r in fake.requests_to(r"(/api/v2/pages|/rest/api/content)(/\d+)?/?$")
        if r.method in ("POST", "PUT")
    ]


class TestConfluencePublisher:
    def test_creates_the_page_under_the_parent_with_labels_and_attachment(
        self, fake: ConfluenceFake, parent: FakePage, publisher: ConfluencePublisher, cloud: bool
    ) -> None:
        """A first publish creates one page under the parent, labelled, with the chart attached."""
        published = publish(publisher)

        page = fake.pages[published.id]
        assert (page.title, page.body, page.parent_id, page.version) == (TITLE, BODY, parent.id, 1)
        assert page.labels == ["postmortem", "sev-1", "customer-api"]
        assert [(a.name, a.data, a.mime) for a in page.attachments.values()] == [
            (CHART.name, CHART.data, CHART.mime)
        ]
        expected_url = (
            f"{fake.url}/wiki/spaces/PM/pages/{page.id}"
            if cloud
            else f"{fake.url}/confluence/pages/viewpage.action?pageId={page.id}"
        )
        assert published == PublishedPage(id=page.id, url=expected_url, version=1, created=True)
        assert publisher.page_url(published) == publisher.page_url(page.id) == expected_url

    def test_second_publish_by_page_id_is_a_new_version(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Publishing again with the stored page id updates that page as version 2 and keeps version 1."""
        first = publish(publisher)
        second = publish(publisher, body=BODY_V2, page_id=first.id)

        assert (second.id, second.version, second.created) == (first.id, 2, False)
        assert [v.body for v in fake.pages[first.id].versions] == [BODY, BODY_V2]
        assert len(fake.pages_titled(TITLE)) == 1

    def test_second_publish_without_page_id_finds_the_page_by_title(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Without a page id the title is looked up and that page is updated, not duplicated."""
        first = publish(publisher)
        second = publish(publisher, body=BODY_V2)

        assert (second.id, second.version, second.created) == (first.id, 2, False)
        assert [p.body for p in fake.pages_titled(TITLE)] == [BODY_V2]

    def test_republishing_adds_no_duplicate_labels_and_replaces_the_attachment(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Labels are added once; an attachment of the same name is replaced, as its next version."""
        first = publish(publisher)
        publisher.publish(
            title=TITLE,
            body=BODY_V2,
            labels=["Postmortem", "sev-1"],
            attachments=[Attachment(name=CHART.name, data=b"new chart", mime="image/png")],
            page_id=first.id,
        )

        page = fake.pages[first.id]
        assert page.labels == ["postmortem", "sev-1", "customer-api"]
        assert [(a.name, a.data, a.version) for a in page.attachments.values()] == [
            (CHART.name, b"new chart", 2)
        ]

    def test_a_page_deleted_since_it_was_stored_is_written_again(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """A stored page id that Confluence no longer knows (404) falls back to the title, then a create."""
        first = publish(publisher)
        fake.pages[first.id].status = "trashed"

        again = publish(publisher, page_id=first.id)

        assert again.created and again.id != first.id
        assert [p.id for p in fake.pages_titled(TITLE) if p.status == "current"] == [again.id]

    def test_a_lost_create_answer_makes_no_second_page(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Confluence stores the page then answers 503: the publisher finds it and creates nothing more."""
        fake.fail_next_create(status=503)

        published = publish(publisher)

        assert [p.id for p in fake.pages_titled(TITLE)] == [published.id]
        assert (published.version, published.created) == (1, True)
        assert page_writes(fake) == ["POST 503"]

    def test_a_timeout_after_the_create_makes_no_second_page(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Confluence stores the page but never answers within the timeout: still exactly one page."""
        fake.fail_next_create(hang=3 * TIMEOUT)

        published = publish(publisher)

        assert [p.id for p in fake.pages_titled(TITLE)] == [published.id]
        assert fake.pages[published.id].labels == ["postmortem", "sev-1", "customer-api"]
        # The hung create is recorded once the fake lets go of it; there is no other.
        creates = fake.wait_for(lambda: fake.requests_to(r"(/api/v2/pages|/rest/api/content)/?$", "POST"))
        assert [r.status for r in creates] == [504]

    def test_a_stale_version_is_reread_and_retried_once(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Someone saves between our read and our write (409): we re-read and write on top of their version."""
        first = publish(publisher)
        edits = []

        def human_saves_first(page: FakePage) -> None:
            if not edits:
                edits.append(fake.edit_page(page.id, body="<p>edited by Ana</p>"))

        fake.before_update = human_saves_first

        second = publish(publisher, body=BODY_V2, page_id=first.id)

        assert second.version == 3
        assert [v.body for v in fake.pages[first.id].versions] == [BODY, "<p>edited by Ana</p>", BODY_V2]
        assert page_writes(fake) == ["POST 200", "PUT 409", "PUT 200"]

    def test_a_page_that_keeps_changing_raises_stale_version_error(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """A second 409 after the re-read gives up with StaleVersionError instead of looping."""
        first = publish(publisher)
        fake.before_update = lambda page: fake.edit_page(page.id, body="<p>edited again</p>")

        with pytest.raises(StaleVersionError, match="keeps changing"):
            publish(publisher, body=BODY_V2, page_id=first.id)

        assert page_writes(fake) == ["POST 200", "PUT 409", "PUT 409"]

    def test_a_body_that_is_not_well_formed_gives_confluences_message(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """A 400 for broken XHTML becomes a PublishError carrying Confluence's own words; no page is made."""
        with pytest.raises(PublishError, match=r"answered 400 to POST .*Error parsing xhtml: mismatched tag"):
            publish(publisher, body="<p>pool size <b>50 to 5</p>")

        assert fake.pages_titled(TITLE) == []
        assert page_writes(fake) == ["POST 400"]

    def test_a_broken_body_on_update_gives_confluences_message(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """The same on an update: the message is read from v2's errors[] or v1's message."""
        first = publish(publisher)

        with pytest.raises(PublishError, match=r"answered 400 to PUT .*undefined entity"):
            publish(publisher, body="<p>R&amp;D</p><p>&bogus;</p>", page_id=first.id)

        assert fake.pages[first.id].version == 1

    def test_a_page_someone_made_with_the_title_is_updated(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher, parent: FakePage
    ) -> None:
        """A page that already has the title in the space is updated rather than refused as a duplicate."""
        by_hand = fake.add_page(space_key="PM", title=TITLE, body="<p>notes</p>", parent_id=parent.id)

        published = publish(publisher)

        assert (published.id, published.version, published.created) == (by_hand.id, 2, False)
        assert len(fake.pages_titled(TITLE)) == 1

    def test_a_duplicate_title_created_during_our_create_is_updated(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Another writer takes the title between our look-up and our create (400): we update their page."""
        rivals = []

        def rival_creates_first() -> None:
            if not rivals:
                rivals.append(fake.add_page(space_key="PM", title=TITLE, body="<p>theirs</p>"))

        fake.before_create = rival_creates_first

        published = publish(publisher)

        assert (published.id, published.created) == (rivals[0].id, False)
        assert [p.body for p in fake.pages_titled(TITLE)] == [BODY]
        assert page_writes(fake) == ["POST 400", "PUT 200"]

    def test_a_title_taken_in_another_case_is_a_clear_error(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Confluence compares titles case-blind: the duplicate-title refusal reaches the user as it was said."""
        fake.add_page(space_key="PM", title=TITLE.upper())

        with pytest.raises(PublishError, match="A page with this title already exists"):
            publish(publisher)

        assert fake.pages_titled(TITLE) == []

    def test_bad_credentials_name_the_settings(
        self, fake: ConfluenceFake, parent: FakePage, cloud: bool
    ) -> None:
        """A 401 becomes a PublishError naming CONFLUENCE_USERNAME and CONFLUENCE_API_TOKEN."""
        publisher = publisher_for(fake, parent, cloud=cloud, api_token="expired-token")

        with pytest.raises(PublishError, match="CONFLUENCE_USERNAME and CONFLUENCE_API_TOKEN") as caught:
            publish(publisher)

        assert "expired-token" not in str(caught.value)
        assert fake.pages_titled(TITLE) == []

    def test_an_unknown_space_is_a_clear_error(
        self, fake: ConfluenceFake, parent: FakePage, cloud: bool
    ) -> None:
        """A space key Confluence does not know is refused with a message naming it."""
        publisher = publisher_for(fake, parent, cloud=cloud, space_key="NOPE")

        with pytest.raises(PublishError, match="NOPE"):
            publish(publisher)

        assert fake.pages_titled(TITLE) == []

    def test_a_429_waits_for_retry_after(self, fake: ConfluenceFake, publisher: ConfluencePublisher) -> None:
        """A 429 is retried after the Retry-After it names, for a read and for a write (a POST) alike."""
        fake.faults.add(
            Fault(kind="429", times=1, retry_after=1, path=r"(/api/v2/pages|/rest/api/content)/?$")
        )
        fake.faults.add(Fault(kind="429", times=1, retry_after=1, path=r"/label$"))

        published = publish(publisher)

        for pattern in (r"(/api/v2/pages|/rest/api/content)/?$", r"/label$"):
            limited, retried = fake.requests_to(pattern)[:2]
            assert (limited.status, retried.status) == (429, 200)
            assert retried.received_at - limited.answered_at >= 0.95
        assert fake.pages[published.id].labels == ["postmortem", "sev-1", "customer-api"]
        assert len(fake.pages_titled(TITLE)) == 1

    def test_a_5xx_burst_on_reads_is_retried(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Two 503s on the title look-up are retried with backoff and the publish succeeds."""
        fake.faults.add(Fault(kind="5xx", times=2, status=503, path=r"(/api/v2/pages|/rest/api/content)/?$"))

        published = publish(publisher)

        lookups = fake.requests_to(r"(/api/v2/pages|/rest/api/content)/?$", "GET")
        assert [r.status for r in lookups] == [503, 503, 200]
        assert published.created and len(fake.pages_titled(TITLE)) == 1

    def test_a_5xx_burst_on_creates_looks_again_before_each_create(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Creates refused with 502 are not resent blindly: each new attempt looks the title up first."""
        fake.fail_next_create(status=502, stored=False)
        fake.fail_next_create(status=502, stored=False)

        published = publish(publisher)

        calls = [(r.method, r.status) for r in fake.requests_to(r"(/api/v2/pages|/rest/api/content)/?$")]
        assert calls == [("GET", 200), ("POST", 502)] * 2 + [("GET", 200), ("POST", 200)]
        assert [p.id for p in fake.pages_titled(TITLE)] == [published.id]

    def test_a_5xx_burst_on_labels_is_retried(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """Label writes answered 500 are sent again (adding a label is idempotent)."""
        fake.faults.add(Fault(kind="5xx", times=2, status=500, path=r"/label$"))

        published = publish(publisher)

        assert [r.status for r in fake.requests_to(r"/label$", "POST")] == [500, 500, 200]
        assert fake.pages[published.id].labels == ["postmortem", "sev-1", "customer-api"]

    def test_a_lasting_outage_ends_with_confluences_answer(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """When every retry gets a 503 the error says so, after a bounded number of tries."""
        fake.faults.add(
            Fault(kind="5xx", times=None, status=503, path=r"(/api/v2/(pages|spaces)|/rest/api/content)/?$")
        )

        with pytest.raises(PublishError, match="answered 503 to GET .*Service Unavailable"):
            publish(publisher)

        assert len(fake.requests) == 4  # the first try and max_retries=3 more

    def test_https_with_a_private_ca_is_trusted_through_ca_bundle(self, tmp_path: Path, cloud: bool) -> None:
        """A Confluence whose certificate a private CA signed is reached with CA_BUNDLE, and refused without."""
        with ConfluenceFake(tls=server_context()) as secure:
            parent = secure.add_page(space_key="PM", title="Postmortems")
            trusting = publisher_for(secure, parent, cloud=cloud, ca_bundle=write_ca_bundle(tmp_path))
            doubting = publisher_for(secure, parent, cloud=cloud, max_retries=0)

            published = publish(trusting)
            with pytest.raises(PublishError, match="set CA_BUNDLE"):
                publish(doubting)

        assert published.url.startswith("https://127.0.0.1:")

    def test_an_unreachable_confluence_names_the_url(self, parent: FakePage, cloud: bool) -> None:
        """Nothing listening at CONFLUENCE_URL is a PublishError naming the setting and the refusal."""
        with ConfluenceFake() as gone:
            url = gone.cloud_url if cloud else gone.dc_url
        publisher = publisher_for(
            gone, parent, cloud=cloud, url=url, max_retries=0
        )  # nothing listens there now

        with pytest.raises(
            PublishError, match=r"Cannot reach Confluence at .* \(CONFLUENCE_URL\): .*refused"
        ):
            publish(publisher)

    def test_a_hang_ends_with_a_clear_timeout_error(
        self, fake: ConfluenceFake, publisher: ConfluencePublisher
    ) -> None:
        """A Confluence that never answers gives a PublishError naming the timeout, within a few timeouts."""
        fake.faults.add(Fault(kind="hang", times=None, seconds=30.0))
        started = time.monotonic()

        with pytest.raises(PublishError, match=rf"did not answer GET /\S+ within {TIMEOUT}s"):
            publish(publisher)

        assert time.monotonic() - started < 4 * TIMEOUT
        assert fake.pages_titled(TITLE) == []


class TestLegalLabels:
    def test_labels_are_lower_case_confluence_legal_and_unique(self) -> None:
        """Labels become lower-case letters, digits, - and _, each once, in their first order."""
        raw = ["Postmortem", "SEV-1", "customer api", "customer-api", "P1!", "  ", "auth_service"]
        assert legal_labels(raw) == ["postmortem", "sev-1", "customer-api", "p1", "auth_service"]


class TestConfluenceFake:
    @pytest.fixture
    def fake(self) -> Iterator[ConfluenceFake]:
        spaces = (("PM", "Postmortems"), ("ENG", "Engineering"), ("OPS", "Operations"))
        with ConfluenceFake(spaces=spaces) as server:
            yield server

    def get(self, fake: ConfluenceFake, path: str, **params: object) -> requests.Response:
        return requests.get(
            f"{fake.url}{path}", params=params, auth=(fake.username, fake.api_token), timeout=5
        )

    def test_v2_cursor_links_carry_every_filter(self, fake: ConfluenceFake) -> None:
        """Each v2 page names the next in _links.next and the Link header, keeping the filters; the last has none."""
        space_id = fake.spaces["PM"].id
        for n in range(3):
            fake.add_page(space_key="PM", title=f"Postmortem {n}")
        fake.add_page(space_key="ENG", title="Runbook")

        titles, path, params = [], "/wiki/api/v2/pages", {"space-id": space_id, "limit": 2}
        while True:
            answer = self.get(fake, path, **params)
            titles += [p["title"] for p in answer.json()["results"]]
            following = answer.json()["_links"].get("next")
            if following is None:
                assert "Link" not in answer.headers
                break
            assert answer.headers["Link"].startswith(f'<{following}>; rel="next"')
            assert f"space-id={space_id}" in following and "limit=2" in following and "cursor=" in following
            path, params = following, {}

        assert titles == ["Postmortem 0", "Postmortem 1", "Postmortem 2"]

    def test_the_library_follows_the_cursors(self, fake: ConfluenceFake) -> None:
        """ConfluenceV2.get_spaces walks every cursor page of the fake (and warns on construction)."""
        with pytest.warns(DeprecationWarning, match="V1 methods are deprecated"):
            client = ConfluenceV2(url=fake.cloud_url, username=fake.username, password=fake.api_token)

        assert [s["key"] for s in client.get_spaces(limit=1)] == ["PM", "ENG", "OPS"]
        assert len(fake.requests_to("/spaces$")) == 3

    def test_an_unknown_cursor_is_refused_in_the_v2_error_shape(self, fake: ConfluenceFake) -> None:
        """A cursor the fake did not hand out is a 400 with v2's errors[] body."""
        answer = self.get(fake, "/wiki/api/v2/spaces", cursor="not-a-cursor")

        assert answer.status_code == 400
        assert answer.json() == {
            "errors": [
                {
                    "status": 400,
                    "code": "INVALID_REQUEST_PARAMETER",
                    "title": "Invalid cursor",
                    "detail": None,
                }
            ]
        }

    @pytest.mark.parametrize("number", [1, 3])
    def test_v2_update_wants_exactly_the_next_version(self, fake: ConfluenceFake, number: int) -> None:
        """A v2 PUT must carry current+1: the same or a skipped number is a 409 and leaves the page alone."""
        page = fake.add_page(space_key="PM", title="Postmortem", body="<p>one</p>")
        data = {
            "id": page.id,
            "status": "current",
            "title": page.title,
            "body": {"representation": "storage", "value": "<p>two</p>"},
            "version": {"number": number},
        }
        auth = (fake.username, fake.api_token)

        stale = requests.put(f"{fake.url}/wiki/api/v2/pages/{page.id}", json=data, auth=auth, timeout=5)
        data["version"] = {"number": 2, "message": "ours"}
        fresh = requests.put(f"{fake.url}/wiki/api/v2/pages/{page.id}", json=data, auth=auth, timeout=5)

        assert stale.status_code == 409
        assert (
            stale.json()["errors"][0]["title"]
            == "Version must be incremented on update. Current version is: 1"
        )
        assert fresh.status_code == 200 and fresh.json()["version"]["number"] == 2
        assert [(v.number, v.body, v.message) for v in page.versions] == [
            (1, "<p>one</p>", ""),
            (2, "<p>two</p>", "ours"),
        ]

    def test_v1_update_conflict_uses_the_v1_error_shape(self, fake: ConfluenceFake) -> None:
        """Data Center answers a stale version with statusCode/message/data."""
        page = fake.add_page(space_key="PM", title="Postmortem")
        data = {"id": page.id, "type": "page", "title": page.title, "version": {"number": 1}}

        answer = requests.put(
            f"{fake.dc_url}/rest/api/content/{page.id}",
            json=data,
            auth=(fake.username, fake.api_token),
            timeout=5,
        )

        assert answer.status_code == 409
        assert answer.json()["statusCode"] == 409
        assert answer.json()["message"] == "Version must be incremented on update. Current version is: 1"
        assert answer.json()["data"]["successful"] is False

    def test_storage_check_accepts_confluence_markup_and_rejects_broken_xhtml(self) -> None:
        """HTML entities and ac:/ri: elements are fine; a mismatched tag or a bare & is not."""
        good = '<p>a&nbsp;b &mdash; <ac:link><ri:page ri:content-title="Runbook"/></ac:link></p>'
        assert storage_error(good) is None
        assert storage_error("<p>x</p>\n<p>a <b>b</p>") == (
            "Error parsing xhtml: mismatched tag\n at [row,col {unknown-source}]: [2,12]"
        )
        assert storage_error("<p>R&D</p>").startswith("Error parsing xhtml: not well-formed")

    def test_uploads_need_the_xsrf_header(self, fake: ConfluenceFake) -> None:
        """A multipart upload without X-Atlassian-Token: no-check is refused with 403, as Confluence does."""
        page = fake.add_page(space_key="PM", title="Postmortem")
        url = f"{fake.url}/wiki/rest/api/content/{page.id}/child/attachment"
        files = {"file": ("chart.png", b"\x89PNG", "image/png")}
        auth = (fake.username, fake.api_token)

        refused = requests.post(url, files=files, auth=auth, timeout=5)
        accepted = requests.post(
            url, files=files, auth=auth, headers={"X-Atlassian-Token": "no-check"}, timeout=5
        )

        assert refused.status_code == 403
        assert accepted.status_code == 200 and accepted.json()["results"][0]["title"] == "chart.png"
        assert page.attachments["chart.png"].data == b"\x89PNG"

    def test_fail_after_create_stores_the_page_then_answers_5xx(self, fake: ConfluenceFake) -> None:
        """The exactly-once switch: the page exists although the answer was a 503."""
        data = {
            "spaceId": fake.spaces["PM"].id,
            "status": "current",
            "title": "Postmortem",
            "body": {"storage": {"value": "<p>x</p>"}},
        }
        fake.fail_next_create(status=503)

        answer = requests.post(
            f"{fake.url}/wiki/api/v2/pages", json=data, auth=(fake.username, fake.api_token), timeout=5
        )

        assert answer.status_code == 503
        assert [p.body for p in fake.pages_titled("Postmortem")] == ["<p>x</p>"]
