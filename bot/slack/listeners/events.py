"""Channel messages: live capture and the "resolved" prompt. Every event the manifest subscribes to is
listened for here or in capture.py, because Bolt acks only handled envelopes and Slack redelivers the rest."""

from __future__ import annotations

import logging
from functools import lru_cache

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import PostmortemError
from bot.slack.announcer import post_prompt
from bot.slack.channels import incident_number_from_channel, is_incident_channel
from bot.slack.context import BotContext
from bot.slack.listeners.capture import capture_event
from bot.slack.resolved import says_resolved

log = logging.getLogger(__name__)


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    # Keyed by the channel id alone: Bolt hands every request a new WebClient. A failed read raises, so
    # it is not cached and the next message asks again.
    @lru_cache(maxsize=1024)
    def read_name(channel_id: str) -> str | None:
        return app.client.conversations_info(channel=channel_id)["channel"].get("name")

    def channel_name(channel_id: str) -> str | None:
        try:
            return read_name(channel_id)
        except SlackApiError as exc:
            log.warning(
                "channel lookup failed", extra={"channel": channel_id, "error": exc.response["error"]}
            )
            return None

    @app.event("message")
    def on_message(event: dict, client: WebClient, context: BoltContext) -> None:
        # Every message event (new, edited, deleted, thread reply) is captured here: Bolt runs only the
        # first listener matching an event, so capture cannot have a `message` listener of its own.
        capture_event(ctx, event, context)
        if not says_resolved(event, phrases=ctx.options.resolved_phrases):
            return
        channel_id = event.get("channel")
        name = channel_name(channel_id) if channel_id else None
        if not is_incident_channel(name, ctx.options.incident_channel_patterns):
            return
        number = incident_number_from_channel(name)
        if number is None:
            return
        offer_postmortem(ctx, client, channel_id=channel_id, ref=number, trigger="message")


def offer_postmortem(
    ctx: BotContext, client: WebClient, *, channel_id: str, ref: str, trigger: str
) -> str | None:
    """Post the prompt once per incident (claimed in the store, across replicas). Returns its ts."""
    services = ctx.services
    try:
        incident = services.sources.incidents.get_incident(ref)
    except PostmortemError as exc:
        log.warning("no incident for the resolved message", extra={"ref": ref, "error": str(exc)})
        return None
    if not services.repo.claim_prompt(
        incident_id=incident.id, channel_id=channel_id, trigger=trigger, now=services.clock()
    ):
        return None
    try:
        ts = post_prompt(client, channel_id=channel_id, incident=incident)
    except PostmortemError:
        services.repo.release_prompt(incident_id=incident.id)  # the next resolved message may try again
        raise
    services.repo.set_prompt_ts(incident_id=incident.id, ts=ts)
    log.info(
        "prompted",
        extra={"incident": incident.key, "channel": channel_id, "action": "prompt", "trigger": trigger},
    )
    return ts
