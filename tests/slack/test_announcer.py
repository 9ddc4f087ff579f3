"""SlackAnnouncer.refresh: what the recovery job shows for work a dead process left unfinished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.ids import ActionId
from bot.jobs.recovery import recover_once
from bot.slack.announcer import SlackAnnouncer
from bot.store.repository import STOPPED_DRAFTING
from tests.slack.conftest import ANA, CHANNEL, INCIDENT_ID, Harness

STALE = timedelta(minutes=5)


def _announcer(harness: Harness) -> SlackAnnouncer:
    return SlackAnnouncer(harness.ctx, harness.app.client)


def _cut_off_draft(harness: Harness) -> datetime:
    """A draft row left "drafting" by a process killed before its progress message was recorded."""
    started = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    harness.repo.start_draft(
        draft_id=INCIDENT_ID, incident_key="PD-9876", channel_id=CHANNEL, requested_by=ANA, now=started
    )
    return started + STALE + timedelta(seconds=1)


class TestRefreshAfterACrash:
    def test_drafting_cut_off_before_its_message_was_recorded_posts_the_error_with_retry(
        self, harness: Harness
    ) -> None:
        """No message ts on the row: the error and Retry are posted anew, and the row now points at them."""
        later = _cut_off_draft(harness)
        assert (
            recover_once(repo=harness.repo, refresher=_announcer(harness), now=later, stale_after=STALE) == 1
        )
        [posted] = harness.posted_in(CHANNEL)
        assert posted["blocks"][0]["text"]["text"] == f"Could not draft PD-9876: {STOPPED_DRAFTING}"
        assert ActionId.START_DRAFT in [
            e["action_id"] for b in posted["blocks"] for e in b.get("elements", [])
        ]
        stored = harness.stored()
        assert (stored.status.value, stored.preview_ts) == ("failed", posted["ts"])

    def test_drafting_cut_off_after_its_message_was_recorded_updates_that_message(
        self, harness: Harness
    ) -> None:
        """The recorded progress message turns into the error in place: nothing new is posted."""
        later = _cut_off_draft(harness)
        ts = harness.app.client.chat_postMessage(
            channel=CHANNEL, text="Drafting the postmortem for PD-9876…"
        )["ts"]
        harness.repo.set_preview(draft_id=INCIDENT_ID, channel_id=CHANNEL, ts=ts)
        recover_once(repo=harness.repo, refresher=_announcer(harness), now=later, stale_after=STALE)
        assert len(harness.posted_in(CHANNEL)) == 1
        updated = harness.message(ts)
        assert updated["blocks"][0]["text"]["text"] == f"Could not draft PD-9876: {STOPPED_DRAFTING}"
