"""The use cases in bot/postmortem.py, over the replayed sample and a real SQLite store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.analysis.models import DraftOptions, EditableSection
from bot.deps import build_replay_sources
from bot.errors import InputError
from bot.postmortem import Services, begin_draft, compile_into, edit_draft, validate_edits
from bot.render.options import RenderOptions
from bot.samples import DEFAULT_SAMPLE
from bot.sources.gather import GatherOptions
from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository

NOW = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)
REPOS = {"customer-api": "acme/customer-api", "auth-service": "acme/auth-service"}


@pytest.fixture
def services(tmp_path: Path) -> Services:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    migrate(engine)
    return Services(
        repo=Repository(engine),
        sources=build_replay_sources(DEFAULT_SAMPLE),
        gather_options=GatherOptions(repo_for_service=REPOS.get),
        draft_options=DraftOptions(),
        render_options=RenderOptions(),
        publisher=None,
        incident_notes=None,
        clock=lambda: NOW,
    )


def drafted(services: Services) -> str:
    start = begin_draft(services, ref="PD-9876", channel_id="C07INC9876", user_id="U01ANA")
    compile_into(services, draft_id=start.stored.id, ref="PD-9876", channel_id="C07INC9876")
    return start.stored.id


class TestEditDraft:
    def test_a_secret_typed_into_an_edit_is_redacted_and_counted(self, services: Services) -> None:
        """What a person types is redacted like chat: not in the draft, not in the edit history."""
        draft_id = drafted(services)
        before = services.repo.get(draft_id).draft.redaction_count
        key = "AKIA" + "EXAMPLEFAKE12345"
        typed = f"The deploy broke the pool. We rotated {key} afterwards, to be safe, as agreed."
        stored = edit_draft(
            services, draft_id=draft_id, user_id="U01ANA", changes={EditableSection.SUMMARY: typed}
        )
        assert key not in stored.draft.edits[EditableSection.SUMMARY]
        assert "[REDACTED:aws_access_key]" in stored.draft.edits[EditableSection.SUMMARY]
        assert stored.draft.redaction_count == before + 1
        assert all(key not in e.text for e in services.repo.edits(draft_id))

    def test_an_unchanged_section_is_not_recorded(self, services: Services) -> None:
        """Submitting the same text twice records one edit."""
        draft_id = drafted(services)
        text = "A bad pool setting shipped in deploy 1003 and slowed every API call until the rollback."
        edit_draft(services, draft_id=draft_id, user_id="U01ANA", changes={EditableSection.SUMMARY: text})
        edit_draft(services, draft_id=draft_id, user_id="U02BEN", changes={EditableSection.SUMMARY: text})
        assert [e.user_id for e in services.repo.edits(draft_id)] == ["U01ANA"]

    def test_invalid_edits_are_refused_with_the_reason(self, services: Services) -> None:
        """A one-word summary is refused before anything is stored."""
        draft_id = drafted(services)
        with pytest.raises(InputError, match="summary"):
            edit_draft(
                services, draft_id=draft_id, user_id="U01ANA", changes={EditableSection.SUMMARY: "Oops"}
            )
        assert services.repo.edits(draft_id) == []

    def test_concurrent_edits_of_different_sections_are_both_kept(self, services: Services) -> None:
        """Two people saving different sections at the same moment: neither edit is lost, each recorded once."""
        draft_id = drafted(services)
        summary = "A pool setting shipped in deploy 1003 slowed every API call until the rollback at 11:18."
        impact = "Checkout and login were slow for 48 minutes; about 3% of API calls failed."
        changes = [
            ({EditableSection.SUMMARY: summary}, "U01ANA"),
            ({EditableSection.IMPACT: impact}, "U02BEN"),
        ]
        with ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda c: edit_draft(services, draft_id=draft_id, user_id=c[1], changes=c[0]), changes * 3
                )
            )
        edits = services.repo.get(draft_id).draft.edits
        assert (edits[EditableSection.SUMMARY], edits[EditableSection.IMPACT]) == (summary, impact)
        assert sorted(e.user_id for e in services.repo.edits(draft_id)) == ["U01ANA", "U02BEN"]


class TestValidateEdits:
    def test_action_items_must_be_one_per_line(self) -> None:
        """Action items that are not '- ' lines get an inline error; well-formed ones pass."""
        assert EditableSection.ACTION_ITEMS in validate_edits(
            {EditableSection.ACTION_ITEMS: "fix it\n- and this"}
        )
        assert (
            validate_edits({EditableSection.ACTION_ITEMS: "- [Ben] add a CI check\n- document pools"}) == {}
        )
