"""Pins, reactions and memberships of the channels the bot is in, for live capture (bot/slack/capture.py).

Channel messages (new, edited, deleted, thread replies) reach capture through the `message` listener in
events.py: Bolt runs only the first listener that matches an event, so there is one `message` listener.
Every event here is subscribed to in manifest.yml and must be listened for even when capture is off:
Bolt acks only handled envelopes, and Slack redelivers the rest.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext

from bot.slack.capture import CAPTURED_EVENTS
from bot.slack.context import BotContext


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    def on_capture_event(event: dict[str, Any], context: BoltContext) -> None:
        capture_event(ctx, event, context)

    for kind in CAPTURED_EVENTS:
        app.event(kind)(on_capture_event)


def capture_event(ctx: BotContext, event: dict[str, Any], context: BoltContext) -> None:
    """Hand one event to this replica's capture, when the app captures (the `message` listener calls it too)."""
    if ctx.capture is not None:
        ctx.capture.handle(event, bot_user_id=context.bot_user_id)
