"""Registers every listener on an App. One module per kind of Slack request."""

from __future__ import annotations

from bot.slack.context import BotContext
from bot.slack.listeners import actions, capture, commands, events, views


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    commands.register(app, ctx)
    events.register(app, ctx)
    capture.register(app, ctx)
    actions.register(app, ctx)
    views.register(app, ctx)
