"""Steps the listener tests share: clicking through the preview, editing, approving, reading replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.ids import ActionId
from bot.jobs.recovery import recover_once
from bot.slack.announcer import SlackAnnouncer
from tests.slack.conftest import ANA, CHANNEL, INCIDENT_ID, Harness, Sent

TITLE = "Postmortem: PD-9876 — High severity API latency spikes in production"
NEW_SUMMARY = "A pool-size change in customer-api deploy 1003 starved the orders DB client for 63 minutes."
PREVIEW_BUTTONS = [ActionId.APPROVE, ActionId.EDIT, ActionId.REGENERATE, ActionId.DISCARD]


def ephemeral_reply(harness: Harness, sent: Sent) -> str:
    """The text of the one ephemeral reply through the click's response_url (the original message kept)."""
    replies = harness.responses(sent)
    assert len(replies) == 1, replies
    assert replies[0]["response_type"] == "ephemeral" and replies[0]["replace_original"] is False
    return replies[0]["text"]


def links_posted(harness: Harness) -> list[dict[str, Any]]:
    """The bot's "published" / "updated" link messages in the incident channel."""
    return [p for p in harness.posted_in(CHANNEL) if "The postmortem of PD-9876 was" in p["text"]]


def open_modal(harness: Harness, user_id: str = ANA) -> dict[str, Any]:
    """Click Edit on the preview; the modal as views.open returned it."""
    harness.settle(harness.click(ActionId.EDIT, message=harness.preview(), user_id=user_id))
    return harness.slack.views[-1]["view"]


def edit_summary(harness: Harness, text: str = NEW_SUMMARY, user_id: str = ANA) -> None:
    """Open the Edit modal from the preview and save a new summary."""
    view = open_modal(harness, user_id=user_id)
    ack = harness.settle(harness.submit(view, user_id=user_id, changes={"pm_edit_summary": text}))
    assert ack.payload is None, ack.payload


def approve(harness: Harness, user_id: str = ANA) -> Sent:
    """Click Approve on the preview as it is now, and wait for the listener to finish."""
    sent = harness.click(ActionId.APPROVE, message=harness.preview(), user_id=user_id)
    harness.settle(sent)
    return sent


STALE = timedelta(minutes=5)
CUT_OFF_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def cut_off_draft(harness: Harness, *, recorded: bool) -> str | None:
    """A draft left "drafting" by a process killed mid-way, its progress message posted and recorded, or
    (`recorded=False`) killed before the message was posted or recorded. Returns the message's ts."""
    harness.repo.start_draft(
        draft_id=INCIDENT_ID, incident_key="PD-9876", channel_id=CHANNEL, requested_by=ANA, now=CUT_OFF_AT
    )
    if not recorded:
        return None
    ts = harness.app.client.chat_postMessage(channel=CHANNEL, text="Drafting the postmortem for PD-9876…")[
        "ts"
    ]
    harness.repo.set_preview(draft_id=INCIDENT_ID, channel_id=CHANNEL, ts=ts)
    return ts


def recover(harness: Harness) -> int:
    """One run of the recovery job, past the stale delay of the cut-off draft."""
    return recover_once(
        repo=harness.repo,
        refresher=SlackAnnouncer(harness.ctx, harness.app.client),
        now=CUT_OFF_AT + STALE + timedelta(seconds=1),
        stale_after=STALE,
    )
