"""The prompt's and the preview's buttons over Socket Mode: draft, edit, regenerate, discard, open the page,
and the reviewer check they share. Approve and Retry are in test_approve.py."""

from __future__ import annotations

import logging

import pytest

from bot.analysis.models import EditableSection
from bot.ids import ActionId, BlockId, CallbackId
from tests.fakes.http import Fault
from tests.fakes.slack_payloads import action_ids, block_action, message_event
from tests.slack.conftest import (
    ANA,
    BEN,
    CHANNEL,
    CHANNEL_NAME,
    GENERAL,
    GENERAL_NAME,
    INCIDENT_ID,
    OTHER_INCIDENT,
    OTHER_INCIDENT_NAME,
    OUTSIDER,
    Harness,
    Sent,
    all_text,
    block_text,
)
from tests.slack.flows import (
    NEW_SUMMARY,
    PREVIEW_BUTTONS,
    approve,
    cut_off_draft,
    edit_summary,
    ephemeral_reply,
    recover,
)

EXPIRED = "1721477900.7000000001.expiredtrigger"


class TestStartDraft:
    def test_prompt_button_drafts_in_the_channel(self, harness: Harness) -> None:
        """The prompt's "Draft the postmortem" button compiles the draft and shows its preview."""
        harness.settle(harness.event(message_event(channel=CHANNEL, text="Incident is resolved, all clear")))
        prompt = harness.posted_in(CHANNEL)[0]
        harness.settle(harness.click(ActionId.START_DRAFT, message=prompt, user_id=BEN))
        stored = harness.stored()
        assert (stored.status.value, stored.requested_by) == ("draft", BEN)
        assert action_ids(harness.preview()) == PREVIEW_BUTTONS

    def test_second_click_points_to_the_draft(self, harness: Harness) -> None:
        """Clicking the prompt again after the draft exists answers with its link, drafting nothing new."""
        harness.settle(harness.event(message_event(channel=CHANNEL, text="Incident is resolved, all clear")))
        prompt = harness.posted_in(CHANNEL)[0]
        harness.settle(harness.click(ActionId.START_DRAFT, message=prompt))
        again = harness.click(ActionId.START_DRAFT, message=prompt, user_id=BEN)
        harness.settle(again)
        assert "already exists" in ephemeral_reply(harness, again)
        assert len(harness.posted_in(CHANNEL)) == 2  # the prompt and the one preview

    def test_retry_after_a_failed_draft_drafts_in_the_same_message(self, harness: Harness) -> None:
        """A draft cut off mid-way shows the error with Retry in its message; Retry drafts into that message."""
        ts = cut_off_draft(harness, recorded=True)
        recover(harness)
        assert harness.stored().status.value == "failed"
        failed = harness.message(ts)
        assert "Could not draft PD-9876" in all_text(failed) and action_ids(failed) == [ActionId.START_DRAFT]

        harness.settle(harness.click(ActionId.START_DRAFT, message=failed))
        stored = harness.stored()
        assert (stored.status.value, stored.preview_ts) == ("draft", failed["ts"])
        assert len(harness.posted_in(CHANNEL)) == 1
        assert action_ids(harness.preview()) == PREVIEW_BUTTONS


class TestEdit:
    def test_opens_the_modal_prefilled(self, harness: Harness) -> None:
        """Edit opens the modal with the click's trigger id, the draft id and the current sections."""
        preview = harness.drafted()
        sent = harness.click(ActionId.EDIT, message=preview)
        harness.settle(sent)
        [opened] = harness.slack.views
        trigger = harness.socket.deliveries[sent.envelope_id].envelope["payload"]["trigger_id"]
        assert (opened["method"], opened["trigger_id"]) == ("views.open", trigger)
        view = opened["view"]
        assert (view["callback_id"], view["private_metadata"]) == (CallbackId.EDIT_MODAL, INCIDENT_ID)
        inputs = {
            b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"
        }
        assert set(inputs) == {f"{BlockId.EDIT_PREFIX}{s.value}" for s in EditableSection}
        assert inputs["pm_edit_summary"] == harness.stored().draft.summary

    def test_modal_shows_an_earlier_edit(self, harness: Harness) -> None:
        """Opening Edit again shows the person's saved text, not the computed one."""
        harness.drafted()
        edit_summary(harness)
        harness.settle(harness.click(ActionId.EDIT, message=harness.preview(), user_id=BEN))
        view = harness.slack.views[-1]["view"]
        summary = next(b for b in view["blocks"] if b.get("block_id") == "pm_edit_summary")
        assert summary["element"]["initial_value"] == NEW_SUMMARY

    def test_expired_trigger_is_explained(self, harness: Harness) -> None:
        """When Slack will not open the modal (the click's trigger expired), the person is told to click again."""
        preview = harness.drafted()
        harness.slack.expired_trigger_ids.add(EXPIRED)
        payload = block_action(
            message=preview,
            action_id=ActionId.EDIT,
            channel_id=CHANNEL,
            channel_name=CHANNEL_NAME,
            user_id=ANA,
            response_url=harness.slack.response_url("expired"),
        )
        sent = Sent(harness.socket.deliver("interactive", payload | {"trigger_id": EXPIRED}), "expired")
        harness.settle(sent)
        assert "Edit again" in ephemeral_reply(harness, sent)
        assert harness.slack.views == []


class TestRegenerate:
    def test_keeps_the_human_edit(self, harness: Harness) -> None:
        """Regenerate reads the sources again; the edited summary stays in the draft and the preview."""
        harness.drafted()
        edit_summary(harness)
        version = harness.stored().body_version
        harness.settle(harness.click(ActionId.REGENERATE, message=harness.preview(), user_id=BEN))
        stored = harness.stored()
        assert stored.body_version > version
        assert stored.draft.edits[EditableSection.SUMMARY] == NEW_SUMMARY
        preview = harness.preview()
        assert any(
            NEW_SUMMARY.split(" for ")[0] in (b.get("text") or {}).get("text", "") for b in preview["blocks"]
        )
        assert action_ids(preview) == PREVIEW_BUTTONS

    def test_shows_progress_in_the_preview_message(self, harness: Harness) -> None:
        """While regenerating, the same message shows the sources' progress, then the preview again."""
        harness.drafted()
        ts = harness.stored().preview_ts
        before = len(harness.slack.updated)
        harness.settle(harness.click(ActionId.REGENERATE, message=harness.preview()))
        updates = [u for u in harness.slack.updated[before:] if u["ts"] == ts]
        assert updates[0]["text"].startswith("Drafting the postmortem")
        assert "PD-9876" in block_text(updates[-1], BlockId.HEADER)
        assert len(harness.posted_in(CHANNEL)) == 1

    def test_sources_down_keep_the_draft_as_it_was(self, live_harness: Harness) -> None:
        """With PagerDuty failing, Regenerate says so and the draft and its preview stay reviewable."""
        harness = live_harness
        harness.drafted()
        before = harness.stored()
        assert harness.pagerduty is not None
        harness.pagerduty.faults.add(Fault("5xx", times=None, status=503))
        sent = harness.click(ActionId.REGENERATE, message=harness.preview())
        harness.settle(sent)
        assert "Regenerating PD-9876 failed" in ephemeral_reply(harness, sent)
        after = harness.stored()
        assert (after.status.value, after.body_version, after.error) == ("draft", before.body_version, None)
        preview = harness.preview()
        assert action_ids(preview) == PREVIEW_BUTTONS
        assert "failed" not in block_text(preview, BlockId.STATUS)

    def test_stale_button_on_a_discarded_draft_is_refused(self, harness: Harness) -> None:
        """Regenerate from before a discard does not bring the draft back."""
        preview = harness.drafted()
        harness.settle(harness.click(ActionId.DISCARD, message=preview))
        sent = harness.click(ActionId.REGENERATE, message=preview)
        harness.settle(sent)
        assert "discarded" in ephemeral_reply(harness, sent)
        assert harness.stored().status.value == "discarded"
        assert "Discarded" in block_text(harness.preview(), BlockId.STATUS)


class TestDiscard:
    def test_marks_discarded_and_a_later_approve_does_nothing(self, harness: Harness) -> None:
        """Discard ends the draft: the preview says so, and an old Approve button publishes nothing."""
        preview = harness.drafted()
        harness.settle(harness.click(ActionId.DISCARD, message=preview))
        assert harness.stored().status.value == "discarded"
        discarded = harness.preview()
        assert "Discarded" in block_text(discarded, BlockId.STATUS) and action_ids(discarded) == []

        late = harness.click(ActionId.APPROVE, message=preview)  # the button as it was before
        harness.settle(late)
        assert "discarded" in ephemeral_reply(harness, late)
        assert harness.stored().status.value == "discarded"
        assert len(harness.confluence.pages) == 1

    def test_published_draft_cannot_be_discarded(self, harness: Harness) -> None:
        """A stale Discard button on a published draft is refused with the reason."""
        preview = harness.drafted()
        approve(harness)
        sent = harness.click(ActionId.DISCARD, message=preview)
        harness.settle(sent)
        assert "published" in ephemeral_reply(harness, sent)
        assert harness.stored().status.value == "published"


class TestOpenPage:
    def test_link_button_click_is_acked(self, harness: Harness) -> None:
        """The "Open the page" link button's click is acked and changes nothing."""
        harness.drafted()
        approve(harness)
        posted, updated = len(harness.slack.posted), len(harness.slack.updated)
        sent = harness.click(ActionId.OPEN_PAGE, message=harness.preview())
        assert harness.settle(sent).envelope_id == sent.envelope_id
        assert (len(harness.slack.posted), len(harness.slack.updated)) == (posted, updated)
        assert harness.responses(sent) == []


REVIEW_ACTIONS = [
    pytest.param(ActionId.APPROVE, "approve", id="approve"),
    pytest.param(ActionId.EDIT, "edit", id="edit"),
    pytest.param(ActionId.REGENERATE, "regenerate", id="regenerate"),
    pytest.param(ActionId.DISCARD, "discard", id="discard"),
]


class TestLoadForReview:
    """The check every review button goes through (approve, edit, regenerate, discard)."""

    @pytest.mark.parametrize(("action_id", "verb"), REVIEW_ACTIONS)
    def test_non_member_is_refused_and_nothing_changes(
        self, harness: Harness, caplog: pytest.LogCaptureFixture, action_id: ActionId, verb: str
    ) -> None:
        """Someone outside the incident channel is refused ephemerally, logged, and the draft stays as it was."""
        preview = harness.drafted()
        before = harness.stored()
        updates = len(harness.slack.updated)
        caplog.set_level(logging.WARNING, logger="bot.slack.authz")
        sent = harness.click(action_id, message=preview, user_id=OUTSIDER)
        harness.settle(sent)
        assert f"Only approvers of PD-9876 may {verb}" in ephemeral_reply(harness, sent)
        after = harness.stored()
        assert (after.status, after.body_version, after.draft) == (
            before.status,
            before.body_version,
            before.draft,
        )
        assert len(harness.slack.updated) == updates and harness.slack.views == []
        assert len(harness.confluence.pages) == 1
        [refusal] = [r for r in caplog.records if r.getMessage() == "refused: not an approver"]
        assert (refusal.user, refusal.action, refusal.incident, refusal.draft) == (
            OUTSIDER,
            verb,
            "PD-9876",
            INCIDENT_ID,
        )

    @pytest.mark.parametrize(
        ("user_id", "channel_id", "channel_name"),
        [
            pytest.param(
                OUTSIDER, OTHER_INCIDENT, OTHER_INCIDENT_NAME, id="member-of-another-incident-channel"
            ),
            pytest.param(ANA, GENERAL, GENERAL_NAME, id="approver-clicking-from-another-channel"),
        ],
    )
    def test_button_forged_in_another_channel_is_refused(
        self,
        harness: Harness,
        caplog: pytest.LogCaptureFixture,
        user_id: str,
        channel_id: str,
        channel_name: str,
    ) -> None:
        """A click from another channel naming this draft is refused, whoever sends it."""
        preview = harness.drafted()
        caplog.set_level(logging.WARNING, logger="bot.slack.authz")
        sent = harness.click(
            ActionId.APPROVE,
            message=preview,
            user_id=user_id,
            channel_id=channel_id,
            channel_name=channel_name,
        )
        harness.settle(sent)
        assert "Only approvers" in ephemeral_reply(harness, sent)
        assert harness.stored().status.value == "draft" and len(harness.confluence.pages) == 1
        assert any(r.getMessage() == "refused: not an approver" for r in caplog.records)

    def test_usergroup_replaces_channel_membership(self, reviewers_harness: Harness) -> None:
        """With APPROVER_USERGROUP, a channel member outside the group is refused and a group member is not."""
        harness = reviewers_harness
        preview = harness.drafted()
        refused = harness.click(ActionId.APPROVE, message=preview, user_id=ANA)
        harness.settle(refused)
        assert "Only approvers" in ephemeral_reply(harness, refused)
        assert harness.stored().status.value == "draft"
        harness.settle(harness.click(ActionId.APPROVE, message=preview, user_id=OUTSIDER))
        stored = harness.stored()
        assert (stored.status.value, stored.published_by) == ("published", OUTSIDER)
