"""Retention of live capture: captured messages leave the store CAPTURE_RETENTION_DAYS after their
channel's postmortem was published or discarded, or, in a channel with no postmortem, after they were
posted (`CaptureRepository.purge_captured`).

Every replica runs it; the deletes are idempotent, so two replicas purging at once delete each row once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from bot.store.capture import PurgeResult

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600.0  # retention is counted in days: looking hourly is plenty


class CapturePurger(Protocol):
    def purge_captured(self, *, now: datetime, older_than: timedelta) -> PurgeResult: ...


def purge_once(*, capture: CapturePurger, older_than: timedelta, now: datetime) -> PurgeResult:
    result = capture.purge_captured(now=now, older_than=older_than)
    if result.messages:
        log.info(
            "captured messages past their retention deleted",
            extra={"channels": result.channels, "messages": result.messages, "action": "capture_retention"},
        )
    return result
