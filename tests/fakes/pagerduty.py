"""A local PagerDuty REST API v2 over TLS: the incident endpoints the bot reads, and notes it writes.

Serves the bundled sample (bot/samples/pd-9876/pagerduty/*.json, the same bytes the replay reads) and
any incidents a test adds, with PagerDuty's classic pagination (`limit` default 25, at most 100,
`offset` + `limit` at most 10,000, `more`, `total` only when asked) and its error bodies
(`{"error": {"message", "code", "errors"?}}`). Faults (latency, 429 + Retry-After, 5xx, hang) come from
`FakeServer`; the 429 carries PagerDuty's body and `ratelimit-*` headers.

    with PagerDutyFake() as pd:
        source = PagerDutySource(token=pd.token, base_url=pd.url, ca_bundle=write_ca_bundle(tmp_path))
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from bot.samples import DEFAULT_SAMPLE
from tests.fakes.http import FakeServer, Fault, Request, Response
from tests.fakes.tls import server_context

API = "https://api.pagerduty.com"
WEB = "https://acme.pagerduty.com"
SAMPLE_DIR = DEFAULT_SAMPLE / "pagerduty"
DEFAULT_LIMIT, MAX_LIMIT, ITERATION_LIMIT = 25, 100, 10_000
MAX_RANGE = timedelta(days=184)  # "Maximum range is 6 months"

# The sample's people, by the email a `From` header names.
SAMPLE_USERS = {
    "ana.lima@acme.example": ("PANA001", "Ana Lima"),
    "ben.okafor@acme.example": ("PBEN002", "Ben Okafor"),
    "carlos.mendes@acme.example": ("PCAR003", "Carlos Mendes"),
}


def error_body(message: str, code: int, *errors: str) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = list(errors)
    return {"error": body}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def reference(kind: str, ref_id: str, summary: str) -> dict[str, Any]:
    paths = {
        "user": "users",
        "service": "services",
        "team": "teams",
        "escalation_policy": "escalation_policies",
    }
    web = "service-directory" if kind == "service" else paths[kind]
    return {
        "id": ref_id,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"{API}/{paths[kind]}/{ref_id}",
        "html_url": f"{WEB}/{web}/{ref_id}",
    }


@dataclass
class FakeIncident:
    incident: dict[str, Any]
    log_entries: list[dict[str, Any]]  # newest first, as PagerDuty lists them
    alerts: list[dict[str, Any]]
    notes: list[dict[str, Any]] = field(default_factory=list)


def generated_incident(
    number: int,
    *,
    log_entries: int = 5000,
    created_at: datetime = datetime(2024, 7, 20, 10, 30, tzinfo=UTC),
    resolved_at: datetime | None = None,
    service: tuple[str, str] = ("PSVC001", "customer-api"),
    team: tuple[str, str] = ("PTEAM01", "API Platform"),
    urgency: str = "high",
) -> FakeIncident:
    """A synthetic incident with `log_entries` entries (trigger, then notify/annotate pairs, then resolve)."""
    incident_id = f"QG{number:012d}"
    resolved_at = resolved_at or created_at + timedelta(seconds=max(log_entries, 60))
    svc = reference("service", *service)
    ana = reference("user", "PANA001", "Ana Lima")
    incident = {
        "id": incident_id,
        "type": "incident",
        "summary": f"[#{number}] Generated incident {number}",
        "self": f"{API}/incidents/{incident_id}",
        "html_url": f"{WEB}/incidents/{incident_id}",
        "incident_number": number,
        "title": f"Generated incident {number}",
        "created_at": _iso(created_at),
        "updated_at": _iso(resolved_at),
        "status": "resolved",
        "incident_key": f"generated-{number}",
        "service": svc,
        "assignments": [],
        "acknowledgements": [],
        "last_status_change_at": _iso(resolved_at),
        "resolved_at": _iso(resolved_at),
        "escalation_policy": reference("escalation_policy", "PEP0001", "API Platform"),
        "teams": [reference("team", *team)],
        "priority": None,
        "urgency": urgency,
    }
    entries = []
    for i in range(log_entries):
        if i == 0:
            etype, summary, agent = "trigger_log_entry", "Triggered through the API.", svc
        elif i == log_entries - 1:
            etype, summary, agent = "resolve_log_entry", "Resolved by Ana Lima.", ana
        elif i % 2:
            etype, summary, agent = "notify_log_entry", "Notified Ana Lima by email.", None
        else:
            etype, summary, agent = "annotate_log_entry", "Ana Lima added a note.", ana
        entry_id = f"RG{number:08d}{i:016d}"
        entry: dict[str, Any] = {
            "id": entry_id,
            "type": etype,
            "summary": summary,
            "self": f"{API}/log_entries/{entry_id}?incident_id={incident_id}",
            "html_url": f"{WEB}/incidents/{incident_id}/log_entries/{entry_id}",
            "created_at": _iso(created_at + timedelta(seconds=i)),
            "channel": {"type": "note", "summary": f"progress note {i}"}
            if etype == "annotate_log_entry"
            else {"type": "auto"},
            "service": svc,
            "incident": {"id": incident_id, "type": "incident_reference"},
        }
        if agent is not None:
            entry["agent"] = agent
        entries.append(entry)
    return FakeIncident(incident=incident, log_entries=entries[::-1], alerts=[])


class PagerDutyFake(FakeServer):
    """GET /incidents[/{id}[/log_entries|/alerts|/notes]], POST /incidents/{id}/notes."""

    name = "pagerduty"

    def __init__(self, *, token: str = "pd-test-token", sample: bool = True, read_only: bool = False) -> None:
        super().__init__(tls=server_context())
        self.token = token
        self.read_only = read_only  # a read-only API key: every write answers 403
        self.incidents: dict[str, FakeIncident] = {}
        self.users = {email: reference("user", *user) for email, user in SAMPLE_USERS.items()}
        self.posted_notes: list[dict[str, str]] = []  # incident_id, from, content
        self._data_lock = threading.Lock()
        self.route("GET", r"/incidents", self._list_incidents)
        self.route("GET", r"/incidents/(?P<ref>[^/]+)", self._show_incident)
        self.route("GET", r"/incidents/(?P<id>[^/]+)/log_entries", self._log_entries)
        self.route("GET", r"/incidents/(?P<id>[^/]+)/alerts", self._alerts)
        self.route("GET", r"/incidents/(?P<id>[^/]+)/notes", self._notes)
        self.route("POST", r"/incidents/(?P<id>[^/]+)/notes", self._post_note)
        self._load_sample = sample
        if sample:
            self.add_incident(
                *(self._sample(name) for name in ("incident", "log_entries", "alerts", "notes"))
            )

    def reset(self) -> None:
        """Back to a fresh fake on the same port: no requests, faults, posted notes or added incidents
        (the sample again, when it was loaded)."""
        with self._lock:
            self.requests.clear()
        self.faults.clear()
        with self._data_lock:
            self.incidents.clear()
            self.posted_notes.clear()
        if self._load_sample:
            self.add_incident(
                *(self._sample(name) for name in ("incident", "log_entries", "alerts", "notes"))
            )

    @staticmethod
    def _sample(name: str) -> Any:
        body = json.loads((SAMPLE_DIR / f"{name}.json").read_text(encoding="utf-8"))
        return body["incident"] if name == "incident" else body[name]

    # -- test data --------------------------------------------------------------------------
    def add_incident(
        self, incident: dict[str, Any], log_entries: list[dict], alerts: list[dict], notes: list[dict]
    ) -> dict[str, Any]:
        record = FakeIncident(*copy.deepcopy((incident, log_entries, alerts, notes)))
        with self._data_lock:
            self.incidents[incident["id"]] = record
        return record.incident

    def add_generated_incident(self, number: int, **kwargs: Any) -> dict[str, Any]:
        """See `generated_incident`; returns the incident body."""
        generated = generated_incident(number, **kwargs)
        return self.add_incident(generated.incident, generated.log_entries, generated.alerts, generated.notes)

    def _find(self, ref: str) -> FakeIncident | None:
        with self._data_lock:
            if ref in self.incidents:
                return self.incidents[ref]
            return next(
                (r for r in self.incidents.values() if str(r.incident["incident_number"]) == ref), None
            )

    # -- PagerDuty's answers ----------------------------------------------------------------
    def unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Token token={self.token}":
            return Response(401, error_body("Authentication failed", 2006))
        return None

    def rate_limited(self, fault: Fault) -> Response:
        headers = {
            "Retry-After": str(fault.retry_after),
            "ratelimit-limit": "960",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(fault.retry_after),
        }
        return Response(429, error_body("Rate Limit Exceeded", 2020), headers)

    def server_error(self, fault: Fault) -> Response:
        return Response(fault.status, error_body(HTTPStatus(fault.status).phrase, 2000))

    def not_found(self, request: Request) -> Response:
        return Response(404, error_body("Not Found", 2100))

    def _page(self, request: Request, items: list[dict], wrapper: str) -> Response:
        try:
            limit = int(request.arg("limit") or DEFAULT_LIMIT)
            offset = int(request.arg("offset") or 0)
        except ValueError:
            return Response(
                400, error_body("Invalid Input Provided", 2001, "limit and offset must be integers")
            )
        if limit < 1 or offset < 0:
            return Response(
                400, error_body("Invalid Input Provided", 2001, "limit and offset must be positive")
            )
        limit = min(limit, MAX_LIMIT)
        if offset + limit > ITERATION_LIMIT:
            return Response(
                400,
                error_body(
                    "Invalid Input Provided", 2001, f"Offset + limit must not exceed {ITERATION_LIMIT}."
                ),
            )
        page = items[offset : offset + limit]
        total = len(items) if request.arg("total") == "true" else None
        more = offset + len(page) < len(items)
        return Response(200, {wrapper: page, "limit": limit, "offset": offset, "more": more, "total": total})

    def _show_incident(self, request: Request, match: re.Match[str]) -> Response:
        record = self._find(match["ref"])
        if record is None:
            return self.not_found(request)
        incident = dict(record.incident)
        if "conference_bridge" not in request.query.get("include[]", []):
            incident.pop("conference_bridge", None)  # only returned when asked for
        return Response(200, {"incident": incident})

    def _by_id(self, match: re.Match[str]) -> FakeIncident | None:
        with self._data_lock:  # sub-resources take the id, not the number
            return self.incidents.get(match["id"])

    def _log_entries(self, request: Request, match: re.Match[str]) -> Response:
        record = self._by_id(match)
        if record is None:
            return self.not_found(request)
        entries = record.log_entries
        if "channels" not in request.query.get("include[]", []):
            entries = [{**e, "channel": {"type": (e.get("channel") or {}).get("type")}} for e in entries]
        return self._page(request, entries, "log_entries")

    def _alerts(self, request: Request, match: re.Match[str]) -> Response:
        record = self._by_id(match)
        if record is None:
            return self.not_found(request)
        return self._page(request, record.alerts, "alerts")

    def _notes(self, request: Request, match: re.Match[str]) -> Response:
        record = self._by_id(match)
        if record is None:
            return self.not_found(request)
        return Response(200, {"notes": record.notes})

    def _post_note(self, request: Request, match: re.Match[str]) -> Response:
        if self.read_only:
            return Response(403, error_body("Access Denied", 2010, "This API key is read-only."))
        record = self._by_id(match)
        if record is None:
            return self.not_found(request)
        sender = request.headers.get("from", "").strip()
        if not sender:
            return Response(
                400,
                error_body(
                    "Invalid Input Provided", 2001, "A From header naming a user's email is required."
                ),
            )
        user = self.users.get(sender.lower())
        if user is None:
            return Response(400, error_body("Requester User Not Found", 1008))
        content = ((request.json() or {}).get("note") or {}).get("content") or ""
        if not content.strip():
            return Response(400, error_body("Invalid Input Provided", 2001, "Content can't be blank."))
        now = _iso(datetime.now(UTC))
        with self._data_lock:
            note_id = f"PN{len(self.posted_notes) + 1:05d}"
            note = {
                "id": note_id,
                "user": user,
                "channel": {"summary": "The PagerDuty website or APIs"},
                "content": content,
                "created_at": now,
                "updated_at": now,
            }
            record.notes.append(note)
            self.posted_notes.append({"incident_id": match["id"], "from": sender, "content": content})
        return Response(200, {"note": note})

    def _list_incidents(self, request: Request, match: re.Match[str]) -> Response:
        query = request.query
        with self._data_lock:
            incidents = [r.incident for r in self.incidents.values()]
        if request.arg("date_range") != "all":
            try:
                until = _parse_time(request.arg("until")) if request.arg("until") else datetime.now(UTC)
                since = (
                    _parse_time(request.arg("since")) if request.arg("since") else until - timedelta(days=30)
                )
            except ValueError:
                return Response(
                    400, error_body("Invalid time values in 'since' and/or 'until' parameters", 2004)
                )
            if until - since > MAX_RANGE or since > until:
                return Response(400, error_body("Invalid Query Date Range", 2005))
            # since/until select by creation time, not by resolution (go-pagerduty #244).
            incidents = [i for i in incidents if since <= _parse_time(i["created_at"]) < until]
        filters = {"statuses[]": "status", "urgencies[]": "urgency"}
        for param, key in filters.items():
            if wanted := query.get(param):
                incidents = [i for i in incidents if i.get(key) in wanted]
        if wanted := query.get("service_ids[]"):
            incidents = [i for i in incidents if (i.get("service") or {}).get("id") in wanted]
        if wanted := query.get("team_ids[]"):
            incidents = [i for i in incidents if any(t["id"] in wanted for t in i.get("teams") or ())]
        incidents.sort(key=lambda i: _parse_time(i["created_at"]))
        return self._page(request, incidents, "incidents")
