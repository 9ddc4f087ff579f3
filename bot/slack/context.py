"""What every listener gets: the use-case services and the Slack-side options."""

from __future__ import annotations

from dataclasses import dataclass

from bot.postmortem import Services
from bot.slack.capture import LiveCapture


@dataclass(frozen=True)
class SlackOptions:
    incident_channel_patterns: tuple[str, ...] = ("inc-*", "incident-*")
    resolved_phrases: tuple[str, ...] = ("resolved", "all clear", "incident is over")
    approvers: tuple[str, ...] = ()  # user ids; empty and no user group: members of the incident channel
    approver_usergroup: str | None = None


@dataclass(frozen=True)
class BotContext:
    services: Services
    options: SlackOptions
    capture: LiveCapture | None = None  # live capture of the channels the bot is in; None: not captured
