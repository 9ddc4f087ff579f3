"""/postmortem over Socket Mode: ack first, progress then preview, usage and refusals through response_url."""

from __future__ import annotations

import pytest

from bot.ids import ActionId, BlockId
from tests.fakes.slack_payloads import action_ids
from tests.slack.conftest import (
    CHANNEL,
    CHANNEL_NAME,
    GENERAL,
    GENERAL_NAME,
    INCIDENT_ID,
    Harness,
    all_text,
    block_text,
)
from tests.slack.flows import PREVIEW_BUTTONS

PRIVATE = "C07WAR9876"  # a private incident channel


def only_ephemeral(harness: Harness, sent) -> dict:  # noqa: ANN001 - Sent
    """The one reply the person got through response_url, checked to be ephemeral."""
    replies = harness.responses(sent)
    assert len(replies) == 1, replies
    assert replies[0]["response_type"] == "ephemeral"
    return replies[0]


def nothing_posted(harness: Harness) -> bool:
    return not harness.slack.requests_to(r"/api/chat\.(postMessage|update)$")


class TestPostmortemCommand:
    def test_acks_without_waiting_for_the_draft(self, harness: Harness) -> None:
        """The command is acked before the draft is shown (the work runs after the ack), within Slack's 3 s."""
        sent = harness.command("PD-9876")
        ack = harness.settle(sent)
        preview_shown = harness.slack.requests_to(r"/api/chat\.update$")[-1]
        assert ack.at < preview_shown.received_at
        assert harness.socket.ack_latency(sent.envelope_id) < 3.0

    def test_progress_message_is_updated_per_source_then_replaced_by_the_preview(
        self, harness: Harness
    ) -> None:
        """One message: posted as progress, updated as each source reports, and turned into the preview."""
        preview = harness.drafted()

        posted = harness.posted_in(CHANNEL)
        assert len(posted) == 1
        assert posted[0]["text"].startswith("Drafting the postmortem for PD-9876")
        ts = posted[0]["ts"]
        assert harness.stored().preview_ts == ts
        updates = [u for u in harness.slack.updated if u["ts"] == ts]
        progress = [u for u in updates if u["text"].startswith("Drafting")]
        for source in ("PagerDuty", "GitHub", "Slack"):
            assert any(f":white_check_mark: *{source}*" in all_text(u) for u in progress), source
        assert updates[-1]["blocks"] == preview["blocks"]
        assert "PD-9876" in block_text(preview, BlockId.HEADER)
        assert action_ids(preview) == PREVIEW_BUTTONS
        assert all(b["value"] == INCIDENT_ID for b in preview["blocks"][-1]["elements"])

    def test_stores_the_draft_for_the_requester(self, harness: Harness) -> None:
        """The draft row records the channel, the preview and who asked."""
        harness.drafted()
        stored = harness.stored()
        assert (stored.incident_key, stored.channel_id, stored.requested_by) == ("PD-9876", CHANNEL, "U01ANA")
        assert stored.draft is not None and stored.draft.incident.id == INCIDENT_ID

    def test_pagerduty_is_read_once_per_draft(self, live_harness: Harness) -> None:
        """The incident read to open the draft is the one drafted: one GET of it, of its alerts and of its log;
        and the commander of the resolved incident comes from that log."""
        harness = live_harness
        harness.drafted()
        assert harness.pagerduty is not None
        paths = [r.path for r in harness.pagerduty.requests if r.method == "GET"]
        assert sorted(paths) == sorted(
            [
                "/incidents/9876",
                f"/incidents/{INCIDENT_ID}/alerts",
                f"/incidents/{INCIDENT_ID}/log_entries",
                f"/incidents/{INCIDENT_ID}/notes",
            ]
        )
        assert harness.stored().draft.incident.commander == "Ana Lima"

    def test_help_answers_with_usage_only(self, harness: Harness) -> None:
        """/postmortem help answers the usage ephemerally and posts nothing."""
        sent = harness.command("help")
        harness.settle(sent)
        assert "/postmortem PD-9876" in only_ephemeral(harness, sent)["text"]
        assert nothing_posted(harness)
        assert harness.repo.get(INCIDENT_ID) is None

    @pytest.mark.parametrize("text", ["PD-98x6; drop table", "PD-9876 PD-9800", "PD-98x6"])
    def test_bad_arguments_get_usage_and_nothing_is_posted(self, harness: Harness, text: str) -> None:
        """Malformed or extra arguments are explained with the usage; no message, no draft."""
        sent = harness.command(text)
        harness.settle(sent)
        reply = only_ephemeral(harness, sent)["text"]
        assert "*Usage:*" in reply
        assert nothing_posted(harness)
        assert harness.repo.get(INCIDENT_ID) is None

    def test_unknown_incident_is_explained(self, harness: Harness) -> None:
        """An incident PagerDuty does not have is answered ephemerally, with nothing posted."""
        sent = harness.command("PD-1234")
        harness.settle(sent)
        assert "PD-1234" in only_ephemeral(harness, sent)["text"]
        assert nothing_posted(harness)

    def test_plain_command_in_the_incident_channel_finds_its_incident(self, harness: Harness) -> None:
        """Without arguments in #inc-9876-api-latency, the incident comes from the channel's name."""
        harness.settle(harness.command("", channel_id=CHANNEL, channel_name=CHANNEL_NAME))
        stored = harness.stored()
        assert stored.incident_key == "PD-9876" and stored.status.value == "draft"
        assert action_ids(harness.preview()) == PREVIEW_BUTTONS

    def test_plain_command_elsewhere_explains_what_to_do(self, harness: Harness) -> None:
        """Without arguments in a channel not named after an incident, the person is told to name one."""
        sent = harness.command("", channel_id=GENERAL, channel_name=GENERAL_NAME)
        harness.settle(sent)
        assert "not linked to an incident" in only_ephemeral(harness, sent)["text"]
        assert nothing_posted(harness)

    def test_second_command_points_to_the_existing_draft(self, harness: Harness) -> None:
        """Asking again for the same incident links the draft instead of drafting twice."""
        harness.drafted()
        version = harness.stored().body_version
        sent = harness.command("PD-9876", user_id="U02BEN")
        harness.settle(sent)
        reply = only_ephemeral(harness, sent)["text"]
        ts = harness.stored().preview_ts
        assert "already exists" in reply
        assert f"/archives/{CHANNEL}/p{ts.replace('.', '')}" in reply
        assert len(harness.posted_in(CHANNEL)) == 1
        assert harness.stored().body_version == version

    def test_plain_command_in_a_private_incident_channel_reads_its_name(self, harness: Harness) -> None:
        """Slack calls a private channel "privategroup" in the command; its real name still finds the incident."""
        harness.slack.add_channel(
            {
                "id": PRIVATE,
                "name": "inc-9876-war-room",
                "is_private": True,
                "is_channel": False,
                "is_group": True,
            },
            members=["U01ANA", "U09PMBOT"],
        )
        harness.settle(harness.command("", channel_id=PRIVATE, channel_name="privategroup"))
        stored = harness.stored()
        assert (stored.incident_key, stored.channel_id) == ("PD-9876", PRIVATE)
        assert action_ids(harness.preview()) == PREVIEW_BUTTONS

    def test_discarded_draft_is_drafted_again_in_another_channel(self, harness: Harness) -> None:
        """After a discard, /postmortem elsewhere drafts anew there, in a new message of that channel."""
        preview = harness.drafted()
        harness.settle(harness.click(ActionId.DISCARD, message=preview))
        sent = harness.command("PD-9876", channel_id=GENERAL, channel_name=GENERAL_NAME)
        harness.settle(sent)
        assert harness.responses(sent) == []
        stored = harness.stored()
        assert (stored.status.value, stored.channel_id) == ("draft", GENERAL)
        [posted] = harness.posted_in(GENERAL)
        assert stored.preview_ts == posted["ts"]
        assert action_ids(harness.preview()) == PREVIEW_BUTTONS
