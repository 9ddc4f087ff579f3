"""/postmortem [PD-9876 | 9876 | incident id | help]"""

from __future__ import annotations

import logging

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import InputError
from bot.render.text import neutralise_pings
from bot.slack.channels import incident_number_from_channel
from bot.slack.context import BotContext
from bot.slack.drafting import draft_in_channel
from bot.slack.guard import guarded
from bot.sources.pagerduty_mapping import parse_incident_ref

log = logging.getLogger(__name__)

USAGE = (
    "*Usage:* `/postmortem PD-9876` (or the incident number, or its PagerDuty id) drafts the incident's postmortem "
    "in this channel.\n`/postmortem` alone works in an incident channel named after its incident (e.g. `#inc-9876`).\n"
    "`/postmortem help` shows this."
)


def parse_command(text: str, *, channel_name: str | None) -> str:
    """The incident reference to draft, or InputError with what went wrong."""
    words = text.split()
    if len(words) > 1:
        raise InputError("Give one incident, like `/postmortem PD-9876`.")
    if words:
        parse_incident_ref(words[0])  # InputError on anything malformed
        return words[0]
    number = incident_number_from_channel(channel_name)
    if number is None:
        raise InputError(
            "This channel is not linked to an incident: name the incident, like `/postmortem PD-9876`."
        )
    return number


def channel_name(client: WebClient, command: dict) -> str | None:
    """The channel's name. A command from a private channel says "privategroup" there: ask Slack instead."""
    name = command.get("channel_name")
    if name and name != "privategroup":
        return name
    try:
        return client.conversations_info(channel=command["channel_id"])["channel"].get("name")
    except SlackApiError as exc:
        log.warning(
            "channel lookup failed", extra={"channel": command["channel_id"], "error": exc.response["error"]}
        )
        return None


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    @app.command("/postmortem")
    @guarded("/postmortem")
    def postmortem_command(ack: Ack, command: dict, client: WebClient, respond: Respond) -> None:
        ack()
        text = (command.get("text") or "").strip()
        if text.lower() in ("help", "-h", "--help"):
            respond(text=USAGE, response_type="ephemeral")
            return
        try:
            ref = parse_command(text, channel_name=None if text else channel_name(client, command))
        except InputError as exc:
            # The refusal may quote what was typed: never let it ping or render as a mention.
            respond(text=f"{neutralise_pings(str(exc))}\n\n{USAGE}", response_type="ephemeral")
            return
        draft_in_channel(
            ctx,
            client,
            ref=ref,
            channel_id=command["channel_id"],
            user_id=command.get("user_id"),
            respond=lambda message: respond(text=message, response_type="ephemeral", replace_original=False),
        )
