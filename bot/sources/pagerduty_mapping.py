"""PagerDuty REST API v2 JSON -> typed evidence. Pure: no I/O, no clock.

Used by the live client (`pagerduty.py`) and by the replay of bundled samples, so both read the same
bodies the same way. Shapes follow the REST API v2 OpenAPI: `GET /incidents/{id}`, `/log_entries`
(with `include[]=channels`), `/alerts` and `/notes`.

Two facts of the API shape this module:

* A resolved incident has empty `assignments` and `acknowledgements`: who acknowledged and who was
  assigned is then only in the log entries, so `incident_from_json` takes them too.
* A note appears twice: in `/notes` and as an `annotate_log_entry`. `events_for_incident` keeps one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import InputError
from bot.timeline.models import EventKind, Incident, Service, Source, TimelineEvent

# "PD-9876", "pd-9876", "#9876", "9876": an incident number.
# (No "PD9876": an id may be "PD" and digits.)
_NUMBER_REF = re.compile(r"^(?:pd-|#)?(\d{1,10})$", re.IGNORECASE)
# An incident id: PagerDuty ids are upper-case letters and digits ("PT4KHLK", "Q1R2S3T4U5V6W7").
_ID_REF = re.compile(r"^(?=[0-9A-Z]*[A-Z])[0-9A-Z]{6,20}$")
# The incident's web page, as people paste it: https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7
_URL_REF = re.compile(r"^https://[a-z0-9-]+(?:\.eu)?\.pagerduty\.com/incidents/([0-9A-Z]{6,20})/?$")
_SLACK_ARCHIVE = re.compile(r"^https://[a-z0-9-]+\.slack\.com/archives/([CG][A-Z0-9]{6,})(?:[/?#]|$)")
_SLACK_DEEP_LINK = re.compile(r"^slack://channel\?(?:.*&)?id=([CG][A-Z0-9]{6,})")
_LEVEL = re.compile(r"\blevel (\d+)\b", re.IGNORECASE)

# Log entry type -> timeline kind. Types not listed become STATUS_UPDATE with their summary.
_KINDS: dict[str, EventKind] = {
    "trigger_log_entry": EventKind.TRIGGERED,
    "notify_log_entry": EventKind.NOTIFIED,
    "acknowledge_log_entry": EventKind.ACKNOWLEDGED,
    "escalate_log_entry": EventKind.ESCALATED,
    "assign_log_entry": EventKind.ASSIGNED,
    "delegate_log_entry": EventKind.ASSIGNED,  # reassigned to another escalation policy
    "annotate_log_entry": EventKind.NOTE,
    "urgency_change_log_entry": EventKind.PRIORITY,
    "resolve_log_entry": EventKind.RESOLVED,
}
_DEFAULT_TEXT = {
    EventKind.TRIGGERED: "Triggered",
    EventKind.NOTIFIED: "Notified",
    EventKind.ACKNOWLEDGED: "Acknowledged",
    EventKind.ESCALATED: "Escalated",
    EventKind.ASSIGNED: "Assigned",
    EventKind.NOTE: "Note added",
    EventKind.PRIORITY: "Urgency changed",
    EventKind.RESOLVED: "Resolved",
    EventKind.STATUS_UPDATE: "Status changed",
}
# Two records of one note (the note and its annotate log entry) are at most this far apart.
_SAME_NOTE_WINDOW = timedelta(seconds=60)


# -- references -------------------------------------------------------------------------------
def parse_incident_ref(ref: str) -> str:
    """What `GET /incidents/{id}` takes: the incident number ("9876") or the incident id, as given.

    Accepts "PD-9876", "pd-9876", "#9876", "9876", an id like "Q1R2S3T4U5V6W7" or the incident's web URL.
    Anything else is an InputError; nothing the user typed reaches a URL path unchecked.
    """
    text = (ref or "").strip()
    if match := _NUMBER_REF.fullmatch(text):
        number = int(match.group(1))
        if number > 0:
            return str(number)
    elif match := _URL_REF.fullmatch(text):
        return match.group(1)
    elif _ID_REF.fullmatch(text):
        return text
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise InputError(
        f"{shown!r} is not a PagerDuty incident. Use its number (PD-1234 or 1234), "
        "its id (like Q1R2S3T4U5V6W7) or its link."
    )


def incident_label(key: str) -> str:
    """'9876' -> 'PD-9876'; an id stays as it is. For messages."""
    return f"PD-{key}" if key.isdigit() else key


# -- incident ---------------------------------------------------------------------------------
def incident_from_json(incident: Mapping[str, Any], *, alerts: Iterable[Mapping[str, Any]] = ()) -> Incident:
    """The body's `incident` object -> Incident.

    `services`: the incident's service, then every other service its alerts came from (merged alerts
    bring their own). `assignees`/`acknowledgers`: as the incident lists them, which it does while it is
    open; a resolved one's come from its log (`with_responders`).
    """
    status = str(incident.get("status") or "triggered")
    resolved_at = incident.get("resolved_at")
    if not resolved_at and status == "resolved":
        resolved_at = incident.get("last_status_change_at")
    priority = incident.get("priority") or {}
    bridge = incident.get("conference_bridge") or {}
    conference_url = bridge.get("conference_url") or None
    return Incident(
        id=incident["id"],
        number=int(incident["incident_number"]),
        title=incident.get("title") or incident.get("summary") or "",
        url=incident.get("html_url") or "",
        status=status,
        urgency=incident.get("urgency"),
        severity=priority.get("name") or priority.get("summary") or None,
        created_at=_time(incident["created_at"]),
        resolved_at=_time(resolved_at) if resolved_at else None,
        services=_services(incident, alerts),
        assignees=_names(a.get("assignee") for a in _by_time(incident.get("assignments"), "at")),
        acknowledgers=_names(a.get("acknowledger") for a in _by_time(incident.get("acknowledgements"), "at")),
        escalation_policy=_summary(incident.get("escalation_policy")),
        teams=_names(incident.get("teams") or ()),
        slack_channel_id=_slack_channel(conference_url),
        conference_url=conference_url,
    )


_ASSIGNING = ("assign_log_entry", "escalate_log_entry", "delegate_log_entry")


def with_responders(incident: Incident, log_entries: Iterable[Mapping[str, Any]]) -> Incident:
    """The incident with assignees and acknowledgers from its log where it lists none (PagerDuty empties
    both lists on resolve)."""
    entries = sorted(log_entries, key=lambda e: _time(e["created_at"]))
    return incident.model_copy(
        update={
            "assignees": incident.assignees
            or _names(u for e in entries if e.get("type") in _ASSIGNING for u in e.get("assignees") or ()),
            "acknowledgers": incident.acknowledgers
            or _names(e.get("agent") for e in entries if e.get("type") == "acknowledge_log_entry"),
        }
    )


def _services(incident: Mapping[str, Any], alerts: Iterable[Mapping[str, Any]]) -> tuple[Service, ...]:
    refs = [incident.get("service")] + [a.get("service") for a in _by_time(alerts, "created_at")]
    seen: dict[str, Service] = {}
    for ref in refs:
        if ref and ref.get("id") and ref["id"] not in seen:
            seen[ref["id"]] = Service(id=ref["id"], name=_summary(ref) or ref["id"], url=ref.get("html_url"))
    return tuple(seen.values())


def _slack_channel(url: str | None) -> str | None:
    if not url:
        return None
    match = _SLACK_ARCHIVE.match(url) or _SLACK_DEEP_LINK.match(url)
    return match.group(1) if match else None


# -- log entries ------------------------------------------------------------------------------
def events_from_log_entries(
    entries: Sequence[Mapping[str, Any]], *, incident: Incident
) -> tuple[TimelineEvent, ...]:
    """Every log entry as one event; the link is the log entry's page, else the incident's."""
    return tuple(_log_entry_event(entry, incident=incident) for entry in entries)


def _log_entry_event(entry: Mapping[str, Any], *, incident: Incident) -> TimelineEvent:
    etype = str(entry.get("type") or "")
    kind = _KINDS.get(etype, EventKind.STATUS_UPDATE)
    channel = entry.get("channel") or {}
    summary = _clean(entry.get("summary"))
    details = {"log_entry_type": etype}
    _put(details, "channel", channel.get("type"))
    _put(details, "service", _summary(entry.get("service")))

    if kind is EventKind.NOTE:
        text = _clean(channel.get("summary")) or _clean(entry.get("note")) or summary or _DEFAULT_TEXT[kind]
    else:
        text = summary or _DEFAULT_TEXT[kind]
        if kind is EventKind.TRIGGERED and (
            what := _clean(channel.get("summary") or channel.get("description"))
        ):
            # "Triggered through the API." says little; the integration's event says what fired.
            client = _clean(channel.get("client"))
            text = f"Triggered by {client}: {what}" if client else f"{text.rstrip('.')}: {what}"
        elif note := _clean(entry.get("note")):
            text = f"{text.rstrip('.')}: {note}"
            details["note"] = note

    if kind is EventKind.TRIGGERED:
        _put(details, "client", channel.get("client"))
        _put(details, "client_url", channel.get("client_url"))
    elif kind is EventKind.NOTIFIED:
        _put(details, "user", _summary(entry.get("user")))
        notification = channel.get("notification") or entry.get("notification") or {}
        _put(details, "notification", notification.get("type"))
        _put(details, "notification_status", notification.get("status"))
    elif kind in (EventKind.ESCALATED, EventKind.ASSIGNED):
        _put(details, "assignees", ", ".join(_names(entry.get("assignees") or ())))
        if kind is EventKind.ESCALATED and (level := _LEVEL.search(summary)):
            details["escalation_level"] = level.group(1)

    return TimelineEvent(
        at=_time(entry["created_at"]),
        source=Source.PAGERDUTY,
        kind=kind,
        text=text,
        actor=_summary(entry.get("agent")),
        url=entry.get("html_url") or incident.url or None,
        id=str(entry.get("id") or ""),
        details=details,
    )


# -- alerts -----------------------------------------------------------------------------------
def events_from_alerts(alerts: Sequence[Mapping[str, Any]]) -> tuple[TimelineEvent, ...]:
    """One ALERT event per alert; re-fires share `details["alert_key"]`, which the timeline folds."""
    return tuple(_alert_event(alert) for alert in alerts)


def _alert_event(alert: Mapping[str, Any]) -> TimelineEvent:
    body = alert.get("body") or {}
    cef = body.get("cef_details") or {}
    details_raw = body.get("details")
    if not isinstance(details_raw, Mapping):
        details_raw = cef.get("details") if isinstance(cef.get("details"), Mapping) else {}
    links = [
        c.get("href") for c in (body.get("contexts") or cef.get("contexts") or ()) if c.get("type") == "link"
    ]

    monitor = _clean(details_raw.get("monitor") or details_raw.get("monitor_name"))
    monitor_url = (
        details_raw.get("link")
        or details_raw.get("monitor_url")
        or cef.get("client_url")
        or next((href for href in links if href), None)
    )
    tags = details_raw.get("tags")
    details: dict[str, str] = {}
    _put(details, "monitor", monitor)
    _put(details, "monitor_url", monitor_url)
    _put(details, "query", details_raw.get("query"))
    _put(details, "alert_key", alert.get("alert_key"))
    _put(details, "service", _summary(alert.get("service")))
    _put(details, "severity", alert.get("severity") or cef.get("severity"))
    _put(details, "status", alert.get("status"))
    _put(details, "tags", ", ".join(map(str, tags)) if isinstance(tags, list) else tags)

    text = _clean(alert.get("summary")) or _clean(cef.get("description")) or monitor or "Alert"
    return TimelineEvent(
        at=_time(alert["created_at"]),
        source=Source.PAGERDUTY,
        kind=EventKind.ALERT,
        text=text,
        actor=_clean(cef.get("client")) or _summary(alert.get("integration")),
        url=alert.get("html_url") or monitor_url,
        id=str(alert.get("id") or ""),
        details=details,
    )


# -- notes ------------------------------------------------------------------------------------
def events_from_notes(
    notes: Sequence[Mapping[str, Any]], *, incident: Incident | None = None
) -> tuple[TimelineEvent, ...]:
    """One NOTE event per note. Notes have no page of their own: the link is the incident's."""
    return tuple(
        TimelineEvent(
            at=_time(note["created_at"]),
            source=Source.PAGERDUTY,
            kind=EventKind.NOTE,
            text=_clean(note.get("content")) or _DEFAULT_TEXT[EventKind.NOTE],
            actor=_summary(note.get("user")),
            url=incident.url if incident else None,
            id=str(note.get("id") or ""),
            details={"note_id": str(note.get("id") or "")} if note.get("id") else {},
        )
        for note in notes
    )


def events_for_incident(
    *,
    incident: Incident,
    log_entries: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    notes: Sequence[Mapping[str, Any]],
) -> tuple[TimelineEvent, ...]:
    """Log entries, alerts and notes as events, each note once.

    A note is also an `annotate_log_entry`; that one is kept (it links to the log entry), and a note
    with the same content within a minute of it is dropped.
    """
    from_log = events_from_log_entries(log_entries, incident=incident)
    annotated = [e for e in from_log if e.kind is EventKind.NOTE]
    fresh_notes = tuple(
        n for n in events_from_notes(notes, incident=incident) if not any(_same_note(n, a) for a in annotated)
    )
    return (*from_log, *events_from_alerts(alerts), *fresh_notes)


def _same_note(a: TimelineEvent, b: TimelineEvent) -> bool:
    return _fold(a.text) == _fold(b.text) and abs(a.at - b.at) <= _SAME_NOTE_WINDOW


# -- helpers ----------------------------------------------------------------------------------
def _time(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _by_time(items: Iterable[Mapping[str, Any]] | None, field: str) -> list[Mapping[str, Any]]:
    # sorted() is stable: items without a time keep their place at the front.
    dated = [i for i in items or () if i]
    return sorted(dated, key=lambda i: _time(i[field]) if i.get(field) else datetime.min.replace(tzinfo=UTC))


def _summary(ref: Mapping[str, Any] | None) -> str | None:
    if not ref:
        return None
    return _clean(ref.get("summary") or ref.get("name")) or None


def _names(refs: Iterable[Mapping[str, Any] | None]) -> tuple[str, ...]:
    """Summaries of references, first occurrence first, each once."""
    out: dict[str, None] = {}
    for ref in refs:
        if name := _summary(ref):
            out.setdefault(name)
    return tuple(out)


def _clean(value: object) -> str:
    return " ".join(str(value).split()) if value else ""


def _fold(text: str) -> str:
    return _clean(text).casefold()


def _put(details: dict[str, str], key: str, value: object) -> None:
    if value not in (None, ""):
        details[key] = str(value)
