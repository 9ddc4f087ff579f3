"""The PagerDuty mapping, on the bundled sample bodies (bot/samples/pd-9876/pagerduty)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.errors import InputError
from bot.samples import DEFAULT_SAMPLE
from bot.sources import pagerduty_mapping as mapping
from bot.timeline.build import build_timeline
from bot.timeline.models import EventKind, IncidentEvidence, Source

INCIDENT_URL = "https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7"


def _load(name: str) -> Any:
    body = json.loads((DEFAULT_SAMPLE / "pagerduty" / f"{name}.json").read_text(encoding="utf-8"))
    return body["incident"] if name == "incident" else body[name]


@pytest.fixture
def raw() -> dict[str, Any]:
    return {name: _load(name) for name in ("incident", "log_entries", "alerts", "notes")}


@pytest.fixture
def incident(raw):
    return mapping.with_responders(
        mapping.incident_from_json(raw["incident"], alerts=raw["alerts"]), raw["log_entries"]
    )


def _entry(raw: dict[str, Any], etype: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for e in raw["log_entries"] if e["type"] == etype))


class TestParseIncidentRef:
    @pytest.mark.parametrize("ref", ["PD-9876", "pd-9876", "Pd-9876", "9876", "#9876", "  PD-9876 "])
    def test_numbers(self, ref):
        """Every way of writing the incident number gives the bare number."""
        assert mapping.parse_incident_ref(ref) == "9876"

    def test_incident_id(self):
        """An incident id is used as it is."""
        assert mapping.parse_incident_ref("Q1R2S3T4U5V6W7") == "Q1R2S3T4U5V6W7"

    def test_incident_link(self):
        """A pasted link to the incident's page gives its id."""
        assert mapping.parse_incident_ref(INCIDENT_URL) == "Q1R2S3T4U5V6W7"

    @pytest.mark.parametrize(
        "ref",
        [
            "",
            "PD-",
            "PD-0",
            "PD-abc",
            "PD 9876",
            "9876; DROP TABLE incidents",
            "9876/../../users",
            "../incidents/9876",
            "9876?statuses[]=resolved",
            "Q1R2S3T4U5V6W7/log_entries",
            "q1r2s3t4u5v6w7",
            "<@U01ANA>",
            "PD-9876\nPD-1234",
            "https://evil.example/incidents/Q1R2S3T4U5V6W7",
            "12345678901234567890",
        ],
    )
    def test_malformed_refs_are_refused(self, ref):
        """Anything that is not a number, an id or the incident's link is an InputError."""
        with pytest.raises(InputError, match="is not a PagerDuty incident"):
            mapping.parse_incident_ref(ref)

    def test_message_says_what_works_and_stays_short(self):
        """The refusal names the accepted forms and does not echo a long input in full."""
        with pytest.raises(InputError) as caught:
            mapping.parse_incident_ref("x" * 500)
        message = str(caught.value)
        assert "PD-1234" in message and "Q1R2S3T4U5V6W7" in message
        assert len(message) < 200


class TestIncidentFromJson:
    def test_fields(self, incident):
        """Id, number, title, link, status, urgency, severity, times and policy come from the incident."""
        assert (incident.id, incident.number, incident.key) == ("Q1R2S3T4U5V6W7", 9876, "PD-9876")
        assert incident.title == "High severity API latency spikes in production"
        assert incident.url == INCIDENT_URL
        assert (incident.status, incident.urgency, incident.severity) == ("resolved", "high", "SEV-1")
        assert incident.created_at == datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
        assert incident.resolved_at == datetime(2024, 7, 20, 12, 15, tzinfo=UTC)
        assert incident.escalation_policy == "API Platform"
        assert incident.teams == ("API Platform",)

    def test_both_services(self, incident):
        """The incident's service comes first, then the other service its alerts came from, once each."""
        assert [(s.id, s.name) for s in incident.services] == [
            ("PSVC001", "customer-api"),
            ("PSVC002", "auth-service"),
        ]
        assert incident.services[0].url == "https://acme.pagerduty.com/service-directory/PSVC001"

    def test_without_alerts_only_the_incident_service(self, raw):
        """With no alerts the incident has its own service only."""
        incident = mapping.incident_from_json(raw["incident"])
        assert [s.name for s in incident.services] == ["customer-api"]

    def test_slack_channel_from_conference_bridge(self, incident):
        """A Slack archive link in the conference bridge names the incident's channel."""
        assert incident.conference_url == "https://acme.slack.com/archives/C07INC9876"
        assert incident.slack_channel_id == "C07INC9876"

    def test_other_bridge_is_not_a_channel(self, raw):
        """A video-call bridge is kept as the conference URL but names no channel."""
        raw["incident"]["conference_bridge"] = {"conference_url": "https://meet.example/abc-123"}
        incident = mapping.incident_from_json(raw["incident"])
        assert (incident.conference_url, incident.slack_channel_id) == ("https://meet.example/abc-123", None)

    def test_resolved_people_come_from_log_entries(self, raw, incident):
        """A resolved incident has empty lists, so acknowledgers and assignees come from its log entries."""
        assert raw["incident"]["acknowledgements"] == [] and raw["incident"]["assignments"] == []
        assert incident.acknowledgers == ("Ana Lima",)
        assert incident.assignees == ("Ana Lima", "Carlos Mendes")
        assert incident.commander == "Ana Lima"

    def test_open_incident_people_come_from_the_incident(self, raw):
        """While open, the incident's own assignments and acknowledgements are used, in time order."""
        body = raw["incident"]
        body["status"], body["resolved_at"] = "acknowledged", None
        ben = {"id": "PBEN002", "type": "user_reference", "summary": "Ben Okafor"}
        ana = {"id": "PANA001", "type": "user_reference", "summary": "Ana Lima"}
        body["assignments"] = [
            {"at": "2024-07-20T10:40:00Z", "assignee": ben},
            {"at": "2024-07-20T10:30:00Z", "assignee": ana},
        ]
        body["acknowledgements"] = [{"at": "2024-07-20T10:41:00Z", "acknowledger": ben}]
        incident = mapping.with_responders(mapping.incident_from_json(body), raw["log_entries"])
        assert incident.assignees == ("Ana Lima", "Ben Okafor")
        assert incident.acknowledgers == ("Ben Okafor",)
        assert incident.resolved_at is None

    def test_resolved_incident_people_come_from_its_log(self, raw):
        """A resolved incident lists nobody: its assignees and acknowledgers come from its log, in order."""
        bare = mapping.incident_from_json(raw["incident"])
        assert (bare.assignees, bare.acknowledgers, bare.commander) == ((), (), None)
        incident = mapping.with_responders(bare, raw["log_entries"])
        assert incident.commander == "Ana Lima"
        assert incident.model_copy(update={"assignees": (), "acknowledgers": ()}) == bare

    def test_resolved_at_falls_back_to_last_status_change(self, raw):
        """A resolved incident without resolved_at was resolved at its last status change."""
        body = raw["incident"]
        del body["resolved_at"]
        body["last_status_change_at"] = "2024-07-20T14:15:00+02:00"
        assert mapping.incident_from_json(body).resolved_at == datetime(2024, 7, 20, 12, 15, tzinfo=UTC)


class TestEventsFromLogEntries:
    def test_one_event_per_entry_with_every_kind(self, raw, incident):
        """Each log entry becomes one PagerDuty event; the sample has every response kind."""
        events = mapping.events_from_log_entries(raw["log_entries"], incident=incident)
        assert len(events) == len(raw["log_entries"])
        assert {e.source for e in events} == {Source.PAGERDUTY}
        assert {e.kind for e in events} == {
            EventKind.TRIGGERED,
            EventKind.NOTIFIED,
            EventKind.ACKNOWLEDGED,
            EventKind.ESCALATED,
            EventKind.ASSIGNED,
            EventKind.NOTE,
            EventKind.RESOLVED,
        }

    def test_actors_and_times(self, raw, incident):
        """The actor is the agent's summary; times are aware UTC."""
        events = {e.kind: e for e in mapping.events_from_log_entries(raw["log_entries"], incident=incident)}
        ack = events[EventKind.ACKNOWLEDGED]
        assert (ack.actor, ack.at, ack.text) == (
            "Ana Lima",
            datetime(2024, 7, 20, 10, 34, tzinfo=UTC),
            "Acknowledged by Ana Lima.",
        )
        assert events[EventKind.TRIGGERED].actor == "Datadog"
        assert events[EventKind.RESOLVED].actor == "Ana Lima"

    def test_urls_link_each_entry_else_the_incident(self, raw, incident):
        """The link is the log entry's page; an entry without one links the incident."""
        entries = raw["log_entries"]
        entries[0]["html_url"] = None
        events = mapping.events_from_log_entries(entries, incident=incident)
        assert events[0].url == INCIDENT_URL
        assert events[1].url == f"{INCIDENT_URL}/log_entries/{entries[1]['id']}"
        assert events[1].id == entries[1]["id"]

    def test_trigger_names_the_integration(self, raw, incident):
        """The trigger says which integration fired and what; its channel and client link are details."""
        (event,) = mapping.events_from_log_entries([_entry(raw, "trigger_log_entry")], incident=incident)
        assert event.text == "Triggered by Datadog: High API Latency: p99 > 2s on customer-api"
        assert event.details["channel"] == "api"
        assert event.details["client_url"] == "https://app.datadoghq.com/monitors/123456"

    def test_notify_names_who_and_how(self, raw, incident):
        """A notification has no actor; who was notified and how are details."""
        (event,) = mapping.events_from_log_entries([_entry(raw, "notify_log_entry")], incident=incident)
        assert event.kind is EventKind.NOTIFIED and event.actor is None
        assert event.details["user"] == "Carlos Mendes"
        assert event.details["notification"] == "phone_notification"

    def test_escalation_level_assignees_and_note(self, raw, incident):
        """An escalation carries its level, the new assignees and the note that explains it."""
        (event,) = mapping.events_from_log_entries([_entry(raw, "escalate_log_entry")], incident=incident)
        assert event.details["escalation_level"] == "2"
        assert event.details["assignees"] == "Carlos Mendes"
        assert "auth-service token checks are timing out" in event.text
        assert event.details["channel"] == "website"

    def test_annotate_is_the_note_text(self, raw, incident):
        """An annotate entry reads as the note itself, by its author."""
        (event,) = mapping.events_from_log_entries([_entry(raw, "annotate_log_entry")], incident=incident)
        assert event.kind is EventKind.NOTE
        assert (event.text, event.actor) == (
            "Suspect the connection pool change in customer-api deploy 1003",
            "Carlos Mendes",
        )

    def test_urgency_change_is_priority(self, raw, incident):
        """An urgency change is a PRIORITY event."""
        entry = _entry(raw, "acknowledge_log_entry")
        entry.update(type="urgency_change_log_entry", summary="Urgency changed from low to high by Ana Lima.")
        (event,) = mapping.events_from_log_entries([entry], incident=incident)
        assert (event.kind, event.text) == (
            EventKind.PRIORITY,
            "Urgency changed from low to high by Ana Lima.",
        )

    @pytest.mark.parametrize(
        "etype", ["snooze_log_entry", "unacknowledge_log_entry", "some_future_log_entry"]
    )
    def test_other_types_are_status_updates(self, raw, incident, etype):
        """Snoozes, unacknowledgements and unknown types become status updates with their summary."""
        entry = _entry(raw, "acknowledge_log_entry")
        entry.update(type=etype, summary="Something changed.")
        (event,) = mapping.events_from_log_entries([entry], incident=incident)
        assert (event.kind, event.text, event.details["log_entry_type"]) == (
            EventKind.STATUS_UPDATE,
            "Something changed.",
            etype,
        )


class TestEventsFromAlerts:
    def test_one_event_per_occurrence(self, raw):
        """Every alert, re-fires included, is one ALERT event linked to the alert."""
        events = mapping.events_from_alerts(raw["alerts"])
        assert [e.kind for e in events] == [EventKind.ALERT] * 4
        assert [e.at.strftime("%H:%M") for e in events] == ["10:30", "10:32", "10:35", "10:44"]
        assert events[0].url == "https://acme.pagerduty.com/alerts/QA1LAT9876X01A"
        assert events[0].actor == "Datadog"

    def test_body_details(self, raw):
        """Monitor, its link, query, alert key and service come from the alert body."""
        details = mapping.events_from_alerts(raw["alerts"])[0].details
        assert details["monitor"] == "High API Latency"
        assert details["monitor_url"] == "https://app.datadoghq.com/monitors/123456"
        assert details["query"].startswith("percentile(last_5m):p99:trace.http.request{service:customer-api")
        assert details["alert_key"] == "datadog-monitor-123456-customer-api"
        assert details["service"] == "customer-api"

    def test_refires_share_the_key_and_fold(self, raw, incident):
        """The three latency alerts share one key and the timeline folds them into 'fired 3 times'."""
        events = mapping.events_from_alerts(raw["alerts"])
        assert len({e.details["alert_key"] for e in events[:3]}) == 1
        assert events[3].details["service"] == "auth-service"
        timeline = build_timeline(IncidentEvidence(incident=incident, pagerduty_events=events))
        alerts = timeline.of_kind(EventKind.ALERT)
        assert [a.count for a in alerts] == [3, 1]
        assert alerts[0].text.endswith("(fired 3 times)")

    def test_details_outside_the_body_details(self, raw):
        """Without body details, the CEF details and the context link still give monitor and link."""
        alert = copy.deepcopy(raw["alerts"][0])
        alert["body"]["details"] = "plain text from an email integration"
        del alert["body"]["cef_details"]["client_url"]
        del alert["body"]["cef_details"]["details"]["link"]
        details = mapping.events_from_alerts([alert])[0].details
        assert details["monitor"] == "High API Latency"
        assert details["monitor_url"] == "https://app.datadoghq.com/monitors/123456"


class TestEventsFromNotes:
    def test_note_event(self, raw, incident):
        """A note is a NOTE event by its author, linked to the incident."""
        (event,) = mapping.events_from_notes(raw["notes"], incident=incident)
        assert (event.kind, event.actor, event.id) == (EventKind.NOTE, "Carlos Mendes", "PNT9876")
        assert event.text == "Suspect the connection pool change in customer-api deploy 1003"
        assert event.url == INCIDENT_URL


class TestEventsForIncident:
    def test_a_note_appears_once(self, raw, incident):
        """The note in /notes and its annotate log entry give one event: the log entry's."""
        events = mapping.events_for_incident(
            incident=incident, **{k: raw[k] for k in ("log_entries", "alerts", "notes")}
        )
        notes = [e for e in events if e.kind is EventKind.NOTE]
        assert len(notes) == 1
        assert notes[0].url.endswith("/log_entries/R7N3Q5S7U9W1Y3A5C7E9G1I3K5")
        assert len(events) == len(raw["log_entries"]) + len(raw["alerts"])

    def test_distinct_notes_are_kept(self, raw, incident):
        """A note with other text, or the same text an hour later, is its own event."""
        extra = copy.deepcopy(raw["notes"][0])
        extra.update(id="PNT0002", content="Rollback done", created_at="2024-07-20T11:20:00Z")
        later = copy.deepcopy(raw["notes"][0])
        later.update(
            id="PNT0003", created_at=(datetime(2024, 7, 20, 11, tzinfo=UTC) + timedelta(hours=1)).isoformat()
        )
        events = mapping.events_for_incident(
            incident=incident, log_entries=raw["log_entries"], alerts=(), notes=[*raw["notes"], extra, later]
        )
        assert sorted(e.id for e in events if e.kind is EventKind.NOTE) == [
            "PNT0002",
            "PNT0003",
            "R7N3Q5S7U9W1Y3A5C7E9G1I3K5",
        ]
