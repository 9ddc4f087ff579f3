"""The store on SQLite and PostgreSQL: migrations, drafts, edits, exactly-once transitions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bot.analysis.models import Draft
from bot.errors import StoreError
from bot.store.db import create_store_engine, migrate, normalise_url
from bot.store.models import DraftStatus
from bot.store.repository import Repository
from bot.timeline.models import Incident, Timeline

NOW = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)


def make_draft(summary: str = "What happened.") -> Draft:
    incident = Incident(
        id="Q1R2S3T4U5V6W7",
        number=9876,
        title="High API latency",
        url="https://acme.pagerduty.com/incidents/Q1",
        status="resolved",
        created_at=datetime(2024, 7, 20, 10, 30, tzinfo=UTC),
    )
    return Draft(
        incident=incident,
        generated_at=NOW,
        timeline=Timeline(),
        summary=summary,
        impact="i",
        leadup="l",
        detection="d",
        response="r",
    )


def drafted(repo: Repository, draft_id: str = "Q1") -> None:
    repo.start_draft(draft_id=draft_id, incident_key="PD-9876", channel_id="C1", requested_by="U1", now=NOW)
    repo.save_draft(draft_id=draft_id, draft=make_draft(), now=NOW)


class TestMigrations:
    def test_migrating_twice_is_harmless(self, database_url: str) -> None:
        """A restart re-runs the migrations without error or change."""
        engine = create_store_engine(database_url)
        migrate(engine)
        migrate(engine)
        Repository(engine).claim(key="k", now=NOW)
        engine.dispose()

    def test_postgres_urls_use_psycopg3(self) -> None:
        """postgres:// URLs as platforms hand them out select the psycopg 3 driver."""
        assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
        assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


class TestDrafts:
    def test_a_draft_round_trips_with_aware_times(self, repo: Repository) -> None:
        """The stored draft comes back equal, with UTC-aware timestamps."""
        drafted(repo)
        stored = repo.get("Q1")
        assert stored.draft == make_draft()
        assert stored.status is DraftStatus.DRAFT
        assert stored.updated_at == NOW and stored.updated_at.tzinfo is not None

    def test_starting_an_existing_draft_returns_it_untouched(self, repo: Repository) -> None:
        """A second /postmortem for the same incident finds the first draft instead of replacing it."""
        drafted(repo)
        again, created = repo.start_draft(
            draft_id="Q1", incident_key="PD-9876", channel_id="C9", requested_by="U2", now=NOW
        )
        assert not created
        assert again.status is DraftStatus.DRAFT and again.channel_id == "C1"

    def test_edits_are_kept_in_order_with_author_and_time(self, repo: Repository) -> None:
        """Who changed what and when is kept, with the body, in one transaction."""
        drafted(repo)
        first = repo.save_edit(
            draft_id="Q1", draft=make_draft("One."), expected_body_version=1, changes=[("summary", "One.")],
            user_id="U1", now=NOW,
        )  # fmt: skip
        later = NOW + timedelta(minutes=1)
        repo.save_edit(
            draft_id="Q1", draft=make_draft("Two."), expected_body_version=first.body_version,
            changes=[("impact", "two")], user_id="U2", now=later,
        )  # fmt: skip
        assert [(e.section, e.user_id, e.at) for e in repo.edits("Q1")] == [
            ("summary", "U1", NOW),
            ("impact", "U2", later),
        ]
        assert repo.get("Q1").draft.summary == "Two."

    def test_an_edit_of_a_changed_draft_is_refused_and_not_recorded(self, repo: Repository) -> None:
        """Saving against a body version someone else already replaced stores nothing."""
        drafted(repo)
        assert repo.save_edit(
            draft_id="Q1", draft=make_draft("One."), expected_body_version=1, changes=[("summary", "One.")],
            user_id="U1", now=NOW,
        )  # fmt: skip
        assert (
            repo.save_edit(
                draft_id="Q1",
                draft=make_draft("Stale."),
                expected_body_version=1,
                changes=[("summary", "x")],
                user_id="U2",
                now=NOW,
            )  # fmt: skip
            is None
        )
        assert [e.user_id for e in repo.edits("Q1")] == ["U1"] and repo.get("Q1").draft.summary == "One."

    def test_discard_only_from_draft_or_failed(self, repo: Repository) -> None:
        """A published postmortem cannot be discarded; a draft can, once."""
        drafted(repo)
        assert repo.discard(draft_id="Q1", now=NOW)
        assert not repo.discard(draft_id="Q1", now=NOW)


class TestPublication:
    def test_only_one_of_many_concurrent_claims_wins(self, repo: Repository) -> None:
        """Eight simultaneous Approve clicks: exactly one may publish."""
        drafted(repo)
        with ThreadPoolExecutor(8) as pool:
            wins = list(
                pool.map(
                    lambda i: repo.claim_publish(draft_id="Q1", user_id=f"U{i}", now=NOW, stale_after=STALE),
                    range(8),
                )
            )
        assert wins.count(True) == 1

    def test_republishing_needs_a_change(self, repo: Repository) -> None:
        """After publishing, Approve again does nothing until the draft is edited."""
        drafted(repo)
        assert repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        stored = repo.get("Q1")
        repo.finish_publish(
            draft_id="Q1",
            page_id="42",
            page_url="u",
            page_version=1,
            user_id="U1",
            body_version=stored.body_version,
            now=NOW,
        )
        assert not repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        repo.save_draft(draft_id="Q1", draft=make_draft("Edited."), now=NOW)
        assert repo.get("Q1").status is DraftStatus.PUBLISHED
        assert repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)

    def test_a_stale_publication_can_be_taken_over(self, repo: Repository) -> None:
        """A publication left by a crashed process may be claimed again after the stale delay."""
        drafted(repo)
        assert repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        assert not repo.claim_publish(
            draft_id="Q1", user_id="U2", now=NOW + timedelta(minutes=1), stale_after=STALE
        )
        later = NOW + timedelta(minutes=11)
        assert repo.claim_publish(draft_id="Q1", user_id="U2", now=later, stale_after=STALE)

    def test_stale_work_is_released_as_failed_with_a_reason(self, repo: Repository) -> None:
        """Publishing and drafting left by a dead process become failed with an error naming what stopped."""
        drafted(repo)
        repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        repo.start_draft(draft_id="Q2", incident_key="PD-2", channel_id="C1", requested_by="U1", now=NOW)
        assert repo.release_stale_work(now=NOW + timedelta(minutes=5), stale_after=STALE) == []
        released = repo.release_stale_work(now=NOW + timedelta(minutes=11), stale_after=STALE)
        assert sorted((d.id, d.status.value) for d in released) == [("Q1", "failed"), ("Q2", "failed")]
        assert "stopped while publishing" in repo.get("Q1").error
        assert "stopped while drafting" in repo.get("Q2").error
        assert repo.release_stale_work(now=NOW + timedelta(minutes=12), stale_after=STALE) == []

    def test_a_failed_publication_keeps_the_body_and_the_error(self, repo: Repository) -> None:
        """Confluence refusing leaves the draft intact, failed, with the reason, and claimable for Retry."""
        drafted(repo)
        repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)
        repo.abandon_publish(draft_id="Q1", error="Confluence is down", now=NOW)
        stored = repo.get("Q1")
        assert stored.status is DraftStatus.FAILED and stored.error == "Confluence is down"
        assert stored.draft == make_draft()
        assert repo.claim_publish(draft_id="Q1", user_id="U1", now=NOW, stale_after=STALE)


class TestClaims:
    def test_a_prompt_is_claimed_once_per_incident(self, repo: Repository) -> None:
        """The watcher, the resolved message and /postmortem share one prompt per incident."""
        assert repo.claim_prompt(incident_id="Q1", channel_id="C1", trigger="message", now=NOW)
        assert not repo.claim_prompt(incident_id="Q1", channel_id="C1", trigger="watcher", now=NOW)

    def test_a_released_lease_is_free_at_once(self, repo: Repository) -> None:
        """A replica shutting down hands its lease back; another takes it without waiting for expiry."""
        assert repo.take_lease(name="watch", holder="a", now=NOW, ttl=timedelta(minutes=2))
        assert not repo.take_lease(name="watch", holder="b", now=NOW, ttl=timedelta(minutes=2))
        repo.release_lease(name="watch", holder="b")  # not b's to give back
        assert not repo.take_lease(name="watch", holder="b", now=NOW, ttl=timedelta(minutes=2))
        repo.release_lease(name="watch", holder="a")
        assert repo.take_lease(name="watch", holder="b", now=NOW, ttl=timedelta(minutes=2))

    def test_claims_and_cursors(self, repo: Repository) -> None:
        """A claim key is taken once; a cursor keeps its latest value."""
        assert repo.claim(key="envelope:1", now=NOW)
        assert not repo.claim(key="envelope:1", now=NOW)
        repo.set_cursor(name="watcher", value="a", now=NOW)
        repo.set_cursor(name="watcher", value="b", now=NOW)
        assert repo.get_cursor("watcher") == "b"


class TestUnavailable:
    def test_an_unreachable_database_is_a_store_error(self) -> None:
        """Connections refused become one clear StoreError, not a driver traceback."""
        engine = create_store_engine("postgresql://postgres@127.0.0.1:1/none")
        with pytest.raises(StoreError, match="database"):
            Repository(engine).get("Q1")
