"""Work a dead process left unfinished is never left silent.

A draft stuck in "drafting" or a publication stuck in "publishing" longer than `stale_after` (the process
was killed, the machine restarted) is turned into "failed" with a reason, and its message in the channel is
refreshed to show the error and a Retry button. Runs at start and then every minute on every replica; each
row is released once (the store re-checks it under a lock).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from bot.errors import PostmortemError
from bot.store.repository import Repository, StoredDraft

log = logging.getLogger(__name__)

RECOVERY_INTERVAL_SECONDS = 60.0


class PreviewRefresher(Protocol):
    def refresh(self, *, stored: StoredDraft) -> None:
        """Show the draft's current state (here: the error and Retry) in its channel message."""
        ...


def recover_once(
    *, repo: Repository, refresher: PreviewRefresher, now: datetime, stale_after: timedelta
) -> int:
    released = repo.release_stale_work(now=now, stale_after=stale_after)
    for stored in released:
        log.warning(
            "released unfinished work",
            extra={"incident": stored.incident_key, "action": "recover", "error": stored.error},
        )
        try:
            refresher.refresh(stored=stored)
        except PostmortemError as exc:  # the state is already safe in the store; the next click shows it
            log.warning(
                "could not refresh the preview", extra={"incident": stored.incident_key, "error": str(exc)}
            )
    return len(released)
