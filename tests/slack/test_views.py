"""The Edit modal's submission over Socket Mode: inline errors, saved edits with their author, the preview updated."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.analysis.models import EditableSection
from bot.ids import ActionId
from tests.slack.conftest import ANA, BEN, INCIDENT_ID, OUTSIDER, Harness, all_text
from tests.slack.flows import NEW_SUMMARY, open_modal


def open_drafted_modal(harness: Harness, user_id: str = ANA) -> dict[str, Any]:
    """Draft PD-9876, then open its Edit modal."""
    harness.drafted()
    return open_modal(harness, user_id=user_id)


def summary_text(harness: Harness) -> str:
    preview = harness.preview()
    return next(
        b["text"]["text"]
        for b in preview["blocks"]
        if b.get("text", {}).get("text", "").startswith("*Summary")
    )


class TestEditSubmission:
    def test_saves_the_change_and_updates_the_preview(self, harness: Harness) -> None:
        """A new summary is acked, stored as the person's edit, and shown in the preview."""
        view = open_drafted_modal(harness)
        version = harness.stored().body_version
        ack = harness.settle(harness.submit(view, user_id=BEN, changes={"pm_edit_summary": NEW_SUMMARY}))
        assert ack.payload is None
        stored = harness.stored()
        assert stored.draft.edits == {EditableSection.SUMMARY: NEW_SUMMARY}
        assert stored.body_version == version + 1
        assert NEW_SUMMARY.split(" for ")[0] in summary_text(harness)

    def test_records_who_changed_what(self, harness: Harness) -> None:
        """Only the changed section is recorded, with its author; untouched sections are not edits."""
        view = open_drafted_modal(harness)
        harness.settle(harness.submit(view, user_id=BEN, changes={"pm_edit_summary": NEW_SUMMARY}))
        [edit] = harness.repo.edits(INCIDENT_ID)
        assert (edit.section, edit.text, edit.user_id) == ("summary", NEW_SUMMARY, BEN)

    def test_unchanged_submission_changes_nothing(self, harness: Harness) -> None:
        """Saving the modal as it was opened records nothing and leaves the preview alone."""
        view = open_drafted_modal(harness)
        version, updates = harness.stored().body_version, len(harness.slack.updated)
        ack = harness.settle(harness.submit(view))
        assert ack.payload is None
        assert harness.repo.edits(INCIDENT_ID) == []
        assert (harness.stored().body_version, len(harness.slack.updated)) == (version, updates)

    def test_clearing_an_edit_brings_back_the_computed_text(self, harness: Harness) -> None:
        """Emptying an edited section removes the edit: the generated summary returns."""
        view = open_drafted_modal(harness)
        harness.settle(harness.submit(view, changes={"pm_edit_summary": NEW_SUMMARY}))
        harness.settle(harness.click(ActionId.EDIT, message=harness.preview()))
        harness.settle(harness.submit(harness.slack.views[-1]["view"], changes={"pm_edit_summary": ""}))
        stored = harness.stored()
        assert stored.draft.edits == {}
        assert [e.text for e in harness.repo.edits(INCIDENT_ID)] == [NEW_SUMMARY, ""]
        assert NEW_SUMMARY.split(" for ")[0] not in all_text(harness.preview())

    @pytest.mark.parametrize(
        ("block_id", "text", "complaint"),
        [
            pytest.param("pm_edit_summary", "Too short.", "full sentence", id="summary-too-short"),
            pytest.param(
                "pm_edit_action_items",
                "- [Ben] add a CI check on the pool size\nfix the runbook",
                "starting with '- '",
                id="action-item-not-a-list-line",
            ),
            pytest.param("pm_edit_impact", "x" * 3001, "under 3000", id="too-long"),
        ],
    )
    def test_invalid_input_is_answered_inline(
        self, harness: Harness, block_id: str, text: str, complaint: str
    ) -> None:
        """Invalid sections come back as response_action errors on their own block; nothing is saved."""
        view = open_drafted_modal(harness)
        version = harness.stored().body_version
        ack = harness.settle(harness.submit(view, changes={block_id: text}))
        assert ack.payload is not None and ack.payload["response_action"] == "errors"
        assert list(ack.payload["errors"]) == [block_id]
        assert complaint in ack.payload["errors"][block_id]
        assert harness.repo.edits(INCIDENT_ID) == []
        assert harness.stored().body_version == version

    def test_forged_private_metadata_is_refused(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A modal naming a draft of a channel the submitter is not in is refused inline and logged."""
        view = open_drafted_modal(
            harness
        )  # Ana's modal; Eve (not in the incident channel) submits one naming it
        caplog.set_level(logging.WARNING, logger="bot.slack.authz")
        forged = view | {"private_metadata": INCIDENT_ID}
        ack = harness.settle(
            harness.submit(forged, user_id=OUTSIDER, changes={"pm_edit_summary": NEW_SUMMARY})
        )
        assert ack.payload["response_action"] == "errors"
        assert "Only approvers" in ack.payload["errors"]["pm_edit_summary"]
        assert harness.stored().draft.edits == {} and harness.repo.edits(INCIDENT_ID) == []
        [refusal] = [r for r in caplog.records if r.getMessage() == "refused: not an approver"]
        assert (refusal.user, refusal.action, refusal.incident, refusal.draft) == (
            OUTSIDER,
            "edit",
            "PD-9876",
            INCIDENT_ID,
        )

    def test_missing_draft_is_answered_inline(self, harness: Harness) -> None:
        """A modal whose draft is gone (another id) gets an inline error instead of a crash."""
        view = open_drafted_modal(harness)
        ack = harness.settle(harness.submit(view | {"private_metadata": "Q0GONE00000000"}))
        assert ack.payload["response_action"] == "errors"
        assert "no longer exists" in ack.payload["errors"]["pm_edit_summary"]

    def test_two_people_editing_different_sections_keep_both_edits(self, harness: Harness) -> None:
        """Ana's modal, opened before Ben saved his summary, does not write the old summary back over it."""
        anas = open_drafted_modal(harness)
        harness.settle(harness.click(ActionId.EDIT, message=harness.preview(), user_id=BEN))
        bens = harness.slack.views[-1]["view"]
        harness.settle(harness.submit(bens, user_id=BEN, changes={"pm_edit_summary": NEW_SUMMARY}))
        impact = "Checkout and login slowed to 3 s per call for 63 minutes; no data was lost."
        harness.settle(harness.submit(anas, user_id=ANA, changes={"pm_edit_impact": impact}))
        edits = harness.stored().draft.edits
        assert edits == {EditableSection.SUMMARY: NEW_SUMMARY, EditableSection.IMPACT: impact}
        assert [(e.section, e.user_id) for e in harness.repo.edits(INCIDENT_ID)] == [
            ("summary", BEN),
            ("impact", ANA),
        ]


class TestEditSubmissionByReviewers:
    def test_refusal_after_a_discard_keeps_the_modal_open(self, reviewers_harness: Harness) -> None:
        """A reviewer outside the channel whose draft was discarded meanwhile is told in the modal itself."""
        harness = reviewers_harness
        view = open_drafted_modal(harness, user_id=OUTSIDER)
        harness.settle(harness.click(ActionId.DISCARD, message=harness.preview(), user_id=BEN))
        ack = harness.settle(harness.submit(view, user_id=OUTSIDER, changes={"pm_edit_summary": NEW_SUMMARY}))
        assert ack.payload is not None and ack.payload["response_action"] == "errors"
        assert "discarded" in ack.payload["errors"]["pm_edit_summary"]
        assert harness.repo.edits(INCIDENT_ID) == []

    def test_reviewer_outside_the_channel_may_edit(self, reviewers_harness: Harness) -> None:
        """With APPROVER_USERGROUP, a member of the group saves edits without being in the channel."""
        harness = reviewers_harness
        view = open_drafted_modal(harness, user_id=OUTSIDER)
        ack = harness.settle(harness.submit(view, user_id=OUTSIDER, changes={"pm_edit_summary": NEW_SUMMARY}))
        assert ack.payload is None
        assert [(e.section, e.user_id) for e in harness.repo.edits(INCIDENT_ID)] == [("summary", OUTSIDER)]
