"""SlackAnnouncer.refresh: what the recovery job shows for work a dead process left unfinished."""

from __future__ import annotations

from bot.ids import ActionId
from bot.store.repository import STOPPED_DRAFTING
from tests.fakes.slack_payloads import action_ids
from tests.slack.conftest import CHANNEL, Harness
from tests.slack.flows import cut_off_draft, recover

FAILURE = f"Could not draft PD-9876: {STOPPED_DRAFTING}"


class TestRefreshAfterACrash:
    def test_drafting_cut_off_before_its_message_was_recorded_posts_the_error_with_retry(
        self, harness: Harness
    ) -> None:
        """No message ts on the row: the error and Retry are posted anew, and the row now points at them."""
        cut_off_draft(harness, recorded=False)
        assert recover(harness) == 1
        [posted] = harness.posted_in(CHANNEL)
        assert posted["blocks"][0]["text"]["text"] == FAILURE
        assert action_ids(posted) == [ActionId.START_DRAFT]
        stored = harness.stored()
        assert (stored.status.value, stored.preview_ts) == ("failed", posted["ts"])

    def test_drafting_cut_off_after_its_message_was_recorded_updates_that_message(
        self, harness: Harness
    ) -> None:
        """The recorded progress message turns into the error in place: nothing new is posted."""
        ts = cut_off_draft(harness, recorded=True)
        assert ts is not None and recover(harness) == 1
        assert len(harness.posted_in(CHANNEL)) == 1
        assert harness.message(ts)["blocks"][0]["text"]["text"] == FAILURE
