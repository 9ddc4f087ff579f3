"""What the page templates draw, prepared once for Markdown and Confluence alike.

Values stay raw text here; each renderer escapes them for its target through its Jinja filters. The
Jinja environments (bundled templates, overridable from `RenderOptions.templates_dir`) are built here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from bot.analysis.models import TO_BE_FILLED, Draft, EditableSection, Quote
from bot.render.options import RenderOptions
from bot.render.timefmt import format_duration, format_local, format_time, format_utc, is_utc
from bot.timeline.models import EventKind, Source, TimelineEvent

BUNDLED_TEMPLATES = Path(__file__).parent / "templates"

KIND_LABELS: dict[EventKind, str] = {
    EventKind.ALERT: "Alert",
    EventKind.TRIGGERED: "Triggered",
    EventKind.NOTIFIED: "Notified",
    EventKind.ACKNOWLEDGED: "Acknowledged",
    EventKind.ESCALATED: "Escalated",
    EventKind.ASSIGNED: "Assigned",
    EventKind.PRIORITY: "Priority",
    EventKind.NOTE: "Note",
    EventKind.STATUS_UPDATE: "Status update",
    EventKind.DEPLOY: "Deploy",
    EventKind.ROLLBACK: "Rollback",
    EventKind.MESSAGE: "Message",
    EventKind.MITIGATED: "Mitigated",
    EventKind.RESOLVED: "Resolved",
}
SOURCE_LABELS: dict[Source, str] = {
    Source.PAGERDUTY: "PagerDuty",
    Source.GITHUB: "GitHub",
    Source.SLACK: "Slack",
}
SECTION_LABELS: dict[EditableSection, str] = {
    EditableSection.SUMMARY: "Summary",
    EditableSection.IMPACT: "Impact",
    EditableSection.CONTRIBUTING_FACTORS: "Contributing factors",
    EditableSection.ACTION_ITEMS: "Action items",
    EditableSection.LESSONS_LEARNED: "Lessons learned",
}


@dataclass(frozen=True)
class Link:
    label: str
    url: str | None = None


@dataclass(frozen=True)
class Fact:
    label: str
    text: str
    url: str | None = None


@dataclass(frozen=True)
class Row:
    """One timeline entry or chat line, its times already formatted."""

    utc: str
    local: str
    source: str
    kind: str
    text: str
    actor: str
    url: str | None
    notes: str
    replies: tuple[Row, ...] = field(default=())


def redaction_phrase(count: int) -> str:
    return f"{count} secret{'' if count == 1 else 's'} redacted"


def participants(draft: Draft) -> list[str]:
    """Chat authors in order of first appearance."""
    seen: dict[str, None] = {}
    for event in draft.timeline.all_messages():
        if event.actor:
            seen.setdefault(event.actor, None)
    return list(seen)


def facts(draft: Draft, *, options: RenderOptions) -> list[Fact]:
    incident, tz = draft.incident, options.timezone
    started, resolved = incident.created_at, incident.resolved_at
    out = [
        Fact("Incident", f"{incident.key} — {incident.title}", incident.url),
        Fact("Severity", incident.severity or incident.urgency or "unknown"),
        Fact("Started", format_time(started, tz=tz)),
        Fact("Resolved", format_time(resolved, tz=tz) if resolved else "not resolved yet"),
        Fact("Duration", format_duration((resolved - started).total_seconds()) if resolved else "ongoing"),
        Fact("Services", ", ".join(s.name for s in incident.services) or "unknown"),
        Fact("Incident commander", incident.commander or "unknown"),
        Fact("Participants", ", ".join(participants(draft)) or "none seen in the channel"),
    ]
    if draft.channel:
        out.append(Fact("Slack channel", f"#{draft.channel.name or draft.channel.id}", draft.channel.url))
    return out


def event_notes(event: TimelineEvent, *, tz: str) -> str:
    notes = []
    if event.count > 1 and event.last_at:  # the text already says "(fired N times)"
        notes.append(f"last at {format_local(event.last_at, tz='UTC')}")
    if event.pinned:
        notes.append("pinned")
    if event.edited:
        notes.append("edited")
    if event.replies:
        notes.append(f"{len(event.replies)} repl{'y' if len(event.replies) == 1 else 'ies'}")
    return ", ".join(notes)


def row(event: TimelineEvent, *, tz: str, with_date: bool, nested: bool = True) -> Row:
    replies = tuple(row(r, tz=tz, with_date=with_date, nested=False) for r in event.replies) if nested else ()
    return Row(
        utc=format_utc(event.at, date=with_date).removesuffix(" UTC"),
        local=format_local(event.at, tz=tz, date=with_date),
        source=SOURCE_LABELS.get(event.source, str(event.source)),
        kind=KIND_LABELS.get(event.kind, str(event.kind)),
        text=event.text,
        actor=event.actor or "",
        url=event.url,
        notes=event_notes(event, tz=tz),
        replies=replies,
    )


def spans_days(events: Iterable[TimelineEvent]) -> bool:
    return len({e.at.date() for e in events}) > 1


def supporting_links(draft: Draft) -> list[Link]:
    """Every evidence link worth a click, each once: incident, channel, services, deploys, PRs, alerts."""
    links: dict[str, Link] = {}

    def add(label: str, url: str | None) -> None:
        if url and url not in links:
            links[url] = Link(label, url)

    incident = draft.incident
    add(f"PagerDuty incident {incident.key}", incident.url)
    if draft.channel:
        add(f"Slack channel #{draft.channel.name or draft.channel.id}", draft.channel.url)
    for service in incident.services:
        add(f"Service {service.name}", service.url)
    for deployment in [s.deployment for s in draft.suspects] + list(draft.rollbacks):
        add(f"Deploy {deployment.id} of {deployment.repo} ({deployment.sha[:7]})", deployment.url)
        for commit in deployment.commits:
            if commit.pull_request_url:
                add(f"Pull request #{commit.pull_request} in {deployment.repo}", commit.pull_request_url)
    for event in draft.timeline.of_kind(EventKind.DEPLOY, EventKind.ROLLBACK, EventKind.ALERT):
        add(f"{KIND_LABELS[event.kind]}: {event.text}", event.url)
    return list(links.values())


def edited(draft: Draft) -> dict[str, str | None]:
    return {section.value: draft.edits.get(section) for section in EditableSection}


def page_context(draft: Draft, *, options: RenderOptions) -> dict[str, Any]:
    tz = options.timezone
    events = draft.timeline.events
    with_date = spans_days(draft.timeline.all_messages() + events)
    lessons = draft.lessons
    day = draft.incident.created_at.date()
    return {
        "draft": draft,
        "incident": draft.incident,
        "options": options,
        "key": draft.incident.key,
        "title": draft.incident.title,
        "status": options.status,
        "facts": facts(draft, options=options),
        "edits": edited(draft),
        "summary": draft.summary or TO_BE_FILLED,
        "impact": draft.impact or TO_BE_FILLED,
        "leadup": draft.leadup or TO_BE_FILLED,
        "detection": draft.detection or TO_BE_FILLED,
        "response": draft.response or TO_BE_FILLED,
        "to_be_filled": TO_BE_FILLED,
        "suspects": draft.suspects,
        "rollbacks": draft.rollbacks,
        "show_local": not is_utc(options.zone),
        "timezone": tz,
        "timeline": [row(e, tz=tz, with_date=with_date, nested=False) for e in events],
        "chat_log": [row(e, tz=tz, with_date=with_date) for e in events if e.source is Source.SLACK],
        "contributing_factors": draft.contributing_factors,
        "lessons": [
            ("What went well", lessons.went_well),
            ("What went wrong", lessons.went_wrong),
            ("Where we got lucky", lessons.lucky),
        ],
        "action_items": draft.action_items,
        "metrics": draft.metrics,
        "links": supporting_links(draft),
        "redaction_count": draft.redaction_count,
        "redaction_phrase": redaction_phrase(draft.redaction_count),
        "source_notes": draft.source_notes,
        "removed_noise": draft.timeline.removed_noise,
        "generated_at": format_time(draft.generated_at, tz=tz),
        "chart_attachment": options.chart_attachment,
        "fmt_time": lambda at: format_time(at, tz=tz),
        # Times inside one day read as "10:30 UTC (12:30 CEST)"; the date shows when it could be mistaken.
        "fmt_clock": lambda at: format_time(at, tz=tz, date=with_date or at.date() != day),
        "fmt_duration": format_duration,
    }


def quote_line(quote: Quote) -> str:
    """'pool size dropped from 50 to 5 — Ben Okafor': a quote as one line of the edit modal."""
    return f"{quote.text} — {quote.author}" if quote.author else quote.text


@lru_cache(maxsize=16)
def _loader(templates_dir: Path | None) -> ChoiceLoader:
    loaders = [FileSystemLoader(str(templates_dir))] if templates_dir else []
    return ChoiceLoader([*loaders, FileSystemLoader(str(BUNDLED_TEMPLATES))])


def environment(
    *,
    templates_dir: Path | None,
    filters: dict[str, Callable[..., Any]],
    finalize: Callable[[Any], Any] | None = None,
) -> Environment:
    env = Environment(
        loader=_loader(templates_dir),
        autoescape=False,  # Markdown needs none; Confluence escapes every value through `finalize` instead
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters)
    return env
