"""The background scheduler: jobs run on their interval, a failing job is logged and keeps running."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from freezegun import freeze_time

from bot.config import load_settings
from bot.jobs.scheduler import REMINDER_INTERVAL_SECONDS, build_scheduler, standard_jobs
from bot.jobs.watcher import WatchReport
from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository
from bot.timeline.models import Channel, Incident

NOW = datetime(2024, 7, 20, 12, 20, tzinfo=UTC)


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


@pytest.fixture
def started() -> Iterator[Callable[[BackgroundScheduler], BackgroundScheduler]]:
    schedulers: list[BackgroundScheduler] = []

    def start(scheduler: BackgroundScheduler) -> BackgroundScheduler:
        scheduler.start()
        schedulers.append(scheduler)
        return scheduler

    yield start
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)


class RecordingIncidents:
    """A ResolvedIncidents that records the windows it was asked for and knows no incidents."""

    def __init__(self) -> None:
        self.asked: list[tuple[datetime, datetime]] = []

    def list_resolved_incidents(
        self, *, since: datetime, until: datetime, **_: object
    ) -> tuple[Incident, ...]:
        self.asked.append((since, until))
        return ()


class NoChannels:
    def find_incident_channel(self, incident: Incident) -> Channel | None:
        return None


class SilentAnnouncer:
    """Never called in these tests: no incident is listed and no draft waits."""

    def prompt(self, *, channel_id: str, incident: Incident) -> str | None:
        raise AssertionError("unexpected prompt")

    def draft_now(self, *, channel_id: str, incident: Incident) -> None:
        raise AssertionError("unexpected draft")

    def unrouted(self, *, channel_id: str, incident: Incident) -> None:
        raise AssertionError("unexpected report")

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None:
        raise AssertionError("unexpected reminder")


class TestBuildScheduler:
    def test_runs_each_job_on_its_interval(self, started) -> None:
        """A job runs at once and then again every interval."""
        runs: list[float] = []
        started(build_scheduler(jobs=[("tick", lambda: runs.append(time.monotonic()), 0.05)]))
        wait_until(lambda: len(runs) >= 3)
        assert runs[0] <= runs[1] <= runs[2]

    def test_jobs_run_once_at_a_time_and_fold_late_runs(self) -> None:
        """Each job has coalesce, one instance and a misfire grace of one interval."""
        scheduler = build_scheduler(jobs=[("watch", lambda: None, 60), ("remind", lambda: None, 300)])
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"watch", "remind"}
        assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
        assert (jobs["watch"].misfire_grace_time, jobs["remind"].misfire_grace_time) == (60, 300)
        assert jobs["watch"].trigger.interval == timedelta(seconds=60)

    def test_a_failing_job_is_logged_and_keeps_running(self, started, caplog) -> None:
        """The exception is logged with its traceback and the job name; the job runs again next interval."""
        calls: list[int] = []

        def failing() -> None:
            calls.append(1)
            raise RuntimeError("PagerDuty exploded")

        with caplog.at_level(logging.ERROR, logger="bot.jobs.scheduler"):
            started(build_scheduler(jobs=[("pagerduty-watcher", failing, 0.05)]))
            wait_until(lambda: len(calls) >= 2 and len(caplog.records) >= 2)
        record = caplog.records[0]
        assert record.job == "pagerduty-watcher"
        assert record.exc_info is not None and str(record.exc_info[1]) == "PagerDuty exploded"

    def test_an_overrunning_job_is_not_doubled_and_says_so(self, started, caplog) -> None:
        """A run still going when the next is due is not started twice; the skip is logged."""
        release = threading.Event()
        running = []

        def slow() -> None:
            running.append(1)
            release.wait(timeout=10)

        with caplog.at_level(logging.WARNING, logger="bot.jobs.scheduler"):
            started(build_scheduler(jobs=[("slow", slow, 0.05)]))
            wait_until(lambda: any("still going" in r.getMessage() for r in caplog.records))
            assert len(running) == 1
            release.set()


class TestStandardJobs:
    def test_the_settings_choose_the_jobs(self) -> None:
        """WATCH_ENABLED and MAX_REMINDERS switch the two jobs; the watcher runs every WATCH_INTERVAL_SECONDS."""
        kw = {
            "incidents": RecordingIncidents(),
            "chat": NoChannels(),
            "repo": None,
            "announcer": SilentAnnouncer(),
        }

        def jobs(**settings: object) -> list[tuple[str, float]]:
            built = standard_jobs(settings=load_settings(_env_file=None, **settings), **kw)  # type: ignore[arg-type]
            return [(name, interval) for name, _, interval in built]

        assert jobs(watch_interval_seconds=30) == [
            ("pagerduty-watcher", 30.0),
            ("draft-reminders", REMINDER_INTERVAL_SECONDS),
        ]
        assert jobs(watch_enabled=False) == [("draft-reminders", REMINDER_INTERVAL_SECONDS)]
        assert jobs(max_reminders=0) == [("pagerduty-watcher", 60.0)]

    def test_the_watcher_job_asks_up_to_the_current_time(self, database_url) -> None:
        """The scheduled watcher reads the clock at each run: the first looks back WATCH_LOOKBACK from it."""
        engine = create_store_engine(database_url)
        migrate(engine)
        incidents = RecordingIncidents()
        settings = load_settings(_env_file=None, watch_lookback="30m", watch_max_incident_age="2d")
        (watch, _) = standard_jobs(
            settings=settings,
            incidents=incidents,
            chat=NoChannels(),
            repo=Repository(engine),
            announcer=SilentAnnouncer(),
        )
        with freeze_time(NOW):
            report = watch[1]()
        with freeze_time(NOW + timedelta(minutes=1)):
            watch[1]()
        engine.dispose()
        assert isinstance(report, WatchReport) and report.ran
        assert incidents.asked == [
            (NOW - timedelta(minutes=30, days=2), NOW),
            (NOW - timedelta(minutes=10, days=2), NOW + timedelta(minutes=1)),  # cursor - overlap - max age
        ]
