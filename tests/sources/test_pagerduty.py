"""PagerDutySource through the real RestApiV2Client against the local TLS fake."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import AuthError, ConfigError, IncidentNotFound, InputError, PublishError, SourceUnavailable
from bot.sources.pagerduty import PagerDutySource
from bot.timeline.models import EventKind
from tests.fakes.http import Fault
from tests.fakes.pagerduty import PagerDutyFake, generated_incident
from tests.fakes.tls import write_ca_bundle

INCIDENT_ID = "Q1R2S3T4U5V6W7"
LOG_PATH = rf"^/incidents/{INCIDENT_ID}/log_entries$"

MakeSource = Callable[..., PagerDutySource]


@pytest.fixture
def pd() -> Iterator[PagerDutyFake]:
    with PagerDutyFake() as fake:
        yield fake


@pytest.fixture
def ca_bundle(tmp_path: Path) -> Path:
    return write_ca_bundle(tmp_path)


@pytest.fixture
def make_source(pd: PagerDutyFake, ca_bundle: Path) -> Iterator[MakeSource]:
    made: list[PagerDutySource] = []

    def make(**overrides: object) -> PagerDutySource:
        options: dict = {
            "token": pd.token,
            "base_url": pd.url,
            "ca_bundle": ca_bundle,
            "timeout": 0.5,
            "max_retries": 2,
            "backoff": 0.01,
            "from_email": "ana.lima@acme.example",
        } | overrides
        source = PagerDutySource(**options)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def statuses(pd: PagerDutyFake, path: str) -> list[int]:
    return [r.status for r in sorted(pd.requests_to(path), key=lambda r: r.received_at)]


class TestGetIncident:
    def test_by_key(self, pd, make_source):
        """'PD-9876' asks for /incidents/9876 with the conference bridge and maps the sample."""
        incident = make_source().get_incident("PD-9876")
        (request,) = pd.requests_to(r"^/incidents/9876$")
        assert request.query["include[]"] == ["conference_bridge"]
        assert request.headers["authorization"] == f"Token token={pd.token}"
        assert (incident.id, incident.key, incident.severity) == (INCIDENT_ID, "PD-9876", "SEV-1")
        assert [s.name for s in incident.services] == ["customer-api", "auth-service"]
        assert incident.slack_channel_id == "C07INC9876"

    def test_by_id_without_its_log(self, pd, make_source):
        """An incident id works too. The log is not read yet (it comes with get_log, alongside the other
        sources), so a resolved incident has no commander until then."""
        source = make_source()
        incident = source.get_incident(INCIDENT_ID)
        assert incident.number == 9876 and incident.commander is None
        assert pd.requests_to(LOG_PATH) == []
        assert source.get_log(incident).incident.commander == "Ana Lima"
        assert pd.requests_to(LOG_PATH)[0].query["include[]"] == ["channels"]

    def test_unknown_incident(self, pd, make_source):
        """An incident PagerDuty does not have is IncidentNotFound, named as the user wrote it."""
        with pytest.raises(IncidentNotFound, match=r"^No PagerDuty incident PD-1234$"):
            make_source().get_incident("pd-1234")

    def test_malformed_ref_never_reaches_pagerduty(self, pd, make_source):
        """A malformed reference is an InputError before any request."""
        with pytest.raises(InputError):
            make_source().get_incident("9876/../../users")
        assert pd.requests == []

    def test_bad_token(self, pd, make_source):
        """A rejected token is an AuthError naming PAGERDUTY_API_TOKEN, asked once."""
        with pytest.raises(AuthError, match="PAGERDUTY_API_TOKEN") as caught:
            make_source(token="wrong").get_incident("PD-9876")
        assert "401" in str(caught.value)
        assert statuses(pd, r"^/incidents/9876$") == [401]

    def test_untrusted_certificate(self, pd, make_source):
        """Without the CA bundle the fake's certificate is refused with a hint about CA_BUNDLE."""
        with pytest.raises(SourceUnavailable, match="CA_BUNDLE"):
            make_source(ca_bundle=None).get_incident("PD-9876")

    def test_http_base_url_is_a_config_error(self, make_source):
        """The client refuses a non-https base URL; that is a settings problem."""
        with pytest.raises(ConfigError, match="PAGERDUTY_API_URL"):
            make_source(base_url="http://127.0.0.1:9")


class TestGetEvents:
    def test_sample_events(self, pd, make_source):
        """Log entries, alerts and the note of the sample, the note once."""
        source = make_source()
        events = source.get_log(source.get_incident("PD-9876")).events
        kinds = [e.kind for e in events]
        assert kinds.count(EventKind.ALERT) == 4
        assert kinds.count(EventKind.NOTE) == 1
        assert len(events) == 9 + 4
        assert len(pd.requests_to(rf"^/incidents/{INCIDENT_ID}/notes$")) == 1

    def test_every_page_is_read(self, pd, make_source):
        """A log of 450 entries is read in pages of 100 at offsets 0..400, each entry once."""
        pd.add_generated_incident(4242, log_entries=450)
        source = make_source()
        incident = source.get_incident("PD-4242")
        events = source.get_log(incident).events
        offsets = [
            int(r.query["offset"][0]) for r in pd.requests_to(r"/incidents/QG000000004242/log_entries$")
        ]
        assert offsets == [0, 100, 200, 300, 400]
        assert len({e.id for e in events}) == 450

    def test_open_incident_log_is_read_once(self, pd, make_source):
        """An open incident names its people itself: its log is read by get_log only, once."""
        generated = generated_incident(77, log_entries=3)
        ana = generated.incident["escalation_policy"] | {
            "id": "PANA001",
            "type": "user_reference",
            "summary": "Ana Lima",
        }
        generated.incident.update(
            status="acknowledged",
            resolved_at=None,
            assignments=[{"at": "2024-07-20T10:30:00Z", "assignee": ana}],
            acknowledgements=[{"at": "2024-07-20T10:31:00Z", "acknowledger": ana}],
        )
        pd.add_incident(generated.incident, generated.log_entries, [], [])
        source = make_source()
        incident = source.get_incident("77")
        assert pd.requests_to(r"/log_entries$") == []
        assert incident.commander == "Ana Lima"
        log = source.get_log(incident)
        assert len(log.events) == 3 and log.incident == incident
        assert len(pd.requests_to(r"/log_entries$")) == 1

    def test_events_for_an_incident_read_elsewhere(self, pd, make_source):
        """get_log reads the alerts again when get_incident did not just read them (another source object)."""
        incident = make_source().get_incident("PD-9876")
        assert len(make_source().get_log(incident).events) == 13
        assert len(pd.requests_to(rf"^/incidents/{INCIDENT_ID}/alerts$")) == 2
        assert len(pd.requests_to(LOG_PATH)) == 1


class TestRetries:
    def test_rate_limit_waits_retry_after(self, pd, make_source):
        """A 429 with Retry-After: 1 is retried, and not before the second has passed."""
        pd.faults.add(Fault(kind="429", times=1, path=LOG_PATH, retry_after=1))
        source = make_source()
        source.get_log(source.get_incident("PD-9876"))
        limited, retried = sorted(pd.requests_to(LOG_PATH), key=lambda r: r.received_at)
        assert (limited.status, retried.status) == (429, 200)
        assert retried.received_at - limited.answered_at >= 1.0

    def test_rate_limit_gives_up(self, pd, make_source):
        """A rate limit that does not lift ends in SourceUnavailable after max_retries retries."""
        pd.faults.add(Fault(kind="429", times=None, path=LOG_PATH, retry_after=0))
        source = make_source()
        incident = source.get_incident("PD-9876")
        with pytest.raises(SourceUnavailable, match="rate-limiting PAGERDUTY_API_TOKEN"):
            source.get_log(incident)
        assert statuses(pd, LOG_PATH) == [429, 429, 429]

    def test_server_error_burst_is_retried(self, pd, make_source):
        """Two 503s and then an answer: the read succeeds."""
        pd.faults.add(Fault(kind="5xx", times=2, status=503, path=r"^/incidents/9876$"))
        assert make_source().get_incident("PD-9876").number == 9876
        assert statuses(pd, r"^/incidents/9876$") == [503, 503, 200]

    def test_server_errors_give_up(self, pd, make_source):
        """A 502 that persists is SourceUnavailable after the retries, naming the status."""
        pd.faults.add(Fault(kind="5xx", times=None, status=502, path=r"^/incidents/9876$"))
        with pytest.raises(SourceUnavailable, match="502 Bad Gateway after 2 retries"):
            make_source().get_incident("PD-9876")
        assert statuses(pd, r"^/incidents/9876$") == [502, 502, 502]

    def test_hang_is_retried(self, pd, make_source):
        """An answer that hangs past the timeout is asked again and the read succeeds."""
        pd.faults.add(Fault(kind="hang", times=1, seconds=1.0, path=r"^/incidents/9876$"))
        assert make_source().get_incident("PD-9876").number == 9876
        pd.wait_for(lambda: len(pd.requests_to(r"^/incidents/9876$")) == 2)
        assert statuses(pd, r"^/incidents/9876$") == [504, 200]  # the fake answers the hung one late

    def test_hang_gives_up(self, pd, make_source):
        """A server that never answers in time is a SourceUnavailable naming the timeout and attempts."""
        pd.faults.add(Fault(kind="hang", times=None, seconds=5.0, path=r"^/incidents/9876$"))
        with pytest.raises(SourceUnavailable, match=r"did not answer within 0\.5 s \(3 attempts\)"):
            make_source().get_incident("PD-9876")


class TestAddNote:
    def test_posts_with_from_header(self, pd, make_source):
        """The note is posted as the From user and its id returned."""
        note_id = make_source().add_note(
            incident_id=INCIDENT_ID, content="Postmortem draft: https://wiki/pm-9876"
        )
        (request,) = pd.requests_to(rf"^/incidents/{INCIDENT_ID}/notes$", method="POST")
        assert request.headers["from"] == "ana.lima@acme.example"
        assert request.json() == {"note": {"content": "Postmortem draft: https://wiki/pm-9876"}}
        assert pd.posted_notes == [
            {
                "incident_id": INCIDENT_ID,
                "from": "ana.lima@acme.example",
                "content": "Postmortem draft: https://wiki/pm-9876",
            }
        ]
        assert note_id == pd.incidents[INCIDENT_ID].notes[-1]["id"]

    def test_needs_from_email(self, pd, make_source):
        """Without PAGERDUTY_FROM_EMAIL nothing is sent and the error says what to set."""
        with pytest.raises(ConfigError, match="PAGERDUTY_FROM_EMAIL"):
            make_source(from_email=None).add_note(incident_id=INCIDENT_ID, content="x")
        assert pd.requests == []

    def test_unknown_sender(self, pd, make_source):
        """A From email that is no PagerDuty user is a PublishError naming the setting."""
        with pytest.raises(PublishError, match="PAGERDUTY_FROM_EMAIL"):
            make_source(from_email="bot@elsewhere.example").add_note(incident_id=INCIDENT_ID, content="x")

    def test_read_only_key(self, make_source, ca_bundle):
        """A read-only key is an AuthError saying the token needs write access."""
        with PagerDutyFake(read_only=True) as fake:
            source = make_source(base_url=fake.url, token=fake.token)
            with pytest.raises(AuthError, match="PAGERDUTY_API_TOKEN may not add a note.*write access"):
                source.add_note(incident_id=INCIDENT_ID, content="x")

    def test_unknown_incident(self, make_source):
        """A note to an incident PagerDuty does not have is IncidentNotFound."""
        with pytest.raises(IncidentNotFound):
            make_source().add_note(incident_id="QNOSUCHINCID00", content="x")


class TestListResolvedIncidents:
    START = datetime(2024, 7, 1, tzinfo=UTC)

    def _add(self, pd: PagerDutyFake, number: int, *, day: int, **kwargs: object) -> dict:
        return pd.add_generated_incident(
            number, log_entries=1, created_at=self.START + timedelta(days=day), **kwargs
        )

    def test_window_and_status(self, pd, make_source):
        """Resolved incidents created in the window, asked with statuses[]=resolved and since/until."""
        self._add(pd, 1, day=1)
        self._add(pd, 2, day=3)
        self._add(pd, 3, day=20)  # created after the window
        open_one = generated_incident(4, log_entries=1, created_at=self.START + timedelta(days=2))
        open_one.incident.update(status="acknowledged", resolved_at=None)
        pd.add_incident(open_one.incident, open_one.log_entries, [], [])
        found = make_source().list_resolved_incidents(since=self.START, until=self.START + timedelta(days=10))
        assert [i.number for i in found] == [1, 2]
        assert all(i.resolved_at is not None for i in found)
        (request,) = pd.requests_to(r"^/incidents$")
        assert request.query["statuses[]"] == ["resolved"]
        assert (request.query["since"], request.query["until"]) == (
            ["2024-07-01T00:00:00Z"],
            ["2024-07-11T00:00:00Z"],
        )

    def test_filters(self, pd, make_source):
        """service_ids, team_ids and urgencies narrow the list."""
        self._add(pd, 10, day=1)
        self._add(pd, 11, day=1, service=("PSVC002", "auth-service"))
        self._add(pd, 12, day=1, team=("PTEAM02", "Identity"))
        self._add(pd, 13, day=1, urgency="low")
        source = make_source()
        window = {"since": self.START, "until": self.START + timedelta(days=5)}
        assert [i.number for i in source.list_resolved_incidents(**window, service_ids=["PSVC002"])] == [11]
        assert [i.number for i in source.list_resolved_incidents(**window, team_ids=["PTEAM02"])] == [12]
        assert [i.number for i in source.list_resolved_incidents(**window, urgencies=["low"])] == [13]

    def test_resolved_at_from_last_status_change(self, pd, make_source):
        """An incident listed without resolved_at is resolved at its last status change."""
        generated = generated_incident(20, log_entries=1, created_at=self.START)
        body = copy.deepcopy(generated.incident)
        del body["resolved_at"]
        body["last_status_change_at"] = "2024-07-01T03:00:00Z"
        pd.add_incident(body, generated.log_entries, [], [])
        (incident,) = make_source().list_resolved_incidents(
            since=self.START, until=self.START + timedelta(days=1)
        )
        assert incident.resolved_at == datetime(2024, 7, 1, 3, tzinfo=UTC)

    def test_every_page(self, pd, make_source):
        """More than a page of incidents is read page by page."""
        for number in range(100, 230):
            self._add(pd, number, day=number % 7)
        found = make_source().list_resolved_incidents(since=self.START, until=self.START + timedelta(days=10))
        assert len(found) == 130
        assert [int(r.query["offset"][0]) for r in pd.requests_to(r"^/incidents$")] == [0, 100]
