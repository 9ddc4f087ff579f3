"""The PagerDuty watcher: the real PagerDutySource against the TLS fake, the real SlackHistorySource
against the Slack fake, the store on SQLite and PostgreSQL, and a recording announcer."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from bot.config import load_settings
from bot.errors import ChannelAccessError, PublishError, SourceUnavailable
from bot.jobs.scheduler import standard_jobs
from bot.jobs.watcher import (
    MAX_QUERY_RANGE,
    Outcome,
    WatchOptions,
    passes_priority,
    query_window,
    route,
    watch_once,
)
from bot.sources.pagerduty import PagerDutySource
from bot.sources.slack_client import build_web_client
from bot.sources.slack_history import SlackHistorySource
from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository
from bot.timeline.models import Channel, Incident, Service
from tests.fakes.http import Fault
from tests.fakes.pagerduty import PagerDutyFake, generated_incident
from tests.fakes.slack_web import BOT_TOKEN, SlackWebFake
from tests.fakes.tls import write_ca_bundle

NOW = datetime(2024, 7, 20, 12, 20, tzinfo=UTC)  # five minutes after the sample PD-9876 resolved
SAMPLE_ID = "Q1R2S3T4U5V6W7"
SAMPLE_CHANNEL = "C07INC9876"
FALLBACK = "C0FALLBACK"


class RecordingAnnouncer:
    """Records what the watcher said, and where. `fail`: keys whose posting fails; `refuse`: keys whose
    channel refuses the bot."""

    def __init__(self, *, fail: set[str] | None = None, refuse: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.refuse = refuse or set()
        self.prompts: list[tuple[str, str]] = []  # (channel, incident key)
        self.drafts: list[tuple[str, str]] = []
        self.unrouted_reports: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _check(self, incident: Incident) -> None:
        if incident.key in self.fail:
            raise PublishError(f"Slack is down: could not post about {incident.key}")
        if incident.key in self.refuse:
            raise ChannelAccessError("The bot is not in the channel", source="slack")

    def prompt(self, *, channel_id: str, incident: Incident) -> str | None:
        self._check(incident)
        with self._lock:
            self.prompts.append((channel_id, incident.key))
            return f"1721477{len(self.prompts):03d}.000100"

    def draft_now(self, *, channel_id: str, incident: Incident) -> None:
        self._check(incident)
        with self._lock:
            self.drafts.append((channel_id, incident.key))

    def unrouted(self, *, channel_id: str, incident: Incident) -> None:
        with self._lock:
            self.unrouted_reports.append((channel_id, incident.key))

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None:
        raise AssertionError("the watcher never reminds")

    @property
    def prompted_keys(self) -> list[str]:
        return sorted(key for _, key in self.prompts)


class StaticChannels:
    """A ChannelFinder over a dict: incident key -> channel, or the exception it raises."""

    def __init__(self, channels: dict[str, Channel | Exception]) -> None:
        self.channels = channels

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        found = self.channels.get(incident.key)
        if isinstance(found, Exception):
            raise found
        return found


class GatedChannels:
    """Wraps a ChannelFinder; the first lookup waits until `release` is set (a replica paused mid-run)."""

    def __init__(self, inner: SlackHistorySource) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(timeout=20), "the test never released the paused replica"
        return self.inner.find_incident_channel(incident)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def pd() -> Iterator[PagerDutyFake]:
    with PagerDutyFake(sample=False) as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[SlackWebFake]:
    with SlackWebFake() as fake:
        yield fake


@pytest.fixture
def ca_bundle(tmp_path: Path) -> Path:
    return write_ca_bundle(tmp_path)


def make_source(pd: PagerDutyFake, ca_bundle: Path) -> PagerDutySource:
    return PagerDutySource(token=pd.token, base_url=pd.url, ca_bundle=ca_bundle, timeout=2, max_retries=0)


@pytest.fixture
def source(pd: PagerDutyFake, ca_bundle: Path) -> Iterator[PagerDutySource]:
    made = make_source(pd, ca_bundle)
    yield made
    made.close()


def make_chat(slack: SlackWebFake) -> SlackHistorySource:
    return SlackHistorySource(client=build_web_client(token=BOT_TOKEN, base_url=slack.api_url, max_retries=0))


@pytest.fixture
def chat(slack: SlackWebFake) -> SlackHistorySource:
    return make_chat(slack)


def options(**overrides: object) -> WatchOptions:
    return WatchOptions(**({"holder": "replica-a", "fallback_channel": FALLBACK} | overrides))  # type: ignore[arg-type]


def add_incident(
    pd: PagerDutyFake,
    slack: SlackWebFake,
    number: int,
    *,
    resolved: datetime,
    opened_for: timedelta = timedelta(minutes=30),
    service: tuple[str, str] = ("PSVC001", "customer-api"),
    team: tuple[str, str] = ("PTEAM01", "API Platform"),
    urgency: str = "high",
    priority: str | None = None,
    linked: bool = True,
    bot_in_channel: bool = True,
) -> str:
    """A resolved incident in PagerDuty; `linked`: its Slack channel exists and the incident links it."""
    generated = generated_incident(
        number,
        log_entries=2,
        created_at=resolved - opened_for,
        resolved_at=resolved,
        service=service,
        team=team,
        urgency=urgency,
    )
    body = copy.deepcopy(generated.incident)
    if priority:
        body["priority"] = {
            "id": f"PSEV{priority[-1]}00",
            "type": "priority",
            "summary": priority,
            "self": f"https://api.pagerduty.com/priorities/PSEV{priority[-1]}00",
            "html_url": None,
            "name": priority,
        }
    channel_id = f"C0INC{number}"
    if linked:
        body["conference_bridge"] = {
            "conference_number": None,
            "conference_url": f"https://acme.slack.com/archives/{channel_id}",
        }
        slack.add_channel(
            {"id": channel_id, "name": f"inc-{number}-db", "is_member": bot_in_channel}, members=[]
        )
    pd.add_incident(body, generated.log_entries, [], [])
    return channel_id


def run(repo: Repository, source, chat, announcer: RecordingAnnouncer, *, now: datetime = NOW, **kw: object):  # noqa: ANN001, ANN201
    return watch_once(
        incidents=source, chat=chat, repo=repo, announcer=announcer, options=options(**kw), now=now
    )


# -- pure parts -----------------------------------------------------------------------------------


class TestQueryWindow:
    def test_first_run_looks_back_the_lookback(self) -> None:
        """Without a cursor, resolutions since now - lookback count, from incidents opened up to the max age before."""
        lower, since = query_window(cursor=None, now=NOW, options=options(lookback=timedelta(minutes=30)))
        assert lower == NOW - timedelta(minutes=30)
        assert since == lower - timedelta(days=7)

    def test_later_runs_start_behind_the_cursor(self) -> None:
        """With a cursor, the window starts one overlap before it."""
        cursor = NOW - timedelta(minutes=1)
        lower, since = query_window(cursor=cursor, now=NOW, options=options(overlap=timedelta(minutes=5)))
        assert lower == cursor - timedelta(minutes=5)
        assert since == lower - timedelta(days=7)

    def test_never_asks_more_than_six_months(self) -> None:
        """After a year-long outage the creation window is clamped to PagerDuty's 6-month limit."""
        _, since = query_window(cursor=NOW - timedelta(days=365), now=NOW, options=options())
        assert since == NOW - MAX_QUERY_RANGE
        assert since > NOW - timedelta(days=181)  # shorter than any 6 calendar months


class TestPassesPriority:
    @staticmethod
    def incident(severity: str | None) -> Incident:
        return Incident(
            id="Q1", number=1, title="t", url="u", status="resolved", severity=severity, created_at=NOW
        )

    def test_more_or_as_severe_passes(self) -> None:
        """SEV-1 and SEV-2 pass a SEV-2 minimum; SEV-3 does not."""
        assert passes_priority(self.incident("SEV-1"), "SEV-2")
        assert passes_priority(self.incident("SEV-2"), "SEV-2")
        assert not passes_priority(self.incident("SEV-3"), "SEV-2")

    def test_unprioritised_incidents_are_skipped_only_with_a_minimum(self) -> None:
        """No priority fails a minimum, and anything passes without one."""
        assert not passes_priority(self.incident(None), "P2")
        assert passes_priority(self.incident(None), None)
        assert passes_priority(self.incident("P5"), None)


class TestRoute:
    incident = Incident(
        id="QX1",
        number=4242,
        title="t",
        url="u",
        status="resolved",
        created_at=NOW,
        services=(Service(id="PSVC001", name="customer-api"),),
    )

    def test_an_entry_for_the_incident_wins(self) -> None:
        """CHANNEL_MAP's entry for PD-4242 beats the incident's own channel."""
        chat = StaticChannels({"PD-4242": Channel(id="C0OWN0001")})
        assert route(self.incident, chat=chat, channel_map={"PD-4242": "C0MAPPED01"}) == "C0MAPPED01"

    def test_the_incidents_channel_beats_its_services_channel(self) -> None:
        """A service's mapped channel is used only when the incident has no channel of its own."""
        chat = StaticChannels({"PD-4242": Channel(id="C0OWN0001")})
        assert route(self.incident, chat=chat, channel_map={"customer-api": "C0TEAM0001"}) == "C0OWN0001"
        assert (
            route(self.incident, chat=StaticChannels({}), channel_map={"PSVC001": "C0TEAM0001"})
            == "C0TEAM0001"
        )

    def test_an_unreadable_channel_falls_back_to_the_mapping_or_none(self) -> None:
        """A linked channel the bot may not use is no channel: the service mapping, else None."""
        chat = StaticChannels({"PD-4242": ChannelAccessError("not in it", source="slack")})
        assert route(self.incident, chat=chat, channel_map={"customer-api": "C0TEAM0001"}) == "C0TEAM0001"
        assert route(self.incident, chat=chat, channel_map={}) is None


# -- one run against the fakes --------------------------------------------------------------------


class TestWatchOnce:
    def test_first_run_looks_back_only_the_lookback(self, pd, slack, source, chat, repo) -> None:
        """A fresh install prompts on the last hour's resolutions, not older ones, and stores the cursor."""
        add_incident(pd, slack, 1001, resolved=NOW - timedelta(hours=2))
        channel = add_incident(pd, slack, 1002, resolved=NOW - timedelta(minutes=20))
        announcer = RecordingAnnouncer()
        report = run(repo, source, chat, announcer, lookback=timedelta(hours=1))
        assert announcer.prompts == [(channel, "PD-1002")]
        assert report.outcomes == {"PD-1002": Outcome.PROMPTED}
        assert repo.get_cursor("pagerduty-watcher") == NOW.isoformat(timespec="microseconds")
        (request,) = pd.requests_to(r"^/incidents$")
        assert request.query["since"] == ["2024-07-13T11:20:00Z"]  # now - 1 h - 7 days (max incident age)
        assert request.query["until"] == ["2024-07-20T12:20:00Z"]

    def test_prompts_in_the_channel_the_incident_links(self, slack, ca_bundle, chat, repo) -> None:
        """The sample PD-9876 is prompted in C07INC9876, its conference bridge link, and counted as offered."""
        with PagerDutyFake() as pd:
            source = make_source(pd, ca_bundle)
            announcer = RecordingAnnouncer()
            run(repo, source, chat, announcer)
            source.close()
        assert announcer.prompts == [(SAMPLE_CHANNEL, "PD-9876")]
        assert repo.was_offered(incident_id=SAMPLE_ID)
        assert not repo.claim_prompt(
            incident_id=SAMPLE_ID, channel_id=SAMPLE_CHANNEL, trigger="message", now=NOW
        )

    def test_finds_the_channel_by_its_name(self, pd, slack, source, chat, repo) -> None:
        """An incident without a Slack link is prompted in the channel whose name holds its number."""
        add_incident(pd, slack, 1003, resolved=NOW - timedelta(minutes=5), linked=False)
        slack.add_channel({"id": "C0NAMED1003", "name": "inc-1003-payments"}, members=[])
        announcer = RecordingAnnouncer()
        run(repo, source, chat, announcer)
        assert announcer.prompts == [("C0NAMED1003", "PD-1003")]

    def test_cursor_survives_a_restart(self, pd, slack, ca_bundle, database_url, engine, repo) -> None:
        """After three hours down, a new process on the same database prompts what resolved meanwhile, once."""
        settings = load_settings(_env_file=None, watch_lookback="1h", fallback_channel=FALLBACK)
        add_incident(pd, slack, 1010, resolved=NOW - timedelta(minutes=10))
        first = RecordingAnnouncer()
        source = make_source(pd, ca_bundle)
        (watch, *_) = standard_jobs(
            settings=settings, incidents=source, chat=make_chat(slack), repo=repo, announcer=first
        )
        with freeze_time(NOW):
            watch[1]()
        source.close()
        assert first.prompted_keys == ["PD-1010"]
        # The process stops. While it is down, two incidents resolve, the first 2 h before the restart:
        # older than the first-run lookback, so only the stored cursor finds it.
        add_incident(pd, slack, 1011, resolved=NOW + timedelta(minutes=30))
        add_incident(pd, slack, 1012, resolved=NOW + timedelta(hours=2, minutes=50))
        restarted_engine = create_store_engine(database_url)
        second = RecordingAnnouncer()
        source = make_source(pd, ca_bundle)
        (watch, *_) = standard_jobs(
            settings=settings,
            incidents=source,
            chat=make_chat(slack),
            repo=Repository(restarted_engine),
            announcer=second,
        )
        with freeze_time(NOW + timedelta(hours=3)):
            watch[1]()
        source.close()
        restarted_engine.dispose()
        assert second.prompted_keys == ["PD-1011", "PD-1012"]  # no skip, and PD-1010 not repeated
        assert repo.get_cursor("pagerduty-watcher") == (NOW + timedelta(hours=3)).isoformat(
            timespec="microseconds"
        )

    def test_no_repeat_and_no_skip_across_runs(self, pd, slack, source, chat, repo) -> None:
        """Each run prompts only what is new; one that shows up late in PagerDuty's list is still found."""
        add_incident(pd, slack, 1020, resolved=NOW - timedelta(minutes=3))
        announcer = RecordingAnnouncer()
        run(repo, source, chat, announcer)
        # Resolved before the cursor, but listed only now (PagerDuty's list lags): within the overlap.
        add_incident(pd, slack, 1021, resolved=NOW - timedelta(minutes=1))
        add_incident(pd, slack, 1022, resolved=NOW + timedelta(seconds=30))
        report = run(repo, source, chat, announcer, now=NOW + timedelta(minutes=1))
        assert announcer.prompted_keys == ["PD-1020", "PD-1021", "PD-1022"]
        assert report.outcomes["PD-1020"] is Outcome.ALREADY
        third = run(repo, source, chat, announcer, now=NOW + timedelta(minutes=2))
        assert len(announcer.prompts) == 3
        assert set(third.outcomes.values()) == {Outcome.ALREADY}

    def test_filters_go_to_pagerduty(self, pd, slack, source, chat, repo) -> None:
        """Only incidents of the watched services, teams and urgencies are prompted."""
        resolved = NOW - timedelta(minutes=5)
        add_incident(pd, slack, 1030, resolved=resolved)
        add_incident(pd, slack, 1031, resolved=resolved, service=("PSVC002", "auth-service"))
        add_incident(pd, slack, 1032, resolved=resolved, team=("PTEAM02", "Identity"))
        add_incident(pd, slack, 1033, resolved=resolved, urgency="low")
        announcer = RecordingAnnouncer()
        run(
            repo,
            source,
            chat,
            announcer,
            service_ids=("PSVC001",),
            team_ids=("PTEAM01",),
            urgencies=("high",),
        )
        assert announcer.prompted_keys == ["PD-1030"]
        (request,) = pd.requests_to(r"^/incidents$")
        assert request.query["service_ids[]"] == ["PSVC001"]
        assert request.query["team_ids[]"] == ["PTEAM01"]
        assert request.query["urgencies[]"] == ["high"]

    def test_min_priority_skips_less_severe_incidents(self, pd, slack, source, chat, repo) -> None:
        """With WATCH_MIN_PRIORITY=SEV-2, SEV-1 and SEV-2 are prompted; SEV-3 and unprioritised are not."""
        resolved = NOW - timedelta(minutes=5)
        for number, priority in ((1041, "SEV-1"), (1042, "SEV-2"), (1043, "SEV-3"), (1044, None)):
            add_incident(pd, slack, number, resolved=resolved, priority=priority)
        announcer = RecordingAnnouncer()
        report = run(repo, source, chat, announcer, min_priority="SEV-2")
        assert announcer.prompted_keys == ["PD-1041", "PD-1042"]
        assert report.keys(Outcome.FILTERED) == ["PD-1043", "PD-1044"]

    def test_one_prompt_when_a_command_or_message_came_first(self, pd, slack, source, chat, repo) -> None:
        """An incident prompted by its "resolved" message, or drafted by /postmortem, is not prompted again."""
        resolved = NOW - timedelta(minutes=5)
        add_incident(pd, slack, 1050, resolved=resolved)
        add_incident(pd, slack, 1051, resolved=resolved)
        add_incident(pd, slack, 1052, resolved=resolved)
        ids = {n: f"QG{n:012d}" for n in (1050, 1051)}
        assert repo.claim_prompt(incident_id=ids[1050], channel_id="C0INC1050", trigger="message", now=NOW)
        repo.start_draft(
            draft_id=ids[1051], incident_key="PD-1051", channel_id="C0INC1051", requested_by="U01ANA", now=NOW
        )
        repo.claim_prompt(incident_id=ids[1051], channel_id="C0INC1051", trigger="command", now=NOW)
        announcer = RecordingAnnouncer()
        report = run(repo, source, chat, announcer)
        assert announcer.prompted_keys == ["PD-1052"]
        assert report.keys(Outcome.ALREADY) == ["PD-1050", "PD-1051"]

    def test_the_claim_decides_when_a_command_races_the_watcher(self, pd, slack, source, chat, repo) -> None:
        """/postmortem claiming the incident while the watcher looks for its channel wins; no second prompt."""
        add_incident(pd, slack, 1055, resolved=NOW - timedelta(minutes=5))
        gated = GatedChannels(chat)
        announcer = RecordingAnnouncer()
        reports = []
        watcher = threading.Thread(target=lambda: reports.append(run(repo, source, gated, announcer)))
        watcher.start()
        assert gated.entered.wait(timeout=20)
        assert repo.claim_prompt(
            incident_id="QG000000001055", channel_id="C0INC1055", trigger="command", now=NOW
        )
        gated.release.set()
        watcher.join(timeout=20)
        assert announcer.prompts == []
        assert reports[0].outcomes == {"PD-1055": Outcome.ALREADY}

    def test_channel_less_incident_is_reported_once_in_the_fallback(
        self, pd, slack, source, chat, repo
    ) -> None:
        """No link, no channel by name, no mapping: one report in FALLBACK_CHANNEL, none on later runs."""
        add_incident(pd, slack, 1060, resolved=NOW - timedelta(minutes=5), linked=False)
        announcer = RecordingAnnouncer()
        first = run(repo, source, chat, announcer)
        second = run(repo, source, chat, announcer, now=NOW + timedelta(minutes=1))
        assert announcer.unrouted_reports == [(FALLBACK, "PD-1060")]
        assert announcer.prompts == []
        assert (first.outcomes["PD-1060"], second.outcomes["PD-1060"]) == (Outcome.UNROUTED, Outcome.ALREADY)

    def test_a_channel_that_refuses_the_bot_is_reported_in_the_fallback(
        self, pd, slack, source, chat, repo
    ) -> None:
        """A linked channel the bot is not in, or one refusing its post, goes to the fallback channel."""
        resolved = NOW - timedelta(minutes=5)
        add_incident(pd, slack, 1061, resolved=resolved, bot_in_channel=False)
        add_incident(pd, slack, 1062, resolved=resolved)
        announcer = RecordingAnnouncer(refuse={"PD-1062"})
        run(repo, source, chat, announcer)
        assert announcer.unrouted_reports == [(FALLBACK, "PD-1061"), (FALLBACK, "PD-1062")]
        assert announcer.prompts == []

    def test_without_a_fallback_channel_the_log_says_so(self, pd, slack, source, chat, repo, caplog) -> None:
        """With FALLBACK_CHANNEL unset, a channel-less incident is logged once instead."""
        add_incident(pd, slack, 1063, resolved=NOW - timedelta(minutes=5), linked=False)
        announcer = RecordingAnnouncer()
        with caplog.at_level(logging.WARNING, logger="bot.jobs.watcher"):
            run(repo, source, chat, announcer, fallback_channel=None)
            run(repo, source, chat, announcer, fallback_channel=None, now=NOW + timedelta(minutes=1))
        assert announcer.unrouted_reports == []
        assert [r.incident for r in caplog.records if "FALLBACK_CHANNEL" in r.getMessage()] == ["PD-1063"]

    def test_a_mapped_service_channel_routes_channel_less_incidents(
        self, pd, slack, source, chat, repo
    ) -> None:
        """CHANNEL_MAP by service name sends an incident without a channel to its team's channel."""
        add_incident(pd, slack, 1064, resolved=NOW - timedelta(minutes=5), linked=False)
        announcer = RecordingAnnouncer()
        run(repo, source, chat, announcer, channel_map={"customer-api": "C0TEAMAPI1"})
        assert announcer.prompts == [("C0TEAMAPI1", "PD-1064")]

    def test_auto_draft_drafts_instead_of_asking(self, pd, slack, source, chat, repo) -> None:
        """With WATCH_AUTO_DRAFT the draft starts at once in the channel, once."""
        channel = add_incident(pd, slack, 1070, resolved=NOW - timedelta(minutes=5))
        announcer = RecordingAnnouncer()
        report = run(repo, source, chat, announcer, auto_draft=True)
        run(repo, source, chat, announcer, auto_draft=True, now=NOW + timedelta(minutes=1))
        assert announcer.drafts == [(channel, "PD-1070")]
        assert announcer.prompts == []
        assert report.outcomes == {"PD-1070": Outcome.DRAFTED}

    def test_a_failed_post_is_retried_and_holds_the_cursor(
        self, pd, slack, source, chat, repo, caplog
    ) -> None:
        """Posting that fails releases the claim and keeps the cursor before it; the next run prompts it."""
        add_incident(pd, slack, 1080, resolved=NOW - timedelta(minutes=8))
        add_incident(pd, slack, 1081, resolved=NOW - timedelta(minutes=4))
        failing = RecordingAnnouncer(fail={"PD-1080"})
        with caplog.at_level(logging.ERROR, logger="bot.jobs.watcher"):
            report = run(repo, source, chat, failing)
        assert report.outcomes == {"PD-1080": Outcome.FAILED, "PD-1081": Outcome.PROMPTED}
        assert report.cursor_after == NOW - timedelta(minutes=8, microseconds=1)
        assert caplog.records[0].exc_info is not None and caplog.records[0].incident == "PD-1080"
        assert not repo.was_offered(incident_id="QG000000001080")
        # Much later than the overlap: only the held-back cursor brings PD-1080 back.
        healthy = RecordingAnnouncer()
        later = NOW + timedelta(hours=2)
        again = run(repo, source, chat, healthy, now=later)
        assert healthy.prompted_keys == ["PD-1080"]
        assert again.outcomes["PD-1081"] is Outcome.ALREADY
        assert again.cursor_after == later

    def test_a_post_failing_for_too_long_is_given_up(self, pd, slack, source, chat, repo, caplog) -> None:
        """An incident failing longer than give_up_after stops holding the cursor back, with an error logged."""
        add_incident(pd, slack, 1085, resolved=NOW - timedelta(hours=2))
        failing = RecordingAnnouncer(fail={"PD-1085"})
        three_hours_ago = (NOW - timedelta(hours=3)).isoformat(timespec="microseconds")
        repo.advance_cursor(name="pagerduty-watcher", value=three_hours_ago, now=NOW)
        with caplog.at_level(logging.ERROR, logger="bot.jobs.watcher"):
            report = run(repo, source, chat, failing, give_up_after=timedelta(hours=1))
        assert report.outcomes == {"PD-1085": Outcome.FAILED}
        assert report.cursor_after == NOW
        assert "giving up" in caplog.records[0].getMessage()

    def test_pagerduty_failure_raises_and_keeps_the_cursor(self, pd, slack, source, chat, repo) -> None:
        """When PagerDuty cannot be listed the run fails loudly and the cursor stays where it was."""
        minute_ago = (NOW - timedelta(minutes=1)).isoformat(timespec="microseconds")
        repo.advance_cursor(name="pagerduty-watcher", value=minute_ago, now=NOW)
        pd.faults.add(Fault("5xx", times=None, path=r"^/incidents$"))
        with pytest.raises(SourceUnavailable):
            run(repo, source, chat, RecordingAnnouncer())
        assert repo.get_cursor("pagerduty-watcher") == minute_ago


class TestReplicas:
    def test_a_replica_skips_while_another_holds_the_watch(self, pd, slack, source, chat, repo) -> None:
        """A second replica does not even ask PagerDuty while the lease is another's; it takes over once expired."""
        add_incident(pd, slack, 1090, resolved=NOW - timedelta(minutes=5))
        announcer = RecordingAnnouncer()
        assert run(repo, source, chat, announcer, holder="replica-a").ran
        skipped = run(repo, source, chat, announcer, holder="replica-b", now=NOW + timedelta(minutes=1))
        assert not skipped.ran
        assert len(pd.requests_to(r"^/incidents$")) == 1
        took_over = run(repo, source, chat, announcer, holder="replica-b", now=NOW + timedelta(minutes=3))
        assert took_over.ran and took_over.outcomes == {"PD-1090": Outcome.ALREADY}
        assert announcer.prompted_keys == ["PD-1090"]

    def test_two_watchers_racing_prompt_each_incident_once(self, pd, slack, ca_bundle, database_url) -> None:
        """Two replicas (threads, engines, clients) on one database started together: one prompt per incident."""
        for number in range(1100, 1106):
            add_incident(pd, slack, number, resolved=NOW - timedelta(minutes=number - 1099))
        announcer = RecordingAnnouncer()
        start = threading.Barrier(2)
        reports = {}
        engines = [create_store_engine(database_url) for _ in range(2)]
        migrate(engines[0])

        def replica(name: str, engine) -> None:  # noqa: ANN001
            source = make_source(pd, ca_bundle)
            start.wait(timeout=20)
            reports[name] = run(Repository(engine), source, make_chat(slack), announcer, holder=name)
            source.close()

        threads = [threading.Thread(target=replica, args=(f"replica-{i}", e)) for i, e in enumerate(engines)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for engine in engines:
            engine.dispose()
        assert announcer.prompted_keys == [f"PD-{n}" for n in range(1100, 1106)]
        assert sorted(r.ran for r in reports.values()) == [False, True]

    def test_a_replica_taking_over_mid_run_prompts_nothing_twice(
        self, pd, slack, ca_bundle, database_url
    ) -> None:
        """A replica whose run outlived its lease races the one that took over: the prompt claims keep one each."""
        for number in (1110, 1111):
            add_incident(pd, slack, number, resolved=NOW - timedelta(minutes=1112 - number))
        announcer = RecordingAnnouncer()
        engines = [create_store_engine(database_url) for _ in range(2)]
        migrate(engines[0])
        sources = [make_source(pd, ca_bundle) for _ in range(2)]
        slow = GatedChannels(make_chat(slack))  # replica A pauses inside its first channel lookup
        reports = {}
        thread = threading.Thread(
            target=lambda: reports.update(
                a=run(Repository(engines[0]), sources[0], slow, announcer, holder="a")
            )
        )
        thread.start()
        assert slow.entered.wait(timeout=20)
        # Replica B comes after A's lease expired, while A is still paused before its first claim.
        reports["b"] = run(
            Repository(engines[1]),
            sources[1],
            make_chat(slack),
            announcer,
            holder="b",
            now=NOW + timedelta(minutes=5),
        )
        slow.release.set()
        thread.join(timeout=30)
        for made_source in sources:
            made_source.close()
        for engine in engines:
            engine.dispose()
        assert announcer.prompted_keys == ["PD-1110", "PD-1111"]
        assert reports["b"].outcomes == {"PD-1110": Outcome.PROMPTED, "PD-1111": Outcome.PROMPTED}
        assert reports["a"].outcomes == {"PD-1110": Outcome.ALREADY, "PD-1111": Outcome.ALREADY}
