"""When does a channel message mean "the incident is resolved"? (The prompt offering a postmortem.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.analysis.cues import states_any

# PagerDuty's Slack app announces a resolution as e.g. "Resolved: #9876 High API latency" or in an attachment.
_PAGERDUTY_RESOLVED = re.compile(r"\bresolved\b", re.IGNORECASE)


def is_pagerduty_notice(event: Mapping[str, Any]) -> bool:
    profile = event.get("bot_profile") or {}
    name = (profile.get("name") or event.get("username") or "").lower()
    return "pagerduty" in name


def says_resolved(event: Mapping[str, Any], *, phrases: tuple[str, ...]) -> bool:
    """A human's top-level (or broadcast) message stating resolution, or PagerDuty's own resolution notice."""
    subtype = event.get("subtype")
    if event.get("thread_ts") and event.get("thread_ts") != event.get("ts") and subtype != "thread_broadcast":
        return False  # a reply in a thread is about that thread's topic
    if is_pagerduty_notice(event):
        texts = [event.get("text") or ""] + [
            a.get("title") or a.get("fallback") or a.get("text") or "" for a in event.get("attachments") or []
        ]
        return any(_PAGERDUTY_RESOLVED.search(t) for t in texts)
    if event.get("bot_id") or subtype not in (None, "thread_broadcast"):
        return False
    return states_any(event.get("text") or "", phrases)
