"""The background jobs' clock: an APScheduler 3 `BackgroundScheduler` and the bot's standard jobs.

Every replica runs every job. APScheduler 3 shares no job store between processes, so nothing here
decides who does a piece of work: the jobs claim it in the database (see `watcher.py`, `reminders.py`).

Each job runs at most once at a time (`max_instances=1`), late runs fold into one (`coalesce`), and a run
later than one interval is skipped (`misfire_grace_time`). A job's exception is logged with its traceback
and the job keeps its schedule; a run skipped because the previous one is still going is logged too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.jobs.reminders import ReminderOptions, remind_once
from bot.jobs.watcher import Announcer, ChannelFinder, ResolvedIncidents, WatchOptions, watch_once
from bot.store.repository import Repository

log = logging.getLogger(__name__)

# (name, callable, interval in seconds)
Job = tuple[str, Callable[[], object], float]
REMINDER_INTERVAL_SECONDS = 300.0  # reminders are due by the hour; looking every 5 minutes is plenty


def build_scheduler(*, jobs: Sequence[Job], run_now: bool = True) -> BackgroundScheduler:
    """A scheduler (not started) running each job every `interval` seconds, the first time at once
    (`run_now`), so a restart catches up without waiting one interval."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for name, func, interval in jobs:
        # Without next_run_time, APScheduler starts one interval after start().
        first = {"next_run_time": datetime.now(UTC)} if run_now else {}
        scheduler.add_job(
            _logged(name, func),
            IntervalTrigger(seconds=interval, timezone=UTC),
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval)),
            replace_existing=True,
            **first,
        )
    scheduler.add_listener(_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _logged(name: str, func: Callable[[], object]) -> Callable[[], None]:
    """Run the job; an exception is logged with its traceback and the job stays scheduled."""

    @functools.wraps(func)
    def run() -> None:
        try:
            func()
        except Exception:
            log.exception("job %s failed; it runs again at its next interval", name, extra={"job": name})

    return run


def _skipped(event: JobEvent) -> None:
    reason = "the previous run is still going" if event.code == EVENT_JOB_MAX_INSTANCES else "it ran too late"
    log.warning("job %s skipped a run: %s", event.job_id, reason, extra={"job": event.job_id})


def standard_jobs(
    *,
    settings: Settings,
    incidents: ResolvedIncidents,
    chat: ChannelFinder,
    repo: Repository,
    announcer: Announcer,
    holder: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Job]:
    """The watcher (when WATCH_ENABLED) and the reminders (when MAX_REMINDERS > 0), read from the settings."""
    jobs: list[Job] = []
    if settings.watch_enabled:
        watch_options = WatchOptions.from_settings(settings, **({"holder": holder} if holder else {}))
        jobs.append(
            (
                "pagerduty-watcher",
                lambda: watch_once(
                    incidents=incidents,
                    chat=chat,
                    repo=repo,
                    announcer=announcer,
                    options=watch_options,
                    now=clock(),
                ),
                float(settings.watch_interval_seconds),
            )
        )
    reminder_options = ReminderOptions.from_settings(settings)
    if reminder_options.max_reminders > 0:
        jobs.append(
            (
                "draft-reminders",
                lambda: remind_once(repo=repo, announcer=announcer, options=reminder_options, now=clock()),
                REMINDER_INTERVAL_SECONDS,
            )
        )
    return jobs
