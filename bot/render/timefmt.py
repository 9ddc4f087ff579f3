"""Times and durations as people read them: UTC first, the team's local time beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def zone_name(at: datetime, zone: ZoneInfo) -> str:
    """'CEST'; zones without an abbreviation ('-03') read as 'UTC-03'."""
    name = at.astimezone(zone).tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" else name


def is_utc(zone: ZoneInfo) -> bool:
    return zone.key in {"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"}


def format_time(at: datetime, *, tz: str, date: bool = True) -> str:
    """'2024-07-20 10:30 UTC (12:30 CEST)'; the local date is added when it differs from the UTC date."""
    utc = at.astimezone(UTC)
    zone = ZoneInfo(tz)
    text = utc.strftime("%Y-%m-%d %H:%M UTC" if date else "%H:%M UTC")
    if is_utc(zone):
        return text
    return f"{text} ({format_local(at, tz=tz, date=date)})"


def format_utc(at: datetime, *, date: bool = True) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC" if date else "%H:%M UTC")


def format_local(at: datetime, *, tz: str, date: bool = False) -> str:
    """'12:30 CEST'; with `date`, the date too when it differs from the UTC date ('2024-07-21 01:30 AEST')."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    show_date = date and local.date() != at.astimezone(UTC).date()
    clock = local.strftime("%Y-%m-%d %H:%M" if show_date else "%H:%M")
    return f"{clock} {zone_name(at, zone)}"


def format_duration(seconds: float) -> str:
    """'1 h 45 min', '4 min', '35 s', '2 d 3 h'. Minutes and hours are rounded down."""
    total = int(seconds)
    if total < 0:
        return "-" + format_duration(-total)
    if total < 60:
        return f"{total} s"
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 3600:
        return f"{minutes} min"
    if total < 86400:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"
