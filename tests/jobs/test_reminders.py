"""Reminders for drafts waiting for review, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from bot.analysis.models import Draft
from bot.config import load_settings
from bot.errors import PublishError
from bot.jobs.reminders import ReminderOptions, remind_once
from bot.jobs.scheduler import standard_jobs
from bot.store.db import create_store_engine
from bot.store.repository import Repository
from bot.timeline.models import Channel, Incident, Timeline

T0 = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)  # when the sample's draft was posted
DAY = timedelta(hours=24)


class RecordingReminder:
    """Records each reminder; `fail`: channels where posting fails."""

    def __init__(self, *, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.reminders: list[dict[str, str | None]] = []
        self._lock = threading.Lock()

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None:
        if channel_id in self.fail:
            raise PublishError(f"Slack is down: could not post in {channel_id}")
        with self._lock:
            self.reminders.append(
                {"channel": channel_id, "key": draft_key, "commander": commander, "preview_ts": preview_ts}
            )


class NoChannels:
    def find_incident_channel(self, incident: Incident) -> Channel | None:
        raise AssertionError("the reminders never look for channels")


class NoIncidents:
    def list_resolved_incidents(self, **_: object) -> tuple[Incident, ...]:
        raise AssertionError("the watcher is disabled in these tests")


def make_draft(
    number: int, *, acknowledgers: tuple[str, ...] = ("Ana Lima",), assignees=("Ben Okafor",)
) -> Draft:  # noqa: ANN001
    incident = Incident(
        id=f"QR{number:012d}",
        number=number,
        title="High API latency",
        url=f"https://acme.pagerduty.com/incidents/QR{number:012d}",
        status="resolved",
        created_at=datetime(2024, 7, 20, 10, 30, tzinfo=UTC),
        resolved_at=datetime(2024, 7, 20, 12, 15, tzinfo=UTC),
        acknowledgers=acknowledgers,
        assignees=assignees,
    )
    return Draft(
        incident=incident,
        generated_at=T0,
        timeline=Timeline(),
        summary="s",
        impact="i",
        leadup="l",
        detection="d",
        response="r",
    )


def waiting(repo: Repository, number: int = 9876, *, at: datetime = T0, **draft_kw: object) -> str:
    """A draft previewed in its channel at `at`, waiting for review. Returns its id."""
    draft = make_draft(number, **draft_kw)  # type: ignore[arg-type]
    draft_id = draft.incident.id
    channel = f"C0INC{number}"
    repo.start_draft(
        draft_id=draft_id, incident_key=f"PD-{number}", channel_id=channel, requested_by="U01ANA", now=at
    )
    repo.save_draft(draft_id=draft_id, draft=draft, now=at)
    repo.set_preview(draft_id=draft_id, channel_id=channel, ts=f"{int(at.timestamp())}.000100")
    return draft_id


def remind(repo: Repository, announcer: RecordingReminder, now: datetime, **kw: object) -> int:
    return remind_once(repo=repo, announcer=announcer, options=ReminderOptions(**kw), now=now)  # type: ignore[arg-type]


class TestRemindOnce:
    def test_a_draft_is_reminded_once_it_waited_the_delay(self, repo) -> None:
        """Not at 23 h; at 24 h one reminder in its channel, naming the commander, in the preview's thread."""
        waiting(repo)
        announcer = RecordingReminder()
        assert remind(repo, announcer, T0 + timedelta(hours=23)) == 0
        assert remind(repo, announcer, T0 + DAY) == 1
        assert announcer.reminders == [
            {
                "channel": "C0INC9876",
                "key": "PD-9876",
                "commander": "Ana Lima",
                "preview_ts": "1721480400.000100",
            }
        ]

    def test_at_most_max_reminders_a_day_apart(self, repo) -> None:
        """With the settings' 24 h and 2, the scheduled job reminds at 24 h and 48 h, then never again."""
        waiting(repo)
        settings = load_settings(
            _env_file=None, watch_enabled=False, reminder_after_hours=24, max_reminders=2
        )
        announcer = RecordingReminder()
        ((name, job, _),) = standard_jobs(
            settings=settings, incidents=NoIncidents(), chat=NoChannels(), repo=repo, announcer=announcer
        )
        assert name == "draft-reminders"
        sent_at = []
        for hours in (24, 36, 48, 60, 72, 120):
            before = len(announcer.reminders)
            with freeze_time(T0 + timedelta(hours=hours)):
                job()
            if len(announcer.reminders) > before:
                sent_at.append(hours)
        assert sent_at == [24, 48]

    def test_none_after_publish_or_discard(self, repo) -> None:
        """Published and discarded drafts are never reminded; a failed one still is."""
        published, discarded, failed = waiting(repo, 1), waiting(repo, 2), waiting(repo, 3)
        assert repo.claim_publish(
            draft_id=published, user_id="U01ANA", now=T0, stale_after=timedelta(minutes=10)
        )
        repo.finish_publish(
            draft_id=published,
            page_id="1",
            page_url="https://wiki/1",
            page_version=1,
            user_id="U01ANA",
            body_version=1,
            now=T0,
        )
        assert repo.discard(draft_id=discarded, now=T0)
        repo.fail(draft_id=failed, error="Confluence was unreachable", now=T0)
        announcer = RecordingReminder()
        assert remind(repo, announcer, T0 + 3 * DAY) == 1
        assert [r["key"] for r in announcer.reminders] == ["PD-3"]

    def test_a_reminded_draft_published_later_gets_no_more(self, repo) -> None:
        """After the first reminder the draft is discarded: the second never comes."""
        draft_id = waiting(repo)
        announcer = RecordingReminder()
        assert remind(repo, announcer, T0 + DAY) == 1
        assert repo.discard(draft_id=draft_id, now=T0 + DAY + timedelta(hours=1))
        assert remind(repo, announcer, T0 + 5 * DAY) == 0

    def test_an_edit_restarts_the_wait(self, repo) -> None:
        """Someone editing the draft at 20 h moves its reminder to 44 h."""
        draft_id = waiting(repo)
        repo.save_draft(draft_id=draft_id, draft=make_draft(9876), now=T0 + timedelta(hours=20))
        announcer = RecordingReminder()
        assert remind(repo, announcer, T0 + DAY) == 0
        assert remind(repo, announcer, T0 + timedelta(hours=44)) == 1

    def test_the_commander_is_the_acknowledger_else_the_assignee(self, repo) -> None:
        """Nobody acknowledged: the first assignee is named; a draft whose drafting failed names nobody."""
        waiting(repo, 1, acknowledgers=(), assignees=("Carlos Mendes",))
        repo.start_draft(
            draft_id="QR000000000002", incident_key="PD-2", channel_id="C0INC2", requested_by=None, now=T0
        )
        repo.fail(draft_id="QR000000000002", error="PagerDuty was unreachable", now=T0)
        announcer = RecordingReminder()
        assert remind(repo, announcer, T0 + DAY) == 2
        assert {r["key"]: r["commander"] for r in announcer.reminders} == {
            "PD-1": "Carlos Mendes",
            "PD-2": None,
        }

    def test_drafts_still_being_compiled_are_not_reminded(self, repo) -> None:
        """A draft in status drafting has no preview to review yet."""
        repo.start_draft(
            draft_id="QR000000000004", incident_key="PD-4", channel_id="C0INC4", requested_by=None, now=T0
        )
        assert remind(repo, RecordingReminder(), T0 + 3 * DAY) == 0

    def test_a_failed_reminder_is_given_back(self, repo, caplog) -> None:
        """Slack failing loses no reminder: it is logged, and the next run sends it; the others still go."""
        waiting(repo, 1)
        waiting(repo, 2)
        with caplog.at_level(logging.ERROR, logger="bot.jobs.reminders"):
            assert remind(repo, RecordingReminder(fail={"C0INC1"}), T0 + DAY) == 1
        assert caplog.records[0].exc_info is not None and caplog.records[0].incident == "PD-1"
        healthy = RecordingReminder()
        assert remind(repo, healthy, T0 + DAY + timedelta(minutes=5)) == 1
        assert [r["key"] for r in healthy.reminders] == ["PD-1"]
        # PD-1's first reminder was given back, so it still has its second one a day later.
        assert remind(repo, healthy, T0 + 2 * DAY + timedelta(minutes=5)) == 2

    def test_zero_max_reminders_turns_them_off(self, repo) -> None:
        """MAX_REMINDERS=0 sends nothing."""
        waiting(repo)
        assert remind(repo, RecordingReminder(), T0 + 3 * DAY, max_reminders=0) == 0

    def test_two_replicas_remind_once(self, database_url, engine) -> None:
        """Two replicas (threads, engines) running the job at the same moment send each reminder once."""
        for number in range(1, 6):
            waiting(Repository(engine), number)
        announcer = RecordingReminder()
        start = threading.Barrier(2)
        sent: list[int] = []
        engines = [create_store_engine(database_url) for _ in range(2)]

        def replica(replica_engine) -> None:  # noqa: ANN001
            replica_repo = Repository(replica_engine)
            start.wait(timeout=20)
            sent.append(remind(replica_repo, announcer, T0 + DAY))

        threads = [threading.Thread(target=replica, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for replica_engine in engines:
            replica_engine.dispose()
        assert sum(sent) == 5
        assert sorted(r["key"] for r in announcer.reminders) == [f"PD-{n}" for n in range(1, 6)]
