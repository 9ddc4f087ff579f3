"""Drafting in a channel, shared by /postmortem, the prompt's button and the watcher: progress, then preview."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import PostmortemError
from bot.postmortem import begin_draft, compile_into
from bot.render.blockkit import render_draft_failure
from bot.slack.authz import log_refusal, may_review
from bot.slack.context import BotContext
from bot.slack.preview import ProgressMessage, show_preview
from bot.sources.slack_client import slack_error

log = logging.getLogger(__name__)

# respond(text): tell the person who asked, ephemerally (through the interaction's response_url).
Respond = Callable[[str], None]


def draft_in_channel(
    ctx: BotContext, client: WebClient, *, ref: str, channel_id: str, user_id: str | None, respond: Respond
) -> None:
    services = ctx.services
    try:
        start = begin_draft(services, ref=ref, channel_id=channel_id, user_id=user_id)
    except PostmortemError as exc:
        respond(str(exc))
        return
    stored, incident = start.stored, start.incident
    if not start.should_compile:
        where = _permalink(client, stored.channel_id, stored.preview_ts)
        respond(f"A postmortem draft for {incident.key} already exists{f': {where}' if where else ''}.")
        return
    # Drafting a reviewed body again (discarded, or its publication failed) recompiles it, keeps its edits and
    # moves it to this channel, whose members may then approve it: only the draft's own approvers may.
    if stored.draft is not None and not (
        user_id and may_review(client, ctx.options, user_id=user_id, channel_id=stored.channel_id)
    ):
        log_refusal(user_id=user_id or "", action="draft", stored=stored, channel_id=channel_id)
        respond(f"Only approvers of {incident.key} may draft its postmortem again.")
        return
    log.info("drafting", extra={"incident": incident.key, "channel": channel_id, "action": "draft"})
    # Drafting again (after a failure or a discard) reuses the old message, when it is in this channel.
    reuse = stored.preview_ts if stored.channel_id == channel_id else None
    progress = ProgressMessage(client, channel_id=channel_id, incident=incident, ts=reuse)
    try:
        ts = progress.post()
    except SlackApiError as exc:
        error = slack_error(exc, action="post in the channel")
        services.repo.fail(draft_id=stored.id, error=str(error), now=services.clock())
        respond(str(error))
        return
    services.repo.set_preview(draft_id=stored.id, channel_id=channel_id, ts=ts)
    try:
        stored = compile_into(
            services,
            draft_id=stored.id,
            ref=incident.id,
            incident=incident,
            channel_id=channel_id,
            progress=progress,
        )
    except PostmortemError as exc:
        log.warning("drafting failed", extra={"incident": incident.key, "action": "draft", "error": str(exc)})
        show_draft_failure(
            client, channel_id=channel_id, ts=ts, incident_key=incident.key, ref=incident.id, error=str(exc)
        )
        respond(f"Could not draft {incident.key}: {exc}")
        return
    show_preview(client, stored, options=services.render_options)
    log.info(
        "draft ready", extra={"incident": incident.key, "action": "draft", "partial": stored.draft.is_partial}
    )


def show_draft_failure(
    client: WebClient, *, channel_id: str, ts: str | None, incident_key: str, ref: str, error: str
) -> str:
    """The progress message turns into the error with a Retry button; nothing is lost. Without a message to
    update (the process died between posting it and recording it) the error is posted anew. Returns its ts."""
    blocks = render_draft_failure(incident_key, draft_id=ref, error=error)
    text = f"Could not draft {incident_key}"
    if ts:
        client.chat_update(channel=channel_id, ts=ts, blocks=blocks, text=text)
        return ts
    return client.chat_postMessage(channel=channel_id, blocks=blocks, text=text)["ts"]


def _permalink(client: WebClient, channel_id: str | None, ts: str | None) -> str | None:
    if not channel_id or not ts:
        return None
    try:
        return client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"]
    except SlackApiError:
        return None
