"""The Events API events a channel produces, built from its conversations.history / .replies bodies.

For each message of the bundled sample's channel: the `message` event as it was posted (before any edit,
reaction, pin or reply), then the `message_changed` of an edit (with `message` and `previous_message`),
each thread reply as a `message` with `thread_ts`, a `message_changed` of the parent once its replies
are in, `reaction_added` per person, and `pin_added` with the pinned message in `item.message`. Shapes
follow Slack's event references (message, message_changed, message_deleted, pin_added, reaction_added,
member_joined_channel). Extra events: a reaction added then removed, and a message posted then deleted
(so neither is in the history a draft reads).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.analysis.redaction import redact_text
from bot.samples import DEFAULT_SAMPLE
from bot.sources import slack_mapping

SLACK = DEFAULT_SAMPLE / "slack"
CHANNEL = "C07INC9876"
TEAM = "T07ACME00"
BOT_USER = "U09PMBOT"
_THREAD_FIELDS = (
    "thread_ts", "reply_count", "reply_users_count", "latest_reply", "reply_users", "is_locked", "subscribed",
)  # fmt: skip
_LATER_FIELDS = ("edited", "reactions", "pinned_to")


def ts_plus(ts: str, seconds: int, micros: int = 0) -> str:
    whole, _, fraction = ts.partition(".")
    total = int(whole) * 1_000_000 + int((fraction + "000000")[:6]) + seconds * 1_000_000 + micros
    return f"{total // 1_000_000}.{total % 1_000_000:06d}"


@dataclass(frozen=True)
class SampleChannel:
    top: list[dict[str, Any]]  # conversations.history, oldest first
    replies: dict[str, list[dict[str, Any]]]  # thread_ts -> replies (without the parent), oldest first


def sample_channel(directory: Path = SLACK) -> SampleChannel:
    history = json.loads((directory / "conversations.history.json").read_text(encoding="utf-8"))["messages"]
    replies = {}
    for path in sorted((directory / "conversations.replies").glob("*.json")):
        thread = json.loads(path.read_text(encoding="utf-8"))["messages"]
        replies[path.stem] = [m for m in thread if m["ts"] != path.stem]
    return SampleChannel(top=sorted(history, key=lambda m: float(m["ts"])), replies=replies)


def _as_posted(message: dict[str, Any]) -> dict[str, Any]:
    posted = {k: v for k, v in copy.deepcopy(message).items() if k not in _LATER_FIELDS}
    if posted.get("thread_ts") == posted["ts"]:  # a parent had no thread yet when it was posted
        posted = {k: v for k, v in posted.items() if k not in _THREAD_FIELDS}
    return posted


def message_event(message: dict[str, Any], *, channel: str = CHANNEL) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "channel",
        "event_ts": message["ts"],
    } | message


def changed_event(
    message: dict[str, Any], *, previous: dict[str, Any], at: str, channel: str = CHANNEL
) -> dict[str, Any]:
    return {
        "type": "message", "subtype": "message_changed", "hidden": True, "channel": channel,
        "channel_type": "channel", "ts": at, "event_ts": at, "message": message, "previous_message": previous,
    }  # fmt: skip


def deleted_event(message: dict[str, Any], *, at: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {
        "type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel,
        "channel_type": "channel", "ts": at, "event_ts": at, "deleted_ts": message["ts"],
        "previous_message": message,
    }  # fmt: skip


def reaction_event(
    *, kind: str, message: dict[str, Any], name: str, user: str, at: str, channel: str = CHANNEL
) -> dict[str, Any]:
    return {
        "type": kind, "user": user, "reaction": name, "item_user": message.get("user"),
        "item": {"type": "message", "channel": channel, "ts": message["ts"]}, "event_ts": at,
    }  # fmt: skip


def pin_event(
    *, kind: str, message: dict[str, Any], user: str, at: str, channel: str = CHANNEL
) -> dict[str, Any]:
    return {
        "type": kind, "user": user, "channel_id": channel,
        "item": {"type": "message", "channel": channel, "created": int(float(at)), "created_by": user,
                 "message": message},
        "item_user": message.get("user"), "pin_count": "1",
        "pinned_info": {"channel": channel, "pinned_by": user, "pinned_ts": int(float(at))}, "event_ts": at,
    }  # fmt: skip


def member_event(*, kind: str, user: str, at: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {
        "type": kind, "user": user, "channel": channel, "channel_type": "C", "team": TEAM, "event_ts": at,
    } | ({"inviter": "U01ANA"} if kind == "member_joined_channel" else {})  # fmt: skip


def channel_events(sample: SampleChannel | None = None, *, channel: str = CHANNEL) -> list[dict[str, Any]]:
    """Every event of the sample channel, in the order they happened."""
    sample = sample or sample_channel()
    events: list[tuple[str, dict[str, Any]]] = []

    def add(at: str, event: dict[str, Any]) -> None:
        events.append((at, event))

    for message in sample.top:
        ts = message["ts"]
        posted = _as_posted(message)
        if "edited" in message:
            posted["text"] = message["text"].replace("healthy again", "recovering")  # the first wording
        add(ts, message_event(posted, channel=channel))
        if "edited" in message:
            at = message["edited"]["ts"]
            now_copy = {
                k: v for k, v in copy.deepcopy(message).items() if k not in ("reactions", "pinned_to")
            }
            add(at, changed_event(now_copy, previous=posted, at=at, channel=channel))
        thread = sample.replies.get(ts, [])
        for reply in thread:
            add(reply["ts"], message_event(copy.deepcopy(reply), channel=channel))
        if thread:
            at = ts_plus(thread[-1]["ts"], 0, 1)
            parent = {k: v for k, v in copy.deepcopy(message).items() if k not in ("reactions", "pinned_to")}
            add(at, changed_event(parent, previous=posted, at=at, channel=channel))
        for index, reaction in enumerate(message.get("reactions") or ()):
            for offset, user in enumerate(reaction["users"]):
                at = ts_plus(ts, 30 + index, offset + 1)
                add(at, reaction_event(kind="reaction_added", message=message, name=reaction["name"], user=user,
                                       at=at, channel=channel))  # fmt: skip
        if channel in (message.get("pinned_to") or ()):
            at = ts_plus(ts, 120)
            add(
                at,
                pin_event(
                    kind="pin_added", message=copy.deepcopy(message), user="U01ANA", at=at, channel=channel
                ),
            )
    first = sample.top[0]
    # A reaction someone took back, and a message its author deleted: neither is in the history.
    for kind, seconds in (("reaction_added", 40), ("reaction_removed", 50)):
        at = ts_plus(first["ts"], seconds)
        add(
            at,
            reaction_event(
                kind=kind, message=first, name="thinking_face", user="U04DEE", at=at, channel=channel
            ),
        )
    oops = {"user": "U02BEN", "type": "message", "ts": ts_plus(first["ts"], 5), "text": "wrong channel, sorry",
            "team": TEAM}  # fmt: skip
    add(oops["ts"], message_event(copy.deepcopy(oops), channel=channel))
    at = ts_plus(first["ts"], 20)
    add(at, deleted_event(oops, at=at, channel=channel))
    return [event for _, event in sorted(events, key=lambda pair: float(pair[0]))]


def history_as_captured(
    sample: SampleChannel | None = None, *, channel: str = CHANNEL
) -> list[dict[str, Any]]:
    """The channel's history (top level and replies, oldest first) as capture holds it: typed, text redacted
    with its counts, no permalink. What `CaptureRepository.messages` must return after `channel_events()`."""
    sample = sample or sample_channel()
    raw = sample.top + [reply for thread in sample.replies.values() for reply in thread]
    rows = []
    for m in sorted(raw, key=lambda m: float(m["ts"])):
        message = slack_mapping.message_from_json(m, channel_id=channel, workspace_url=None)
        redacted = redact_text(message.text)
        rows.append(
            message.model_copy(update={"text": redacted.text, "redactions": redacted.counts}).model_dump()
        )
    return rows
