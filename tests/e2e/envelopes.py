"""Socket Mode payloads shaped as Slack sends them, built from what the bot really posted.

* `slash_command`: the form fields of a slash command (all strings), as Socket Mode wraps them.
* `block_action`: a click on a button of a message the bot posted; the button's own action id, block id,
  text, style and value come from that message's blocks (see `find_button`).
* `view_submission`: a modal the bot opened (as `views.open` returned it, with its id, hash, callback_id
  and private_metadata), its `state.values` filled as Slack fills them from each input block.
* `event_callback` around `channel_message`: a person's new message in a channel, as the Events API sends it.

Field sets follow Slack's interaction payload reference and bolt-python's scenario tests
(tests/scenario_tests/test_block_actions.py, test_view_submission.py, test_slash_command.py).
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

TEAM_ID = "T07ACME00"
TEAM_DOMAIN = "acme"
API_APP_ID = "A09PMBOT"
VERIFICATION_TOKEN = "legacyVerificationToken0"  # Socket Mode payloads still carry the legacy token
BOT_USER = "U09PMBOT"

_serial = itertools.count(1)


def trigger_id() -> str:
    return f"{int(time.time())}.7000000001.{next(_serial):032x}"


def _user(user_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def slash_command(
    *, command: str, text: str, channel_id: str, channel_name: str, user_id: str, response_url: str
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
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id(),
    }


def find_button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button `action_id` in the message's actions blocks, with the `block_id` of its block."""
    for block in message.get("blocks", []):
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return {**element, "block_id": block["block_id"]}
    raise AssertionError(f"no {action_id} button in the message: {action_ids(message)}")


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id")
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def block_action(
    *,
    message: dict[str, Any],
    action_id: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    response_url: str,
) -> dict[str, Any]:
    """A click on the button `action_id` of `message` (a message as Slack stores it: ts, blocks, ...)."""
    button = find_button(message, action_id)
    action = {
        "action_id": button["action_id"],
        "block_id": button["block_id"],
        "text": button["text"],
        "value": button.get("value", ""),
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if "style" in button:
        action["style"] = button["style"]
    return {
        "type": "block_actions",
        "user": _user(user_id),
        "api_app_id": API_APP_ID,
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


def input_values(view: dict[str, Any], changes: dict[str, str]) -> dict[str, Any]:
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
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id(),
        "view": {**view, "state": {"values": input_values(view, changes)}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def channel_message(*, channel_id: str, text: str, user_id: str) -> dict[str, Any]:
    """A `message` event: a person's new top-level message in a public channel, posted just now."""
    ts = f"{time.time():.6f}"
    return {
        "type": "message",
        "channel": channel_id,
        "user": user_id,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
        "team": TEAM_ID,
        "client_msg_id": str(uuid.uuid4()),
    }


def event_callback(event: dict[str, Any]) -> dict[str, Any]:
    """The Events API wrapper around one event (an `events_api` envelope's payload)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": API_APP_ID,
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
    }
