"""Channel message events: the "resolved" prompt, and an acked listener for every event the manifest subscribes to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ids import ActionId
from tests.fakes.http import Fault
from tests.fakes.slack_payloads import action_ids, find_button, message_event
from tests.slack.conftest import (
    CHANNEL,
    GENERAL,
    INCIDENT_ID,
    OTHER_INCIDENT,
    Harness,
)

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
RESOLVED = "Incident is resolved, all clear"
PAGERDUTY_PROFILE = {
    "id": "B0PAGERDTY",
    "deleted": False,
    "name": "PagerDuty",
    "updated": 1700000000,
    "app_id": "A0PAGERDTY",
    "icons": {"image_36": "https://a.slack-edge.com/pagerduty_36.png"},
    "team_id": "T07ACME00",
}


def prompts(harness: Harness) -> list[dict[str, Any]]:
    """Messages the bot posted offering to draft (the START_DRAFT button)."""
    return [p for p in harness.posted_in(CHANNEL) if ActionId.START_DRAFT in action_ids(p)]


def say(harness: Harness, text: str = RESOLVED, **fields: Any) -> None:
    harness.settle(harness.event(message_event(channel=fields.pop("channel", CHANNEL), text=text, **fields)))


class TestResolvedPrompt:
    def test_resolved_message_prompts_once_with_the_draft_button(self, harness: Harness) -> None:
        """A person saying the incident is resolved gets one prompt whose button names the incident."""
        say(harness)
        [prompt] = prompts(harness)
        assert find_button(prompt, ActionId.START_DRAFT)["value"] == INCIDENT_ID
        assert "PD-9876" in prompt["text"]

    def test_second_resolved_message_does_not_prompt_again(self, harness: Harness) -> None:
        """Saying it twice (or Slack redelivering) still leaves one prompt."""
        say(harness)
        say(harness, "All clear, incident is resolved. Thanks everyone!", user="U02BEN")
        assert len(prompts(harness)) == 1

    def test_redelivered_event_prompts_once(self, harness: Harness) -> None:
        """The same envelope delivered again (a retry after a lost ack) does not post a second prompt."""
        sent = harness.event(message_event(channel=CHANNEL, text=RESOLVED))
        harness.settle(sent)
        harness.settle(harness.redeliver(sent), acks=2)
        assert len(prompts(harness)) == 1

    @pytest.mark.parametrize(
        ("text", "fields"),
        [
            pytest.param("is it resolved?", {}, id="question"),
            pytest.param("not resolved yet", {}, id="negation"),
            pytest.param(
                RESOLVED, {"thread_ts": "1721472600.000400", "parent_user_id": "U02BEN"}, id="thread-reply"
            ),
            pytest.param(
                "Recovered: High API Latency is resolved",
                {"user": None, "subtype": "bot_message", "bot_id": "B0DATADOG", "username": "Datadog"},
                id="other-bot",
            ),
            pytest.param(
                RESOLVED,
                {"user": "U09PMBOT", "bot_id": "B09PMBOT", "app_id": "A09PMBOT"},
                id="own-message",
            ),
            pytest.param(RESOLVED, {"channel": GENERAL}, id="not-an-incident-channel"),
            pytest.param(RESOLVED, {"subtype": "message_changed"}, id="edit"),
        ],
    )
    def test_no_prompt(self, harness: Harness, text: str, fields: dict[str, Any]) -> None:
        """Questions, negations, thread replies, bots, edits and other channels do not prompt (nor use up the prompt)."""
        channel = fields.get("channel", CHANNEL)
        say(harness, text, **fields)
        assert not [p for p in harness.slack.posted if p["channel"] == channel]
        say(harness)  # the real statement afterwards still prompts: the ignored one claimed nothing
        assert len(prompts(harness)) == 1

    def test_unknown_incident_channel_does_not_prompt(self, harness: Harness) -> None:
        """An incident channel whose incident PagerDuty does not know gets no prompt."""
        say(harness, channel=OTHER_INCIDENT)
        assert harness.slack.posted == []

    def test_pagerduty_resolution_notice_prompts(self, harness: Harness) -> None:
        """PagerDuty's own "Resolved" notice (a bot message) prompts."""
        say(
            harness,
            "",
            user="U0PAGERDTY",
            bot_id="B0PAGERDTY",
            app_id="A0PAGERDTY",
            bot_profile=PAGERDUTY_PROFILE,
            attachments=[
                {
                    "id": 1,
                    "color": "2eb886",
                    "fallback": "Resolved: #9876 High severity API latency spikes in production",
                    "title": "Resolved: #9876 High severity API latency spikes in production",
                    "title_link": "https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7",
                }
            ],
        )
        [prompt] = prompts(harness)
        assert find_button(prompt, ActionId.START_DRAFT)["value"] == INCIDENT_ID

    def test_pagerduty_trigger_notice_does_not_prompt(self, harness: Harness) -> None:
        """PagerDuty announcing a trigger or an acknowledgement is not a resolution."""
        say(
            harness,
            "Acknowledged: #9876 High severity API latency spikes in production",
            user="U0PAGERDTY",
            bot_id="B0PAGERDTY",
            bot_profile=PAGERDUTY_PROFILE,
        )
        assert harness.slack.posted == []

    def test_no_prompt_once_a_draft_was_requested(self, harness: Harness) -> None:
        """After /postmortem drafted the incident, "resolved" does not offer a second draft."""
        harness.drafted()
        say(harness)
        assert prompts(harness) == []
        assert len(harness.posted_in(CHANNEL)) == 1


def manifest_events() -> list[str]:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return list(manifest["settings"]["event_subscriptions"]["bot_events"])


def event_for(subscription: str) -> dict[str, Any]:
    """One event as Slack delivers it for a manifest subscription (message.channels -> a channel message)."""
    kind, _, scope = subscription.partition(".")
    if kind == "message":
        channel_type = {"channels": "channel", "groups": "group", "im": "im", "mpim": "mpim"}[scope]
        return message_event(channel=CHANNEL, text="deploy finished", channel_type=channel_type)
    return {"type": kind, "event_ts": "1721477760.002600"}


class TestManifestEvents:
    def test_manifest_subscribes_to_channel_messages(self) -> None:
        """The manifest asks for public and private channel messages (what the prompt listens to)."""
        assert {"message.channels", "message.groups"} <= set(manifest_events())

    @pytest.mark.parametrize("subscription", manifest_events())
    def test_every_subscribed_event_is_acked(self, harness: Harness, subscription: str) -> None:
        """Each event the manifest subscribes to reaches a listener and is acked (Slack would redeliver it)."""
        sent = harness.event(event_for(subscription))
        ack = harness.settle(sent)
        assert ack.envelope_id == sent.envelope_id


class TestChannelLookup:
    def test_channel_name_is_read_once(self, harness: Harness) -> None:
        """Resolved-sounding messages in one channel ask Slack for its name once."""
        say(harness, channel=GENERAL)
        say(harness, "all clear here too", channel=GENERAL, user="U02BEN")
        assert len(harness.slack.requests_to(r"/api/conversations\.info$")) == 1

    def test_failed_lookup_is_tried_again(self, harness: Harness) -> None:
        """A channel lookup that failed (Slack down) does not silence the channel for good."""
        harness.slack.faults.add(Fault("5xx", times=None, status=503, path=r"conversations\.info"))
        say(harness)
        assert prompts(harness) == []
        harness.slack.faults.clear()
        say(harness, "All clear, incident is resolved.", user="U02BEN")
        assert len(prompts(harness)) == 1
