"""The timeline as a PNG chart: one lane per source, the incident's milestones, chat volume per minute.

Drawn with matplotlib's object API (a `Figure` on an Agg canvas, no pyplot state), so it is safe in a
server thread and the same draft always gives the same bytes. Times are UTC on the axis.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import MaxNLocator

from bot.analysis.models import Draft, MetricName
from bot.render.options import RenderOptions
from bot.render.text import clean, plain, truncate
from bot.render.timefmt import format_utc, is_utc, zone_name
from bot.timeline.models import EventKind, Source

WIDTH_PX, HEIGHT_PX, DPI = 1600, 800, 100
MAX_BARS = 720  # wider bins beyond this, so a three-day incident still draws readable bars
LANES: dict[Source, tuple[int, str, str]] = {  # lane y, label, colour
    Source.PAGERDUTY: (2, "PagerDuty", "#17becf"),
    Source.GITHUB: (1, "GitHub", "#7f7f7f"),
    Source.SLACK: (0, "Slack", "#e377c2"),
}
VOLUME_COLOUR = "#c7c7c7"


def chart_filename(incident_key: str) -> str:
    """The attachment name the publisher gives the chart; pass it as RenderOptions.chart_attachment."""
    return f"{incident_key}-timeline.png"


@dataclass(frozen=True)
class Marker:
    label: str
    at: datetime
    colour: str  # each milestone has its own colour, used nowhere else in the chart
    style: str = "-"  # dashed for the mitigation, which often coincides with the rollback


def chart_markers(draft: Draft) -> list[Marker]:
    """The milestones drawn as vertical lines: trigger, acknowledgement, suspect deploy, rollback,
    mitigation, resolution (those the draft knows of)."""
    timeline, incident = draft.timeline, draft.incident

    def first(*kinds: EventKind) -> datetime | None:
        event = timeline.first(*kinds)
        return event.at if event else None

    def metric_end(name: MetricName) -> datetime | None:
        # The metrics name the event that ended each phase, even when it is not of the obvious kind
        # (a mitigation seen only as a rollback, say).
        metric = draft.metric(name)
        return metric.end.at if metric else None

    suspect = draft.top_suspect
    rollback = first(EventKind.ROLLBACK) or (draft.rollbacks[0].created_at if draft.rollbacks else None)
    candidates = [
        ("Trigger", first(EventKind.TRIGGERED) or first(EventKind.ALERT) or incident.created_at, "#d62728"),
        (
            "Acknowledged",
            first(EventKind.ACKNOWLEDGED) or metric_end(MetricName.TIME_TO_ACKNOWLEDGE),
            "#ff7f0e",
        ),
        ("Suspect deploy", suspect.deployment.created_at if suspect else None, "#9467bd"),
        ("Rollback", rollback, "#8c564b"),
        ("Mitigated", first(EventKind.MITIGATED) or metric_end(MetricName.TIME_TO_MITIGATE), "#2ca02c"),
        ("Resolved", first(EventKind.RESOLVED) or incident.resolved_at, "#1f77b4"),
    ]
    return [
        Marker(label, at, colour, "--" if label == "Mitigated" else "-")
        for label, at, colour in candidates
        if at is not None
    ]


@lru_cache(maxsize=1)
def _font_charmap() -> frozenset[int]:
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return frozenset(FT2Font(path).get_charmap())


def _drawable(text: str) -> str:
    """Characters the font has; others become '?' (matplotlib would warn about each missing glyph)."""
    charmap = _font_charmap()
    return "".join(c if ord(c) in charmap else "?" for c in " ".join(clean(text).split()))


def _bin_minutes(span: timedelta) -> int:
    minutes = max(1, math.ceil(span.total_seconds() / 60))
    for size in (1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440):
        if minutes / size <= MAX_BARS:
            return size
    return math.ceil(minutes / MAX_BARS)


def _floor(at: datetime, minutes: int) -> datetime:
    epoch = int(at.timestamp()) // (minutes * 60) * (minutes * 60)
    return datetime.fromtimestamp(epoch, tz=UTC)


def _axis_label(at: datetime, options: RenderOptions) -> str:
    """'Time (UTC); local time Europe/Berlin (CEST) is UTC+02:00' — the offset at the incident's start."""
    if is_utc(options.zone):
        return "Time (UTC)"
    local = at.astimezone(options.zone)
    offset = local.strftime("%z")
    return f"Time (UTC); local time {options.timezone} ({zone_name(at, options.zone)}) is UTC{offset[:3]}:{offset[3:]}"


def _window(milestones: list[datetime]) -> tuple[datetime, datetime]:
    """The time range drawn: the milestones with some room on both sides. A baseline deploy from the day
    before or a chat tail of hours would otherwise squash the incident into a few pixels."""
    first, last = min(milestones), max(milestones)
    pad = max((last - first) * 0.15, timedelta(minutes=10))
    return first - pad, last + pad


def render_timeline_chart(draft: Draft, *, options: RenderOptions) -> bytes:
    events = draft.timeline.events
    messages = draft.timeline.all_messages()
    markers = chart_markers(draft)
    start, end = _window([m.at for m in markers])

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    lanes, volume = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    title = f"{draft.incident.key} — {truncate(plain(draft.incident.title), 110)}"
    fig.suptitle(_drawable(title), fontsize=16, parse_math=False)

    for source, (lane, label, colour) in LANES.items():
        xs = [date2num(e.at) for e in events if e.source is source]
        lanes.scatter(
            xs,
            [lane] * len(xs),
            s=60,
            color=colour,
            edgecolors="white",
            linewidths=0.5,
            zorder=3,
            label=label,
        )
    lanes.set_yticks(
        [lane for lane, _, _ in LANES.values()], [label for _, label, _ in LANES.values()], fontsize=12
    )
    lanes.set_ylim(-0.7, 2.7)
    lanes.grid(axis="x", color="#eeeeee", zorder=0)
    if not events:
        lanes.text(
            0.5, 0.5, "No events", transform=lanes.transAxes, ha="center", fontsize=14, color="#777777"
        )
    earlier, later = sum(1 for e in events if e.at < start), sum(1 for e in events if e.at > end)
    note = {"fontsize": 10, "color": "#555555", "transform": lanes.transAxes, "va": "bottom"}
    if earlier:
        lanes.text(
            0.005, 1.01, f"← {earlier} earlier event{'s' if earlier > 1 else ''} not shown", ha="left", **note
        )
    if later:
        lanes.text(
            0.995, 1.01, f"{later} later event{'s' if later > 1 else ''} not shown →", ha="right", **note
        )

    size = _bin_minutes(end - start)
    counts = Counter(_floor(m.at, size) for m in messages if start <= m.at <= end)
    bins = sorted(counts)
    volume.bar(
        [date2num(b + timedelta(minutes=size / 2)) for b in bins],
        [counts[b] for b in bins],
        width=size / 1440 * 0.9,
        color=VOLUME_COLOUR,
        zorder=2,
    )
    volume.set_ylabel(
        f"Chat messages\nper {size} min" if size > 1 else "Chat messages\nper minute", fontsize=11
    )
    volume.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    volume.set_ylim(0, max(counts.values(), default=0) + 1)
    volume.grid(axis="y", color="#eeeeee", zorder=0)

    several_days = start.date() != end.date()
    for marker in markers:
        x = date2num(marker.at)
        label = f"{marker.label} ({format_utc(marker.at, date=several_days)})"
        lanes.axvline(x, color=marker.colour, linewidth=2.5, zorder=2, label=label, linestyle=marker.style)
        volume.axvline(x, color=marker.colour, linewidth=2.5, zorder=3, linestyle=marker.style)

    locator = AutoDateLocator(tz=UTC)
    volume.xaxis.set_major_locator(locator)
    volume.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    volume.set_xlim(date2num(start), date2num(end))
    volume.set_xlabel(_axis_label(draft.incident.created_at, options), fontsize=12)
    lanes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=11, frameon=False)
    fig.subplots_adjust(left=0.07, right=0.79, top=0.92, bottom=0.09)

    buffer = io.BytesIO()
    # No "Software" chunk: the bytes depend on the draft only, not on the matplotlib version string.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
