"""The Edit modal's submission: validate inline, save who changed what, update the preview."""

from __future__ import annotations

import logging

from slack_bolt import Ack
from slack_sdk import WebClient

from bot.analysis.models import EditableSection
from bot.errors import PostmortemError
from bot.ids import EDIT_INPUT_ACTION, BlockId, CallbackId
from bot.postmortem import edit_draft, validate_edits
from bot.slack.authz import log_refusal, may_review
from bot.slack.context import BotContext
from bot.slack.guard import guarded
from bot.slack.preview import show_preview

log = logging.getLogger(__name__)


def submitted_sections(view: dict) -> dict[EditableSection, str]:
    values = view.get("state", {}).get("values", {})
    out: dict[EditableSection, str] = {}
    for section in EditableSection:
        block = values.get(f"{BlockId.EDIT_PREFIX}{section.value}", {})
        if EDIT_INPUT_ACTION in block:
            out[section] = block[EDIT_INPUT_ACTION].get("value") or ""
    return out


def initial_sections(view: dict) -> dict[EditableSection, str]:
    """What the modal was opened with, so untouched sections are not recorded as edits."""
    out: dict[EditableSection, str] = {}
    for block in view.get("blocks", []):
        block_id = block.get("block_id", "")
        if block_id.startswith(BlockId.EDIT_PREFIX):
            section = EditableSection(block_id.removeprefix(BlockId.EDIT_PREFIX))
            out[section] = block.get("element", {}).get("initial_value") or ""
    return out


def register(app, ctx: BotContext) -> None:  # noqa: ANN001 - slack_bolt.App
    services = ctx.services

    @app.view(CallbackId.EDIT_MODAL)
    @guarded("edit")
    def edit_submitted(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        draft_id = view.get("private_metadata") or ""
        user_id = body["user"]["id"]
        stored = services.repo.get(draft_id)
        first_block = f"{BlockId.EDIT_PREFIX}{EditableSection.SUMMARY.value}"
        if stored is None or stored.draft is None:
            ack(response_action="errors", errors={first_block: "This draft no longer exists."})
            return
        # private_metadata is client-supplied: authorise against the draft's own channel, never the modal's word.
        if not may_review(client, ctx.options, user_id=user_id, channel_id=stored.channel_id):
            log_refusal(user_id=user_id, action="edit", stored=stored, channel_id=stored.channel_id)
            ack(
                response_action="errors",
                errors={first_block: f"Only approvers of {stored.incident_key} may edit it."},
            )
            return
        # Compared with what this modal showed, not the draft now: a section someone else saved since stays theirs.
        initial = initial_sections(view)
        changes = {
            s: text
            for s, text in submitted_sections(view).items()
            if text.strip() != initial.get(s, "").strip()
        }
        errors = validate_edits(changes)
        if errors:
            ack(
                response_action="errors",
                errors={f"{BlockId.EDIT_PREFIX}{s.value}": m for s, m in errors.items()},
            )
            return
        if not changes:
            ack()
            return
        try:
            updated = edit_draft(services, draft_id=draft_id, user_id=user_id, changes=changes)
        except PostmortemError as exc:
            # In the modal, which stays open with the text: an ephemeral message cannot reach a reviewer
            # outside the channel (user_not_in_channel).
            block = f"{BlockId.EDIT_PREFIX}{next(iter(changes)).value}"
            ack(response_action="errors", errors={block: f"Not saved: {exc}"})
            return
        ack()
        log.info(
            "edited",
            extra={
                "incident": stored.incident_key,
                "action": "edit",
                "user": user_id,
                "sections": ",".join(s.value for s in changes),
            },
        )
        show_preview(client, updated, options=services.render_options)
