"""Socket Mode payloads shaped as Slack sends them (slash command, Events API callback, block action,
view submission). Field sets follow Slack's payload references and bolt-python's own test fixtures."""

from __future__ import annotations

import itertools
import time
from typing import Any

TEAM_ID = "T07ACME00"
TEAM_DOMAIN = "acme"
APP_ID = "A09PMBOT"
BOT_USER = "U09PMBOT"
VERIFICATION_TOKEN = "legacy-verification-token"  # Socket Mode payloads still carry the legacy token

_counter = itertools.count(1)


def trigger_id() -> str:
    return f"{int(time.time())}.7000000001.{next(_counter):032x}"


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


def event_callback(event: dict[str, Any]) -> dict[str, Any]:
    """The Events API wrapper around one event."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev07{next(_counter):08d}",
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
        "event_context": f"4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDdBQ01FMDAiLCJhaWQiOiJBMDlQTUJPVCJ9-{next(_counter)}",
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
    """A `message` event (message.channels / message.groups): a person's message unless `extra` says otherwise."""
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
        event["client_msg_id"] = f"6f1c2a3b-0000-4000-8000-{next(_counter):012d}"
        event["blocks"] = [
            {
                "type": "rich_text",
                "block_id": "aB3dE",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ]
    return event | extra


def block_action(
    *,
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    channel_name: str,
    message: dict[str, Any],
    response_url: str,
    block_id: str = "pm_actions",
) -> dict[str, Any]:
    """A click on a button of a message the bot posted."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID},
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
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": "button", "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def input_values(view: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """`view.state.values` as Slack fills it: every input block's current text (its initial value unless
    `overrides` names the block)."""
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        value = overrides.get(block["block_id"], element.get("initial_value"))
        values[block["block_id"]] = {element["action_id"]: {"type": element["type"], "value": value}}
    return values


def view_submission(*, view: dict[str, Any], user_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Submitting a modal the bot opened (`view` as views.open returned it)."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id(),
        "view": view | {"state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
