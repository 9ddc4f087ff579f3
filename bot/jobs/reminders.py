"""Reminders for drafts nobody approved or discarded.

A draft in status draft or failed whose last activity (its creation, an edit, a regeneration, a failure)
and last reminder are both older than REMINDER_AFTER_HOURS gets a reminder in its channel naming the
incident commander, at most MAX_REMINDERS times. Publishing or discarding ends them.

Every replica runs this job. Each reminder is taken with a conditional UPDATE on the count the replica saw
(`Repository.mark_reminded`), so exactly one replica sends it; a failed send gives it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.config import Settings
from bot.store.repository import Repository

log = logging.getLogger(__name__)


class Reminder(Protocol):
    """The part of `bot.jobs.watcher.Announcer` this job uses."""

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None: ...


@dataclass(frozen=True)
class ReminderOptions:
    after: timedelta = timedelta(hours=24)
    max_reminders: int = 2
    batch: int = 100  # drafts looked at per run; the rest wait for the next run

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderOptions:
        return cls(after=timedelta(hours=settings.reminder_after_hours), max_reminders=settings.max_reminders)


def remind_once(*, repo: Repository, announcer: Reminder, options: ReminderOptions, now: datetime) -> int:
    """Send the reminders that are due; returns how many this replica sent."""
    if options.max_reminders <= 0:
        return 0
    sent = 0
    due = repo.drafts_due_for_reminder(
        now=now, after=options.after, max_reminders=options.max_reminders, limit=options.batch
    )
    for item in due:
        stored = item.draft
        if stored.channel_id is None:  # the query asks for a channel; this keeps the type checker honest
            continue
        if not repo.mark_reminded(draft_id=stored.id, reminders_sent=item.reminders_sent, now=now):
            continue  # another replica sent it, or the draft was published or discarded meanwhile
        commander = stored.draft.incident.commander if stored.draft is not None else None
        try:
            announcer.remind(
                channel_id=stored.channel_id,
                draft_key=stored.incident_key,
                commander=commander,
                preview_ts=stored.preview_ts,
            )
        except Exception:  # one channel's failure must not stop the others; the reminder is given back
            repo.unmark_reminded(
                draft_id=stored.id, reminders_sent=item.reminders_sent, last_reminder_at=item.last_reminder_at
            )
            log.exception("could not send a reminder; will retry", extra={"incident": stored.incident_key})
            continue
        sent += 1
        log.info(
            "reminded",
            extra={
                "incident": stored.incident_key,
                "reminder": item.reminders_sent + 1,
                "commander": commander,
            },
        )
    return sent
