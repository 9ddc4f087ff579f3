"""Who may approve, edit, regenerate or discard a draft.

Default: members of the draft's incident channel. Or, when set, a Slack user group (APPROVER_USERGROUP)
and/or a list of user ids (APPROVERS). Every refusal is logged with who, what and which draft.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.context import SlackOptions
from bot.store.repository import StoredDraft

log = logging.getLogger(__name__)


def may_review(client: WebClient, options: SlackOptions, *, user_id: str, channel_id: str | None) -> bool:
    if options.approvers or options.approver_usergroup:
        if user_id in options.approvers:
            return True
        return bool(options.approver_usergroup) and user_id in _usergroup_members(
            client, options.approver_usergroup
        )
    return bool(channel_id) and _is_member(client, channel_id=channel_id, user_id=user_id)


def _usergroup_members(client: WebClient, usergroup: str) -> set[str]:
    try:
        return set(client.usergroups_users_list(usergroup=usergroup)["users"])
    except SlackApiError as exc:
        log.warning(
            "could not read the approver user group",
            extra={"usergroup": usergroup, "error": exc.response["error"]},
        )
        return set()


def _is_member(client: WebClient, *, channel_id: str, user_id: str) -> bool:
    try:
        for page in client.conversations_members(channel=channel_id, limit=1000):
            if user_id in page["members"]:
                return True
    except SlackApiError as exc:
        log.warning(
            "could not read channel members", extra={"channel": channel_id, "error": exc.response["error"]}
        )
    return False


def log_refusal(*, user_id: str, action: str, stored: StoredDraft, channel_id: str | None) -> None:
    """A WARNING naming who was refused what, on which incident (its PD-number) and draft, and where."""
    log.warning(
        "refused: not an approver",
        extra={
            "user": user_id,
            "action": action,
            "incident": stored.incident_key,
            "draft": stored.id,
            "channel": channel_id,
        },
    )
