"""Socket Mode payloads shaped as Slack sends them, and readers of the messages the bot posted.

* `slash_command`: a slash command's form fields (all strings), as the `slash_commands` envelope carries them.
* `event_callback` around `message_event`: an Events API event (`events_api`), e.g. a person's new message.
* `block_action`: a click on a button of a message the bot posted; the button's action id, block id, text,
  style and value come from that message's blocks (see `find_button`); `value` may forge another.
* `view_submission`: a modal the bot opened (as `views.open` returned it: id, hash, callback_id,
  private_metadata), its `state.values` filled as Slack fills them from each input block.
* `find_button`, `action_ids`: the buttons of a posted message's actions blocks.

Field sets follow Slack's payload references and bolt-python's scenario tests (test_slash_command.py,
test_events.py, test_block_actions.py, test_view_submission.py). The Events API wrapper carries
`authorizations` and `event_context`, which replaced the `authed_users` of the older events schema
(/work/shared/reference/api/slack-events-api.asyncapi.json) in 2021.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from typing import Any

TEAM_ID = "T07ACME00"
TEAM_DOMAIN = "acme"
APP_ID = "A09PMBOT"
BOT_USER = "U09PMBOT"
VERIFICATION_TOKEN = "legacyVerificationToken0"  # Socket Mode payloads still carry the legacy token

_serial = itertools.count(1)


def trigger_id() -> str:
    return f"{int(time.time())}.7000000001.{next(_serial):032x}"


def _user(user_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


# -- reading what the bot posted ---------------------------------------------------------------
def find_button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button `action_id` in the message's actions blocks, with the `block_id` of its block."""
    for block in message.get("blocks", []):
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id")}
    raise AssertionError(f"no {action_id} button in the message: {action_ids(message)}")


def action_ids(message: dict[str, Any]) -> list[str]:
    """The action ids of the message's buttons, in order."""
    return [
        element.get("action_id")
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


# -- slash_commands ----------------------------------------------------------------------------
def slash_command(
    *,
    text: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    response_url: str,
    command: str = "/postmortem",
) -> dict[str, Any]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id(),
    }


# -- events_api --------------------------------------------------------------------------------
def _event_context(event: dict[str, Any]) -> str:
    # Slack's opaque handle for apps.event.authorizations.list: "4-" and base64url JSON naming the event.
    fields = {"et": event["type"], "tid": TEAM_ID, "aid": APP_ID}
    if isinstance(event.get("channel"), str):
        fields["cid"] = event["channel"]
    encoded = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()
    return f"4-{encoded.rstrip('=')}"


def event_callback(event: dict[str, Any]) -> dict[str, Any]:
    """The Events API wrapper around one event (an `events_api` envelope's payload)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev07{next(_serial):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": _event_context(event),
    }


def message_event(
    *,
    channel: str,
    text: str,
    user: str | None = "U01ANA",
    ts: str | None = None,
    channel_type: str = "channel",
    **extra: Any,
) -> dict[str, Any]:
    """A `message` event (message.channels / message.groups): a person's new top-level message, posted
    now unless `ts` says when; `extra` adds or overrides event fields (a bot's message: `user=None`,
    `subtype`, `bot_id`; a thread reply: `thread_ts`)."""
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
    }
    if user is not None:
        event["user"] = user
        event["client_msg_id"] = str(uuid.uuid4())
        event["blocks"] = [
            {
                "type": "rich_text",
                "block_id": "aB3dE",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ]
    return event | extra


# -- interactive -------------------------------------------------------------------------------
def _as_stored(message: dict[str, Any]) -> dict[str, Any]:
    """`message` as Slack keeps it: Slack gives every block posted without a `block_id` one of its own
    (the Slack web fake keeps blocks exactly as posted)."""
    blocks = [
        block
        if block.get("block_id")
        else {**block, "block_id": hashlib.sha1(f"{message.get('ts')}:{i}".encode()).hexdigest()[:5]}
        for i, block in enumerate(message.get("blocks", []))
    ]
    return {**message, "blocks": blocks} if "blocks" in message else message


def block_action(
    *,
    message: dict[str, Any],
    action_id: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    response_url: str,
    value: str | None = None,
) -> dict[str, Any]:
    """A click on the button `action_id` of `message` (a message as Slack stores it: ts, blocks, ...),
    carrying the button's own value unless `value` forges another."""
    message = _as_stored(message)
    button = find_button(message, action_id)
    action = {
        "action_id": button["action_id"],
        "block_id": button["block_id"],
        "text": button["text"],
        "value": button.get("value", "") if value is None else value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if "style" in button:
        action["style"] = button["style"]
    return {
        "type": "block_actions",
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id(),
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def input_values(view: dict[str, Any], *, changes: dict[str, str]) -> dict[str, Any]:
    """`view.state.values` as Slack fills it on submit: each input block's text, its initial value unless
    `changes` names the block."""
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        value = changes.get(block["block_id"], element.get("initial_value"))
        values[block["block_id"]] = {element["action_id"]: {"type": element["type"], "value": value}}
    unknown = set(changes) - set(values)
    assert not unknown, f"the modal has no input blocks {sorted(unknown)}"
    return values


def view_submission(*, view: dict[str, Any], user_id: str, changes: dict[str, str]) -> dict[str, Any]:
    """Submitting `view` (as views.open answered it) with the input blocks in `changes` rewritten."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id(),
        "view": {**view, "state": {"values": input_values(view, changes=changes)}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
