"""Which channels are incident channels, and which incident a channel is about (from its name)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

# "inc-9876", "incident-pd-9876-api-latency", "inc_9876": the incident number as a whole token.
_NUMBER = re.compile(r"(?:^|[-_])(?:pd[-_]?)?(\d{1,9})(?=$|[-_])", re.IGNORECASE)


def is_incident_channel(name: str | None, patterns: tuple[str, ...]) -> bool:
    return bool(name) and any(fnmatchcase(name.lower(), p.lower()) for p in patterns)


def incident_number_from_channel(name: str | None) -> str | None:
    """The first whole-number token in the channel's name, e.g. 'inc-9876-api-latency' -> '9876'."""
    if not name:
        return None
    match = _NUMBER.search(name)
    return match.group(1) if match else None
