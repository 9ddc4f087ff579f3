"""The preview's and the prompt's buttons over Socket Mode: draft, edit, approve, retry, regenerate, discard."""

from __future__ import annotations

import logging

import pytest

from bot.analysis.models import EditableSection
from bot.ids import ActionId, BlockId, CallbackId
from tests.fakes.http import Fault
from tests.slack.conftest import (
    ANA,
    BEN,
    CHANNEL,
    GENERAL,
    GENERAL_NAME,
    INCIDENT_ID,
    OTHER_INCIDENT,
    OTHER_INCIDENT_NAME,
    OUTSIDER,
    Harness,
    Sent,
    action_ids,
    all_text,
    block_text,
)
from tests.slack.payloads import message_event

TITLE = "Postmortem: PD-9876 — High severity API latency spikes in production"
NEW_SUMMARY = "A pool-size change in customer-api deploy 1003 starved the orders DB client for 63 minutes."


def ephemeral_reply(harness: Harness, sent: Sent) -> str:
    """The text of the one ephemeral reply through the click's response_url."""
    replies = harness.responses(sent)
    assert len(replies) == 1, replies
    assert replies[0]["response_type"] == "ephemeral" and replies[0]["replace_original"] is False
    return replies[0]["text"]


def links_posted(harness: Harness) -> list[dict]:
    return [p for p in harness.posted_in(CHANNEL) if "The postmortem of PD-9876 was" in p["text"]]


def edit_summary(harness: Harness, text: str = NEW_SUMMARY, user_id: str = ANA) -> None:
    """Open the Edit modal from the preview and save a new summary."""
    harness.settle(harness.click(ActionId.EDIT, message=harness.preview(), user_id=user_id))
    view = harness.slack.views[-1]["view"]
    ack = harness.settle(harness.submit(view, user_id=user_id, changes={"pm_edit_summary": text}))
    assert ack.payload is None, ack.payload


def approve(harness: Harness, user_id: str = ANA) -> Sent:
    sent = harness.click(ActionId.APPROVE, message=harness.preview(), user_id=user_id)
    harness.settle(sent)
    return sent


class TestStartDraft:
    def test_prompt_button_drafts_in_the_channel(self, harness: Harness) -> None:
        """ "Draft the postmortem" on the resolved prompt compiles the draft and shows its preview."""
        harness.settle(harness.event(message_event(channel=CHANNEL, text="Incident is resolved, all clear")))
        prompt = harness.posted_in(CHANNEL)[0]
        harness.settle(harness.click(ActionId.START_DRAFT, message=prompt, user_id=BEN))
        stored = harness.stored()
        assert (stored.status.value, stored.requested_by) == ("draft", BEN)
        assert action_ids(harness.preview()) == [
            ActionId.APPROVE,
            ActionId.EDIT,
            ActionId.REGENERATE,
            ActionId.DISCARD,
        ]

    def test_second_click_points_to_the_draft(self, harness: Harness) -> None:
        """Clicking the prompt again after the draft exists answers with its link, drafting nothing new."""
        harness.settle(harness.event(message_event(channel=CHANNEL, text="Incident is resolved, all clear")))
        prompt = harness.posted_in(CHANNEL)[0]
        harness.settle(harness.click(ActionId.START_DRAFT, message=prompt))
        again = harness.click(ActionId.START_DRAFT, message=prompt, user_id=BEN)
        harness.settle(again)
        assert "already exists" in ephemeral_reply(harness, again)
        assert len(harness.posted_in(CHANNEL)) == 2  # the prompt and the one preview


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


class TestApprove:
    def test_publishes_one_page_with_labels_and_chart(self, harness: Harness) -> None:
        """Approve writes one Confluence page under the parent, labelled, with the timeline chart attached."""
        harness.drafted()
        approve(harness)
        [page] = [p for p in harness.confluence.pages.values() if p.id != harness.parent.id]
        assert (page.title, page.parent_id, page.space_key) == (TITLE, harness.parent.id, "PM")
        assert {"postmortem", "sev-1", "customer-api", "auth-service"} <= set(page.labels)
        chart = page.attachments["PD-9876-timeline.png"]
        assert chart.mime == "image/png" and chart.data.startswith(b"\x89PNG\r\n\x1a\n")

    def test_posts_the_link_and_marks_the_preview_published(self, harness: Harness) -> None:
        """The channel gets the page's link once; the preview says who published it and offers the page."""
        harness.drafted()
        approve(harness)
        stored = harness.stored()
        assert stored.status.value == "published" and stored.published_by == ANA
        [link] = links_posted(harness)
        assert stored.page_url in link["text"] and f"<@{ANA}>" in link["text"]
        preview = harness.preview()
        assert f"Published by <@{ANA}>" in block_text(preview, BlockId.STATUS)
        assert ActionId.OPEN_PAGE in action_ids(preview)
        assert ActionId.DISCARD not in action_ids(preview)

    def test_preview_says_publishing_while_it_publishes(self, harness: Harness) -> None:
        """Before Confluence answers, the preview already shows "Publishing…" without buttons."""
        harness.drafted()
        approve(harness)
        ts = harness.stored().preview_ts
        statuses = [u for u in harness.slack.updated if u["ts"] == ts]
        publishing = [u for u in statuses if "Publishing to Confluence" in all_text(u)]
        assert publishing and action_ids(publishing[0]) == []

    def test_approving_twice_publishes_once(self, harness: Harness) -> None:
        """A second Approve with nothing changed publishes nothing and says so."""
        harness.drafted()
        approve(harness)
        second = approve(harness, user_id=BEN)
        assert "already published" in ephemeral_reply(harness, second)
        assert len(harness.confluence.pages) == 2  # the parent and the postmortem
        assert len(links_posted(harness)) == 1

    def test_double_click_publishes_once(self, harness: Harness) -> None:
        """Two clicks arriving together (two people, or one impatient one) make one page and one link."""
        preview = harness.drafted()
        first = harness.click(ActionId.APPROVE, message=preview)
        second = harness.click(ActionId.APPROVE, message=preview, user_id=BEN)
        harness.settle(first)
        harness.settle(second)
        assert len(harness.confluence.pages) == 2
        assert len(harness.confluence.requests_to(r"/wiki/api/v2/pages$", "POST")) == 1
        assert len(links_posted(harness)) == 1

    def test_redelivered_envelope_publishes_once(self, harness: Harness) -> None:
        """Slack redelivering the same Approve envelope does not publish a second time."""
        harness.drafted()
        sent = approve(harness)
        harness.settle(harness.redeliver(sent), acks=2)
        assert len(harness.confluence.pages) == 2
        assert len(harness.confluence.requests_to(r"/wiki/api/v2/pages$", "POST")) == 1
        assert len(links_posted(harness)) == 1

    def test_approve_after_an_edit_updates_the_same_page(self, harness: Harness) -> None:
        """An edit after publishing, approved again, becomes version 2 of the same page."""
        harness.drafted()
        approve(harness)
        page_id = harness.stored().page_id
        edit_summary(harness)
        approve(harness)
        page = harness.confluence.pages[page_id]
        assert page.version == 2 and NEW_SUMMARY.split(" for ")[0] in page.body
        assert len(harness.confluence.pages) == 2
        assert "was updated by" in links_posted(harness)[-1]["text"]

    def test_confluence_down_shows_the_failure_and_retry_publishes(self, harness: Harness) -> None:
        """With Confluence failing, the preview shows the error and a Retry button; Retry then publishes."""
        harness.drafted()
        harness.confluence.faults.add(Fault("5xx", times=None, status=503))
        sent = approve(harness)
        assert "Publishing PD-9876 failed" in ephemeral_reply(harness, sent)
        stored = harness.stored()
        assert stored.status.value == "failed" and stored.error
        failed = harness.preview()
        assert "Publishing failed" in block_text(failed, BlockId.STATUS)
        assert ActionId.RETRY_PUBLISH in action_ids(failed)
        assert [p for p in harness.confluence.pages.values() if p.id != harness.parent.id] == []

        harness.confluence.faults.clear()
        harness.settle(harness.click(ActionId.RETRY_PUBLISH, message=failed))
        assert harness.stored().status.value == "published"
        assert len(harness.confluence.pages_titled(TITLE)) == 1
        assert len(links_posted(harness)) == 1

    def test_unknown_draft_is_explained(self, harness: Harness) -> None:
        """A button naming a draft the store does not have answers that it no longer exists."""
        preview = harness.drafted()
        sent = harness.click(ActionId.APPROVE, message=preview, value="Q0GONE00000000")
        harness.settle(sent)
        assert "no longer exists" in ephemeral_reply(harness, sent)
        assert len(harness.confluence.pages) == 1

    def test_notes_the_page_on_the_pagerduty_incident_once(self, live_harness: Harness) -> None:
        """Against PagerDuty, publishing adds one note with the page link; an update adds none."""
        harness = live_harness
        harness.drafted()
        approve(harness)
        edit_summary(harness)
        approve(harness)
        assert harness.pagerduty is not None
        [note] = harness.pagerduty.posted_notes
        assert note["incident_id"] == INCIDENT_ID and harness.stored().page_url in note["content"]


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
        assert action_ids(preview) == [ActionId.APPROVE, ActionId.EDIT, ActionId.REGENERATE, ActionId.DISCARD]

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
        """ "Open the page" is a link; its click is acked and changes nothing."""
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
        assert (refusal.user, refusal.action, refusal.incident) == (OUTSIDER, verb, INCIDENT_ID)

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
