"""Confluence faults during Approve, end to end, on Confluence Cloud (REST v2) and Data Center (REST v1).

One `python -m bot` process per flavour (HTTP_TIMEOUT_SECONDS=1, HTTP_MAX_RETRIES=2) serves the cases,
each on an empty store and fresh fakes: /postmortem drafts the preview, then Approve meets the fault. The
Confluence fake stores a page and then fails the create (`fail_next_create`), refuses a body before storing
it (400), answers 409 while someone keeps saving the page (`before_update`), or rate-limits with
Retry-After. Every case ends with exactly one page, its link posted once and one PagerDuty note; when the
fault outlasts the publisher's own retries, the preview says "Publishing failed" and its Retry finishes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.ids import ActionId
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import (
    ANA,
    Fakes,
    Sent,
    Workspace,
    fakes,  # noqa: F401 - the module's fakes, a fixture
)
from tests.e2e.test_review_flow import EDITED_SUMMARY, SUMMARY_BLOCK, text_of
from tests.fakes.confluence import FakePage
from tests.fakes.http import Fault
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll
from tests.reliability.faults import (
    Shared,
    acked_in_time,
    drafted,
    fresh_workspace,
    published_once,
    start_shared,
    status_line,
    told,
    wait_for_preview,
)

RETRY_AFTER = 1
FAILED = ":x: Publishing failed: "


@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def shared(
    request: pytest.FixtureRequest,
    fakes: Fakes,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    """One bot per Confluence flavour."""
    tmp = tmp_path_factory.mktemp(f"confluence-{request.param}")
    with start_shared(fakes, tmp, name=f"confluence-{request.param}", flavour=request.param) as bot:
        yield bot


@pytest.fixture
def ws(fakes: Fakes, shared: Shared) -> Workspace:  # noqa: F811
    return fresh_workspace(fakes, shared)


def pages_path(ws: Workspace, flavour: str) -> str:
    """Where pages are created and looked up by title: v2 `pages` on Cloud, v1 `content` on Data Center."""
    return (
        r"^/wiki/api/v2/pages$"
        if flavour == "cloud"
        else rf"^{ws.fakes.confluence.context_path}/rest/api/content/?$"
    )


def creates(ws: Workspace) -> list[Any]:
    return [
        r
        for r in ws.fakes.confluence.requests
        if r.method == "POST" and r.path.rstrip("/").endswith(("/pages", "/content"))
    ]


def approve(ws: Workspace, bot: BotProcess, preview: dict[str, Any], action: str = ActionId.APPROVE) -> Sent:
    sent = ws.click(bot, preview, action)
    acked_in_time(ws, sent)
    return sent


def failed_preview(ws: Workspace, ts: str) -> dict[str, Any]:
    """The preview once it says "Publishing failed", with Retry first."""
    preview = wait_for_preview(ws, ts, status=FAILED)
    assert action_ids(preview) == [ActionId.RETRY_PUBLISH, ActionId.EDIT, ActionId.DISCARD]
    return preview


def edit_summary(ws: Workspace, bot: BotProcess, preview: dict[str, Any]) -> dict[str, Any]:
    """Edit on the preview, the summary rewritten in the modal: the preview once it shows the new summary."""
    acked_in_time(ws, ws.click(bot, preview, ActionId.EDIT))
    view = poll(lambda: ws.opened_views(), what="the Edit modal")[-1]["view"]
    acked_in_time(ws, ws.submit(bot, view, {SUMMARY_BLOCK: EDITED_SUMMARY}))
    return poll(
        lambda: (m := ws.latest(preview["ts"])) and EDITED_SUMMARY in text_of(m) and m,
        what="the edited preview",
    )


class TestCreateAnswerLost:
    """Confluence: the create's answer lost"""

    @pytest.mark.parametrize("how", ["5xx", "hang"])
    @pytest.mark.case({"5xx": "503 after the page was stored", "hang": "the create held past the timeout"})
    def test_a_lost_create_answer_is_looked_up_not_repeated(
        self, ws: Workspace, shared: Shared, how: str, figures
    ) -> None:
        """Confluence stores the page, then answers 503 (or holds the answer past the client's timeout): the
        bot looks the title up instead of creating again, and publishes once; the preview says Published."""
        _, preview = drafted(ws, shared.bot)
        if how == "5xx":
            ws.fakes.confluence.fail_next_create(status=503)
        else:
            ws.fakes.confluence.fail_next_create(hang=1.5)
        approve(ws, shared.bot, preview)
        page = published_once(ws, preview["ts"])
        assert page.version == 1
        # A held create is recorded once the fake lets go of it, after the client gave up on it.
        poll(lambda: len(creates(ws)) == 1, what="the one create, answered")
        figures["creates sent"] = len(creates(ws))

    @pytest.mark.case("503 after the page was stored, then the look-up failing too")
    def test_a_failed_publication_is_shown_and_retry_finishes_it(
        self, ws: Workspace, shared: Shared, figures
    ) -> None:
        """The create is stored then answered 503, and every look-up after it fails as well: the preview says
        "Publishing failed" with the reason and Retry, the clicker is told; Retry finds the page and
        finishes it, still one page."""
        fake = ws.fakes.confluence
        _, preview = drafted(ws, shared.bot)
        fake.fail_next_create(status=503)
        fake.before_create = lambda: fake.faults.add(
            Fault("5xx", times=None, path=pages_path(ws, shared.flavour), status=503)
        )
        sent = approve(ws, shared.bot, preview)
        failed = failed_preview(ws, preview["ts"])
        said = told(ws, sent, starts="Publishing PD-9876 failed: ")
        assert "503" in said and "503" in status_line(failed), said
        assert len(ws.pages()) == 1, "the stored page is the only one"
        assert ws.fakes.pagerduty.posted_notes == [] and len(ws.posted()) == 1

        fake.before_create = None
        fake.faults.clear()
        approve(ws, shared.bot, failed, ActionId.RETRY_PUBLISH)
        published_once(ws, preview["ts"])
        figures["creates sent"] = len(creates(ws))
        assert len(creates(ws)) == 1


class TestRefusedWrites:
    """Confluence: writes refused"""

    @pytest.mark.case("400 on the page body")
    def test_a_refused_body_is_shown_and_retry_publishes(self, ws: Workspace, shared: Shared) -> None:
        """Confluence refuses the create with 400 before storing anything: the preview says "Publishing
        failed" with Confluence's answer and Retry; nothing is half made; Retry publishes one page."""
        _, preview = drafted(ws, shared.bot)
        ws.fakes.confluence.fail_next_create(status=400, stored=False)
        sent = approve(ws, shared.bot, preview)
        failed = failed_preview(ws, preview["ts"])
        said = told(ws, sent, starts="Publishing PD-9876 failed: Confluence answered 400 to POST ")
        assert "400" in status_line(failed), said
        assert ws.pages() == [] and ws.fakes.pagerduty.posted_notes == []

        approve(ws, shared.bot, failed, ActionId.RETRY_PUBLISH)
        assert published_once(ws, preview["ts"]).version == 1

    @pytest.mark.case("409 while someone keeps saving the page")
    def test_a_stale_version_is_shown_and_publish_update_writes_over_it(
        self, ws: Workspace, shared: Shared, figures
    ) -> None:
        """An edit published as an update while someone saves the page before each of the bot's writes: two
        409s, the update is given up, the preview still shows the live version with the failure and
        "Publish update"; pressed again, it writes the edit as the next version of the same page."""
        fake = ws.fakes.confluence
        _, preview = drafted(ws, shared.bot)
        approve(ws, shared.bot, preview)
        page = published_once(ws, preview["ts"])
        edited = edit_summary(ws, shared.bot, preview)

        def someone_saves(target: FakePage) -> None:
            fake.edit_page(target.id, body=target.body + "<p>typo fixed by hand</p>")

        fake.before_update = someone_saves
        sent = approve(ws, shared.bot, edited)
        said = told(ws, sent, starts="Publishing PD-9876 failed: ")
        assert "keeps changing" in said and "Publish again" in said, said
        shown = poll(
            lambda: (m := ws.latest(preview["ts"])) and "keeps changing" in status_line(m) and m,
            what="the failed update in the preview",
        )
        assert status_line(shown).startswith(f":white_check_mark: Published by <@{ANA}>")
        assert ActionId.APPROVE in action_ids(shown)
        assert EDITED_SUMMARY not in fake.pages[page.id].body

        fake.before_update = None
        hand_saved = fake.pages[page.id].version
        approve(ws, shared.bot, shown)
        # The update's last word in the channel: its link, posted after the preview is refreshed.
        poll(
            lambda: [p for p in ws.posted() if "was updated by" in p.get("text", "")],
            what="the link to the updated page",
        )
        final = ws.latest(preview["ts"])
        assert final is not None and status_line(final).startswith(
            f":white_check_mark: Published by <@{ANA}>"
        )
        assert "keeps changing" not in status_line(final) and EDITED_SUMMARY in fake.pages[page.id].body
        assert fake.pages[page.id].version == hand_saved + 1
        assert [p.id for p in ws.pages()] == [page.id]
        figures["409 answers"] = len([r for r in fake.requests if r.status == 409])


class TestRateLimited:
    """Confluence: a 429 storm"""

    @pytest.mark.case("429s with Retry-After on the look-up and the label write")
    def test_rate_limits_are_waited_out(self, ws: Workspace, shared: Shared, figures) -> None:
        """Confluence answers 429 (Retry-After: 1) to the title look-up once and to the label write twice:
        each wait is honoured, the POST is sent again (Confluence did nothing with it) and one page results."""
        fake = ws.fakes.confluence
        _, preview = drafted(ws, shared.bot)
        fake.faults.add(Fault("429", times=1, path=pages_path(ws, shared.flavour), retry_after=RETRY_AFTER))
        fake.faults.add(Fault("429", times=2, path=r"/label$", retry_after=RETRY_AFTER))
        approve(ws, shared.bot, preview)
        page = published_once(ws, preview["ts"])
        assert page.version == 1
        limited = [r for r in fake.requests if r.status == 429]
        assert len(limited) == 3
        for answer in limited:
            after = [r for r in fake.requests if r.path == answer.path and r.received_at > answer.answered_at]
            assert after and min(r.received_at for r in after) - answer.answered_at >= RETRY_AFTER - 0.05
        figures["429 answers"] = len(limited)
