from __future__ import annotations

from datetime import UTC, datetime

from freezegun import freeze_time

from bot.analysis.draft import apply_edit, compile_draft, keep_edits
from bot.analysis.models import TO_BE_FILLED, Draft, DraftOptions, EditableSection, MetricName
from bot.timeline.models import (
    Channel,
    ChatMessage,
    Commit,
    EventKind,
    Incident,
    IncidentEvidence,
    Service,
    Source,
    TimelineEvent,
    datetime_to_slack_ts,
)
from tests import builders
from tests.builders import INCIDENT_URL, at, deploy

NOW = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)
OPTIONS = DraftOptions()
CHANNEL = Channel(
    id="C07INC9876", name="inc-9876-api-latency", url="https://acme.slack.com/archives/C07INC9876"
)
USERS = {"U01ANA": "Ana Lima", "U02BEN": "Ben Okafor", "U03CAR": "Carlos Mendes", "U04DEE": "Dee Park"}
SHA_GOOD = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
SHA_BAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SHA_AUTH = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
AWS_KEY = "AKIAZ3Q4R5T6Y7U8I9O0"


def incident(**fields: object) -> Incident:
    """PD-9876 as the sample has it: SEV-1, resolved 105 minutes after the trigger, Ana acknowledging."""
    sample: dict[str, object] = {
        "severity": "SEV-1",
        "urgency": "high",
        "resolved_at": at(105),
        "services": (Service(id="PSVC001", name="customer-api"), Service(id="PSVC002", name="auth-service")),
        "acknowledgers": ("Ana Lima",),
    }
    return builders.incident(**(sample | fields))


def pd(minutes: float, kind: EventKind, text: str, **fields: object) -> TimelineEvent:
    values: dict[str, object] = {
        "at": at(minutes),
        "source": Source.PAGERDUTY,
        "kind": kind,
        "text": text,
        "url": f"{INCIDENT_URL}/log_entries/R{int(minutes * 60)}",
    }
    values.update(fields)
    return TimelineEvent.model_validate(values)


def alert(minutes: float) -> TimelineEvent:
    details = {"alert_key": "high-api-latency", "monitor": "High API Latency"}
    return pd(minutes, EventKind.ALERT, "Datadog: High API Latency", details=details)


def msg(minutes: float, user: str, text: str, **fields: object) -> ChatMessage:
    ts = datetime_to_slack_ts(at(minutes))
    values: dict[str, object] = {
        "ts": ts,
        "channel_id": CHANNEL.id,
        "user_id": user,
        "text": text,
        "permalink": f"{CHANNEL.url}/p{ts.replace('.', '')}",
    }
    values.update(fields)
    return ChatMessage.model_validate(values)


PAGERDUTY_EVENTS = (
    alert(0),
    alert(2),
    alert(5),
    pd(0, EventKind.TRIGGERED, "Triggered by Datadog: High API Latency"),
    pd(4, EventKind.ACKNOWLEDGED, "Acknowledged by Ana Lima", actor="Ana Lima"),
    pd(15, EventKind.ESCALATED, "Escalated to Carlos Mendes (level 2)", actor="Ana Lima"),
    pd(
        30,
        EventKind.NOTE,
        "Suspect the connection pool change in customer-api deploy 1003",
        actor="Ben Okafor",
    ),
    pd(105, EventKind.RESOLVED, "Resolved by Ana Lima", actor="Ana Lima"),
)
PR_482 = Commit(
    sha=SHA_BAD, message="Use pool v2 for the orders DB client (#482)", author="Ben Okafor", pull_request=482
)
DEPLOYMENTS = (
    deploy(1001, -19.5 * 60, SHA_GOOD),
    deploy(1002, -80, SHA_AUTH, service="auth-service", description="Bump structlog to 24.2"),
    deploy(
        1003,
        -18,
        SHA_BAD,
        description="Deploy #482: DB client pool v2",
        status="inactive",
        status_at=at(48),
        commits=(PR_482,),
    ),
    deploy(1004, 48, SHA_GOOD, description="Rollback to 7a6b5c4"),
)
MESSAGES = (
    msg(6, "U01ANA", "<!channel> investigating p99 latency on customer-api"),
    msg(35, "U04DEE", f"tried with export AWS_ACCESS_KEY_ID={AWS_KEY}"),
    msg(40, "U02BEN", "root cause: pool size dropped from 50 to 5 in #482", pinned=True),
    msg(55, "U01ANA", "error rate back to normal, mitigated"),
    msg(
        80, "U01ANA", "action item: <@U02BEN> add a CI check that fails when the DB pool size drops below 20"
    ),
    msg(82, "U01ANA", "TODO: add a Datadog monitor on DB connection wait time"),
    msg(85, "U04DEE", "we should be more careful"),
    msg(95, "U01ANA", "went well: the rollback took 7 minutes"),
    msg(95.5, "U02BEN", "we got lucky: Saturday traffic was low"),
)


def sample(**fields: object) -> IncidentEvidence:
    values: dict[str, object] = {
        "incident": incident(),
        "pagerduty_events": PAGERDUTY_EVENTS,
        "deployments": DEPLOYMENTS,
        "channel": CHANNEL,
        "messages": MESSAGES,
        "users": USERS,
    }
    values.update(fields)
    return IncidentEvidence.model_validate(values)


def bare(**incident_fields: object) -> IncidentEvidence:
    """An incident and nothing else: no events, no deploys, no channel."""
    return IncidentEvidence(incident=incident(**incident_fields))


class TestCompileDraft:
    def test_the_summary_states_what_when_how_long_trigger_and_mitigation(self) -> None:
        """The sample's summary says only what the evidence shows, in three sentences."""
        draft = compile_draft(sample(), options=OPTIONS, now=NOW)
        assert draft.summary == (
            'PD-9876 (SEV-1), "High severity API latency spikes in production", began at 10:30 UTC on 2024-07-20 '
            "and affected customer-api and auth-service. "
            'It was detected by the alert "High API Latency" at 10:30 UTC and resolved 1 h 45 min after the trigger. '
            'The suspected trigger is the deploy of acme/customer-api 9f8e7d6 ("Deploy #482: DB client pool v2") '
            "at 10:12 UTC; it was mitigated by rolling back acme/customer-api to 7a6b5c4 at 11:18 UTC."
        )

    def test_the_other_sections_are_composed_from_facts(self) -> None:
        """Impact, leadup, detection and response quote the computed facts; customer effect is left to authors."""
        draft = compile_draft(sample(), options=OPTIONS, now=NOW)
        assert draft.impact == (
            "From the first alert at 10:30 UTC to the mitigation at 11:18 UTC (48 min). The incident was resolved at "
            f"12:15 UTC. Services: customer-api, auth-service. Customer-facing effect: {TO_BE_FILLED}"
        )
        assert draft.leadup == (
            'The suspected trigger is deploy 1003 of acme/customer-api 9f8e7d6 ("Deploy #482: DB client pool v2") to '
            "production at 10:12 UTC: deployed 18 min before the trigger; same service: customer-api; rolled back at "
            '11:18 UTC. It shipped PR #482 "Use pool v2 for the orders DB client". Other deploys before the trigger: '
            'acme/auth-service a1b2c3d ("Bump structlog to 24.2") at 09:10 UTC.'
        )
        assert draft.detection == (
            'The first alert was "High API Latency" at 10:30 UTC (fired 3 times, last at 10:35 UTC). '
            "Time to detect: 18 min after the suspected deploy."
        )
        assert draft.response == (
            "Ana Lima acknowledged at 10:34 UTC, 4 min after the trigger. "
            "At 10:45 UTC: Escalated to Carlos Mendes (level 2). "
            "acme/customer-api was rolled back to 7a6b5c4 at 11:18 UTC (deploy 1004, success). "
            "Ana Lima reported at 11:25 UTC: \u201cerror rate back to normal, mitigated\u201d "
            "Resolved at 12:15 UTC by Ana Lima, 1 h 45 min after the trigger."
        )

    def test_the_analysis_is_attached_to_the_draft(self) -> None:
        """Suspects, rollbacks, metrics, action items, causes and lessons all land in the draft."""
        draft = compile_draft(sample(), options=OPTIONS, now=NOW)
        assert [s.deployment.id for s in draft.suspects] == [1003, 1002]
        assert [r.id for r in draft.rollbacks] == [1004]
        assert {m.name: m.seconds // 60 for m in draft.metrics} == {
            MetricName.TIME_TO_DETECT: 18,
            MetricName.TIME_TO_ACKNOWLEDGE: 4,
            MetricName.TIME_TO_MITIGATE: 48,
            MetricName.TIME_TO_RESOLVE: 105,
        }
        assert [(a.owner, a.owner_stated) for a in draft.action_items] == [
            ("Ben Okafor", True),
            ("Ana Lima", False),
            ("Dee Park", False),
        ]
        assert [(q.author, q.pinned) for q in draft.contributing_factors] == [("Ben Okafor", True)]
        assert [q.author for q in draft.lessons.went_well] == ["Ana Lima"]
        assert [q.author for q in draft.lessons.lucky] == ["Ben Okafor"]
        assert (draft.incident, draft.channel, draft.generated_at) == (incident(), CHANNEL, NOW)

    def test_deploys_after_the_trigger_are_not_suspects(self) -> None:
        """A non-rollback deploy after the first alert is in the timeline but never a suspect."""
        late = deploy(1005, 20, "b" * 40, description="Hotfix attempt")
        draft = compile_draft(sample(deployments=(*DEPLOYMENTS, late)), options=OPTIONS, now=NOW)
        assert 1005 not in {s.deployment.id for s in draft.suspects}
        assert any(e.id == "1005" for e in draft.timeline.events)

    def test_secrets_are_redacted_before_anything_is_built(self) -> None:
        """A key pasted in chat reaches neither the timeline nor any section, and the count says so."""
        draft = compile_draft(sample(), options=OPTIONS, now=NOW)
        assert AWS_KEY not in draft.model_dump_json()
        assert draft.redactions == {"aws_access_key": 1}

    def test_source_notes_are_carried_over(self) -> None:
        """What a failed source said reaches the draft, which is then partial."""
        note = "GitHub was unreachable: 503 Service Unavailable"
        draft = compile_draft(sample(deployments=(), source_notes=(note,)), options=OPTIONS, now=NOW)
        assert draft.source_notes == (note,) and draft.is_partial

    def test_missing_data_reads_to_be_filled_never_invented(self) -> None:
        """An open incident with no events, deploys or chat gets TO_BE_FILLED wherever a fact is missing."""
        draft = compile_draft(bare(status="triggered", resolved_at=None), options=OPTIONS, now=NOW)
        assert draft.summary == (
            'PD-9876 (SEV-1), "High severity API latency spikes in production", began at 10:30 UTC on 2024-07-20 '
            "and affected customer-api and auth-service. It was opened in PagerDuty at 10:30 UTC; it is still "
            f"triggered. The trigger and how it was mitigated: {TO_BE_FILLED}"
        )
        assert draft.leadup == TO_BE_FILLED
        assert draft.impact == (
            f"From the trigger at 10:30 UTC; its end: {TO_BE_FILLED} Services: customer-api, auth-service. "
            f"Customer-facing effect: {TO_BE_FILLED}"
        )
        assert draft.detection == (
            "PagerDuty opened the incident at 10:30 UTC. "
            f"How it was noticed: {TO_BE_FILLED} Time to detect: {TO_BE_FILLED}"
        )
        assert draft.response == "The incident is still triggered."
        assert (draft.metrics, draft.suspects, draft.action_items) == ((), (), ())

    def test_a_mitigation_reported_in_chat_is_quoted_when_nothing_was_rolled_back(self) -> None:
        """Without deploys, the chat cue is the mitigation and the trigger is left to the authors."""
        draft = compile_draft(sample(deployments=()), options=OPTIONS, now=NOW)
        assert draft.summary.endswith(
            "It was mitigated at 11:25 UTC (Ana Lima: \u201cerror rate back to normal, mitigated\u201d). "
            f"The trigger: {TO_BE_FILLED}"
        )
        assert draft.leadup == TO_BE_FILLED
        assert draft.detection.endswith(f"Time to detect: {TO_BE_FILLED}")

    def test_times_on_a_later_day_carry_their_date(self) -> None:
        """A resolution past midnight UTC names its date, so no clock time is ambiguous."""
        late = incident(created_at=at(13 * 60), resolved_at=at(14 * 60 + 10))
        draft = compile_draft(bare(**late.model_dump()), options=OPTIONS, now=NOW)
        assert "to the resolution at 00:40 UTC on 2024-07-21 (1 h 10 min)" in draft.impact

    def test_the_draft_reads_no_clock(self) -> None:
        """generated_at is the `now` passed in, whatever the wall clock says."""
        with freeze_time("2031-01-01 00:00:00"):
            draft = compile_draft(bare(), options=OPTIONS, now=NOW)
        assert draft.generated_at == NOW


def draft_of(evidence: IncidentEvidence | None = None) -> Draft:
    return compile_draft(evidence or bare(), options=OPTIONS, now=NOW)


class TestKeepEdits:
    def test_human_edits_survive_a_regeneration(self) -> None:
        """The regenerated draft keeps the previous edits and its own freshly computed sections."""
        previous = apply_edit(
            draft_of(bare()), section=EditableSection.IMPACT, text="Checkout failed for 12% of users."
        )
        regenerated = draft_of(sample())
        kept = keep_edits(previous=previous, regenerated=regenerated)
        assert kept.edits == {EditableSection.IMPACT: "Checkout failed for 12% of users."}
        assert (kept.summary, kept.metrics) == (regenerated.summary, regenerated.metrics)

    def test_the_previous_edit_wins_over_one_in_the_regenerated_draft(self) -> None:
        """Where both drafts hold an edit of a section, the person's earlier words are kept."""
        previous = apply_edit(draft_of(), section=EditableSection.SUMMARY, text="Ours.")
        regenerated = apply_edit(draft_of(), section=EditableSection.SUMMARY, text="Theirs.")
        regenerated = apply_edit(regenerated, section=EditableSection.LESSONS_LEARNED, text="Lessons.")
        kept = keep_edits(previous=previous, regenerated=regenerated)
        assert kept.edits == {EditableSection.SUMMARY: "Ours.", EditableSection.LESSONS_LEARNED: "Lessons."}

    def test_no_edits_stay_no_edits(self) -> None:
        """A draft nobody edited regenerates without edits."""
        assert keep_edits(previous=draft_of(), regenerated=draft_of(sample())).edits == {}


class TestApplyEdit:
    def test_an_edit_replaces_the_sections_text(self) -> None:
        """The edit is stored, trimmed, beside the untouched computed text; the input draft is unchanged."""
        draft = draft_of()
        edited = apply_edit(draft, section=EditableSection.SUMMARY, text="  A clearer summary.\n")
        assert edited.edits == {EditableSection.SUMMARY: "A clearer summary."}
        assert edited.summary == draft.summary
        assert draft.edits == {}

    def test_a_second_edit_of_a_section_replaces_the_first(self) -> None:
        """Editing a section again keeps only the latest text, other sections untouched."""
        draft = apply_edit(draft_of(), section=EditableSection.SUMMARY, text="First.")
        draft = apply_edit(draft, section=EditableSection.ACTION_ITEMS, text="- Ben: add a CI check")
        draft = apply_edit(draft, section=EditableSection.SUMMARY, text="Second.")
        assert draft.edits == {
            EditableSection.SUMMARY: "Second.",
            EditableSection.ACTION_ITEMS: "- Ben: add a CI check",
        }

    def test_blank_text_removes_the_edit(self) -> None:
        """Submitting an empty or blank section brings the computed text back."""
        draft = apply_edit(draft_of(), section=EditableSection.IMPACT, text="Edited.")
        assert apply_edit(draft, section=EditableSection.IMPACT, text="  \n").edits == {}
