"""Slack Web API JSON -> typed values. Pure functions, shared by the live client and the sample replay.

Shapes are those of `conversations.history` / `conversations.replies` messages, `users.info` users and
the `<@U…>` / `<#C…>` markup in message text (see bot/samples/pd-9876/slack for real bodies).
"""

from __future__ import annotations

import re
from typing import Any

from bot.timeline.models import ChatMessage

_USER_REF = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^<>]*)?>")
# A channel id in a Slack link: /archives/C…, app.slack.com/client/T…/C…, app_redirect?channel=C…, slack://…&id=C…
_LINKED_CHANNEL = re.compile(
    r"(?:/archives/|/client/T[A-Z0-9]+/|[?&](?:channel|id)=)([CG][A-Z0-9]{6,})(?![A-Za-z0-9])"
)
UNKNOWN_USER = "unknown user"


def permalink(*, workspace_url: str, channel_id: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's own permalink form: .../archives/C…/p<ts without the dot>, with the thread for replies."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts is not None and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


def _text(message: dict[str, Any]) -> str:
    """The message text; bot posts that carry everything in attachments fall back to their summary."""
    text = message.get("text") or ""
    if text.strip():
        return text
    for attachment in message.get("attachments") or ():
        summary = (
            attachment.get("fallback")
            or attachment.get("title")
            or attachment.get("text")
            or attachment.get("pretext")
        )
        if summary:
            return summary
    return text


def message_from_json(message: dict[str, Any], *, channel_id: str, workspace_url: str | None) -> ChatMessage:
    """One message of conversations.history / conversations.replies, typed."""
    ts = message["ts"]
    thread_ts = message.get("thread_ts")
    return ChatMessage(
        ts=ts,
        channel_id=channel_id,
        user_id=message.get("user"),
        bot_id=message.get("bot_id"),
        subtype=message.get("subtype"),
        text=_text(message),
        thread_ts=thread_ts,
        reply_count=int(message.get("reply_count") or 0),
        edited="edited" in message,
        pinned=channel_id in (message.get("pinned_to") or ()),
        permalink=(
            permalink(workspace_url=workspace_url, channel_id=channel_id, ts=ts, thread_ts=thread_ts)
            if workspace_url
            else None
        ),
        reactions=tuple(r["name"] for r in message.get("reactions") or () if r.get("name")),
    )


def user_name_from_json(user: dict[str, Any]) -> str:
    """The name Slack shows: display name, else real name, else the handle; deactivated users say so."""
    profile = user.get("profile") or {}
    name = (
        (profile.get("display_name") or "").strip()
        or (profile.get("real_name") or "").strip()
        or (user.get("real_name") or "").strip()
        or (user.get("name") or "").strip()
        or user.get("id")
        or UNKNOWN_USER
    )
    return f"{name} (deactivated)" if user.get("deleted") else name


def referenced_ids(text: str) -> tuple[set[str], set[str]]:
    """(user ids, channel ids) mentioned as <@U…>, <@U…|name>, <#C…>, <#C…|name> in Slack markup."""
    return set(_USER_REF.findall(text)), set(_CHANNEL_REF.findall(text))


def channel_id_from_url(url: str | None) -> str | None:
    """The channel id in a Slack link (a conference bridge URL pointing at the channel), else None."""
    if not url or "slack" not in url.lower():
        return None
    match = _LINKED_CHANNEL.search(url)
    return match.group(1) if match else None


def names_incident(name: str, number: int) -> bool:
    """Whether a channel name holds the incident number as a whole token: inc-9876, incident-pd-9876,
    inc_9876_api-latency, pd9876 — but not inc-98760 or inc-19876."""
    return re.search(rf"(?:^|[-_.])(?:pd|inc)?{number}(?:$|[-_.])", name.lower()) is not None
