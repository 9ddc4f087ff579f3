"""What the background jobs say in Slack (the jobs' Announcer protocol), and the prompt shared with the
"resolved" message listener."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render.blockkit import render_prompt
from bot.slack.context import BotContext
from bot.slack.drafting import draft_in_channel, show_draft_failure
from bot.slack.preview import show_preview
from bot.sources.slack_client import slack_error
from bot.store.repository import StoredDraft
from bot.timeline.models import Incident

log = logging.getLogger(__name__)


def post_prompt(client: WebClient, *, channel_id: str, incident: Incident) -> str:
    """The "draft its postmortem?" message with its button. Slack errors become the project's."""
    try:
        return client.chat_postMessage(
            channel=channel_id,
            blocks=render_prompt(incident, draft_id=incident.id),
            text=f"{incident.key} looks resolved. Draft its postmortem?",
        )["ts"]
    except SlackApiError as exc:
        raise slack_error(exc, action="post the prompt") from exc


class SlackAnnouncer:
    def __init__(self, ctx: BotContext, client: WebClient) -> None:
        self._ctx = ctx
        self._client = client

    def prompt(self, *, channel_id: str, incident: Incident) -> str | None:
        ts = post_prompt(self._client, channel_id=channel_id, incident=incident)
        self._ctx.services.repo.set_prompt_ts(incident_id=incident.id, ts=ts)
        log.info(
            "prompted",
            extra={"incident": incident.key, "channel": channel_id, "action": "prompt", "trigger": "watcher"},
        )
        return ts

    def draft_now(self, *, channel_id: str, incident: Incident) -> None:
        def report(message: str) -> None:
            log.warning(
                "automatic draft", extra={"incident": incident.key, "action": "draft", "outcome": message}
            )

        draft_in_channel(
            self._ctx, self._client, ref=incident.id, channel_id=channel_id, user_id=None, respond=report
        )

    def unrouted(self, *, channel_id: str, incident: Incident) -> None:
        try:
            self._client.chat_postMessage(
                channel=channel_id,
                text=(
                    f"{incident.key} ({incident.title}) was resolved, but I found no Slack channel for it. "
                    f"Run `/postmortem {incident.key}` in its channel to draft the postmortem: {incident.url}"
                ),
                unfurl_links=False,
            )
        except SlackApiError as exc:
            raise slack_error(exc, action="post in the fallback channel") from exc

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None:
        who = f"{commander}, " if commander else ""
        try:
            self._client.chat_postMessage(
                channel=channel_id,
                thread_ts=preview_ts,
                reply_broadcast=bool(preview_ts),
                text=f"{who}the postmortem draft of {draft_key} is waiting for review: approve, edit or discard it.",
            )
        except SlackApiError as exc:
            raise slack_error(exc, action="post the reminder") from exc

    def refresh(self, *, stored: StoredDraft) -> None:
        """Show a draft's state in its channel message (the recovery job's PreviewRefresher): a drafting cut
        off before its body existed becomes the error with Retry (a new message when the cut came before its
        progress message was recorded), anything else the preview in its state."""
        if not stored.channel_id:
            return  # no channel to speak in: a new /postmortem starts afresh
        try:
            if stored.draft is None:
                ts = show_draft_failure(
                    self._client,
                    channel_id=stored.channel_id,
                    ts=stored.preview_ts,
                    incident_key=stored.incident_key,
                    ref=stored.id,
                    error=stored.error or "drafting did not finish",
                )
                if ts != stored.preview_ts:
                    self._ctx.services.repo.set_preview(
                        draft_id=stored.id, channel_id=stored.channel_id, ts=ts
                    )
            elif stored.preview_ts:
                show_preview(self._client, stored, options=self._ctx.services.render_options)
        except SlackApiError as exc:
            raise slack_error(exc, action="update the draft's message") from exc
