"""The preview's buttons: Approve, Edit, Regenerate, Discard, Retry; and the prompt's "Draft it" button.

Each button carries only the draft id; the draft, its channel and its state come from the store, so a
button works after a restart and on any replica, and a replayed envelope cannot act on another channel.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import PostmortemError
from bot.ids import ActionId
from bot.postmortem import discard, note_on_incident, publish, regenerate
from bot.render.blockkit import render_edit_modal
from bot.slack.authz import log_refusal, may_review
from bot.slack.context import BotContext
from bot.slack.drafting import draft_in_channel
from bot.slack.guard import guarded
from bot.slack.preview import ProgressMessage, show_preview
from bot.store.models import DraftStatus
from bot.store.repository import StoredDraft

log = logging.getLogger(__name__)


def _ephemeral(respond: Respond):  # noqa: ANN202 - a one-argument callable
    return lambda message: respond(text=message, response_type="ephemeral", replace_original=False)


def load_for_review(
    ctx: BotContext, client: WebClient, body: dict, respond: Respond, action: str
) -> StoredDraft | None:
    """The draft a button names, if this user may act on it here; otherwise tell them why and log it."""
    draft_id = body["actions"][0].get("value") or ""
    user_id = body["user"]["id"]
    stored = ctx.services.repo.get(draft_id)
    if stored is None:
        _ephemeral(respond)("This draft no longer exists. Start a new one with `/postmortem`.")
        return None
    clicked_in = (body.get("channel") or {}).get("id")
    if clicked_in != stored.channel_id or not may_review(
        client, ctx.options, user_id=user_id, channel_id=stored.channel_id
    ):
        log_refusal(user_id=user_id, action=action, stored=stored, channel_id=clicked_in)
        _ephemeral(respond)(f"Only approvers of {stored.incident_key} may {action} its postmortem.")
        return None
    return stored


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    services = ctx.services

    @guarded("approve")
    def approve(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        stored = load_for_review(ctx, client, body, respond, "approve")
        if stored is None:
            return
        user_id = body["user"]["id"]
        tell = _ephemeral(respond)
        log.info("publishing", extra={"incident": stored.incident_key, "action": "approve", "user": user_id})
        try:
            outcome = publish(
                services,
                draft_id=stored.id,
                user_id=user_id,
                on_claimed=lambda claimed: show_preview(client, claimed, options=services.render_options),
            )
        except PostmortemError as exc:
            log.warning(
                "publishing failed",
                extra={"incident": stored.incident_key, "action": "approve", "error": str(exc)},
            )
            show_preview(client, services.repo.get(stored.id), options=services.render_options)
            tell(f"Publishing {stored.incident_key} failed: {exc}")
            return
        if outcome.page is None:
            tell(f"Nothing to publish for {stored.incident_key}: {outcome.reason}")
            return
        published = outcome.stored
        show_preview(client, published, options=services.render_options)
        if services.repo.claim(
            key=f"link:{published.id}:{outcome.page.id}:{outcome.page.version}", now=services.clock()
        ):
            verb = "published" if outcome.page.created else "updated"
            client.chat_postMessage(
                channel=published.channel_id,
                text=f"The postmortem of {published.incident_key} was {verb} by <@{user_id}>: {outcome.page.url}",
                unfurl_links=False,
            )
        try:
            note_on_incident(services, stored=published, page=outcome.page)
        except PostmortemError as exc:
            tell(f"Published, but the PagerDuty note could not be added: {exc}")
        log.info(
            "published",
            extra={"incident": published.incident_key, "action": "approve", "page": outcome.page.id},
        )

    app.action(ActionId.APPROVE)(approve)
    app.action(ActionId.RETRY_PUBLISH)(approve)

    @app.action(ActionId.EDIT)
    @guarded("edit")
    def edit(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        stored = load_for_review(ctx, client, body, respond, "edit")
        if stored is None or stored.draft is None:
            return
        if stored.status in (DraftStatus.DISCARDED, DraftStatus.PUBLISHING):
            _ephemeral(respond)(f"The draft is {stored.status.value}; it cannot be edited now.")
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"], view=render_edit_modal(stored.draft, draft_id=stored.id)
            )
        except SlackApiError as exc:  # e.g. expired_trigger_id: the click is 3 s old by now
            error = exc.response.get("error")
            log.warning(
                "edit modal not opened",
                extra={"incident": stored.incident_key, "action": "edit", "error": error},
            )
            _ephemeral(respond)(f"Slack did not open the editor ({error}). Click Edit again.")

    @app.action(ActionId.REGENERATE)
    @guarded("regenerate")
    def regenerate_draft(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        stored = load_for_review(ctx, client, body, respond, "regenerate")
        if stored is None or stored.draft is None:
            return
        if stored.status in (DraftStatus.DISCARDED, DraftStatus.PUBLISHING):
            _ephemeral(respond)(f"The draft is {stored.status.value}; it cannot be regenerated now.")
            return
        progress = ProgressMessage(
            client, channel_id=stored.channel_id, incident=stored.draft.incident, ts=stored.preview_ts
        )
        try:
            progress.post()
            updated = regenerate(services, draft_id=stored.id, progress=progress)
        except PostmortemError as exc:
            _ephemeral(respond)(f"Regenerating {stored.incident_key} failed: {exc}")
            updated = services.repo.get(stored.id)
        show_preview(client, updated, options=services.render_options)

    @app.action(ActionId.DISCARD)
    @guarded("discard")
    def discard_draft(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        stored = load_for_review(ctx, client, body, respond, "discard")
        if stored is None:
            return
        if not discard(services, draft_id=stored.id):
            _ephemeral(respond)(
                f"The draft of {stored.incident_key} is {stored.status.value}: it cannot be discarded."
            )
            return
        log.info(
            "discarded",
            extra={"incident": stored.incident_key, "action": "discard", "user": body["user"]["id"]},
        )
        show_preview(client, services.repo.get(stored.id), options=services.render_options)

    @app.action(ActionId.START_DRAFT)
    @guarded("start a draft")
    def start_draft(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        draft_in_channel(
            ctx,
            client,
            ref=body["actions"][0]["value"],
            channel_id=body["channel"]["id"],
            user_id=body["user"]["id"],
            respond=_ephemeral(respond),
        )

    @app.action(ActionId.OPEN_PAGE)
    def open_page(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, and still sends the click, which must be acked
