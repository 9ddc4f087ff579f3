"""Work left unfinished by a dead process is released once and shown with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.jobs.recovery import recover_once
from bot.store.repository import Repository, StoredDraft
from tests.store.test_repository import make_draft

NOW = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)


class RecordingRefresher:
    def __init__(self) -> None:
        self.refreshed: list[StoredDraft] = []

    def refresh(self, *, stored: StoredDraft) -> None:
        self.refreshed.append(stored)


class TestRecoverOnce:
    def test_a_publication_cut_off_is_shown_failed_with_retry_once(self, repo: Repository) -> None:
        """A 'publishing' row older than the stale delay is refreshed as failed, once, even with two replicas."""
        repo.start_draft(draft_id="Q1", incident_key="PD-9876", channel_id="C1", requested_by="U1", now=NOW)
        repo.save_draft(draft_id="Q1", draft=make_draft(), now=NOW)
        repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        first, second = RecordingRefresher(), RecordingRefresher()
        later = NOW + timedelta(minutes=11)
        assert recover_once(repo=repo, refresher=first, now=later, stale_after=STALE) == 1
        assert recover_once(repo=repo, refresher=second, now=later, stale_after=STALE) == 0
        assert [s.status.value for s in first.refreshed] == ["failed"] and second.refreshed == []
        assert repo.claim_publish(draft_id="Q1", user_id="U1", now=later, stale_after=STALE)

    def test_work_in_progress_is_left_alone(self, repo: Repository) -> None:
        """A publication started a minute ago belongs to a live process: nothing is released."""
        repo.start_draft(draft_id="Q1", incident_key="PD-9876", channel_id="C1", requested_by="U1", now=NOW)
        refresher = RecordingRefresher()
        assert (
            recover_once(repo=repo, refresher=refresher, now=NOW + timedelta(minutes=1), stale_after=STALE)
            == 0
        )
        assert refresher.refreshed == []
