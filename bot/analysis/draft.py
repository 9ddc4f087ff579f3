"""Evidence -> draft postmortem: redact, build the timeline, analyse, and write the sections from facts.

Every sentence of a section states something the evidence shows (a time, a name, a link target); what the
data cannot support reads `TO_BE_FILLED`, for the authors. Nothing is guessed: the top suspect is called
"the suspected trigger", never the cause. Times in the sections are UTC; renderers add local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.analysis.action_items import extract_action_items
from bot.analysis.cues import lessons, root_cause_quotes, states_any
from bot.analysis.metrics import compute_metrics, format_duration, resolved_ref, trigger_ref
from bot.analysis.models import (
    TO_BE_FILLED,
    Draft,
    DraftOptions,
    EditableSection,
    EvidenceRef,
    Metric,
    MetricName,
    Suspect,
)
from bot.analysis.redaction import redact_evidence
from bot.analysis.suspects import find_rollbacks, rank_suspects
from bot.timeline.build import build_timeline, recognise_rollbacks
from bot.timeline.models import (
    Commit,
    Deployment,
    EventKind,
    Incident,
    IncidentEvidence,
    Timeline,
    TimelineEvent,
)

_FIRED = re.compile(r"\s*\(fired \d+ times\)$")
_MAX_LISTED = 3


@dataclass(frozen=True)
class _Facts:
    """What the sections are written from, computed once."""

    incident: Incident
    timeline: Timeline
    day: date  # the trigger's date: clock times on another day carry their date
    trigger: EvidenceRef
    start: EvidenceRef  # the first sign of trouble: the first alert, else the trigger
    first_alert: TimelineEvent | None
    suspects: tuple[Suspect, ...]
    rollbacks: tuple[Deployment, ...]
    metrics: tuple[Metric, ...]
    resolved: EvidenceRef | None
    chat_mitigation: TimelineEvent | None

    def metric(self, name: MetricName) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def clock(self, at: datetime) -> str:
        at = at.astimezone(UTC)
        return f"{at:%H:%M} UTC" if at.date() == self.day else f"{at:%H:%M} UTC on {at:%Y-%m-%d}"


def compile_draft(evidence: IncidentEvidence, *, options: DraftOptions, now: datetime) -> Draft:
    """The draft postmortem of one incident, from its evidence. Secrets are redacted before anything else."""
    evidence, redactions = redact_evidence(evidence)
    timeline = build_timeline(evidence)
    deployments = recognise_rollbacks(evidence.deployments)
    incident = evidence.incident
    trigger = trigger_ref(timeline, incident)
    first_alert = timeline.first(EventKind.ALERT)
    # A deploy after the first sign of trouble cannot have started it, whichever came first: alert or trigger.
    cutoff = min(first_alert.at, trigger.at) if first_alert else trigger.at
    suspects = rank_suspects(
        deployments=deployments,
        incident=incident,
        trigger_at=cutoff,
        window=timedelta(hours=options.suspect_window_hours),
    )
    metrics = compute_metrics(timeline=timeline, incident=incident, suspects=suspects, options=options)
    chat_mitigation = next(
        (
            m
            for m in timeline.all_messages()
            if m.at >= trigger.at and states_any(m.text, options.mitigation_phrases)
        ),
        None,
    )
    facts = _Facts(
        incident=incident,
        timeline=timeline,
        day=cutoff.astimezone(UTC).date(),
        trigger=trigger,
        start=EvidenceRef.of(first_alert) if first_alert and first_alert.at < trigger.at else trigger,
        first_alert=first_alert,
        suspects=suspects,
        rollbacks=tuple(r for r in find_rollbacks(deployments) if r.created_at >= cutoff),
        metrics=metrics,
        resolved=resolved_ref(timeline, incident),
        chat_mitigation=chat_mitigation,
    )
    return Draft(
        incident=incident,
        channel=evidence.channel,
        generated_at=now,
        timeline=timeline,
        metrics=metrics,
        suspects=suspects,
        rollbacks=facts.rollbacks,
        action_items=extract_action_items(timeline),
        contributing_factors=root_cause_quotes(timeline),
        lessons=lessons(timeline),
        summary=_summary(facts),
        impact=_impact(facts),
        leadup=_leadup(facts),
        detection=_detection(facts),
        response=_response(facts),
        redactions=dict(redactions),
        source_notes=evidence.source_notes,
    )


def keep_edits(*, previous: Draft, regenerated: Draft) -> Draft:
    """The regenerated draft with the human edits of the previous one: people's words outlive a refresh."""
    return regenerated.model_copy(update={"edits": {**regenerated.edits, **previous.edits}})


def apply_edit(draft: Draft, *, section: EditableSection, text: str) -> Draft:
    """The draft with `section` rewritten as `text`; blank text removes the edit (the computed text returns)."""
    edits = {key: value for key, value in draft.edits.items() if key != section}
    if text.strip():
        edits[section] = text.strip()
    return draft.model_copy(update={"edits": edits})


# --- the sections -------------------------------------------------------------------------------


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _alert_name(event: TimelineEvent) -> str:
    return event.details.get("monitor") or _FIRED.sub("", event.text)


def _deploy_name(deployment: Deployment) -> str:
    name = f"{deployment.repo} {deployment.sha[:7]}"
    return f'{name} ("{deployment.description}")' if deployment.description else name


def _mitigation_ref(facts: _Facts) -> EvidenceRef | None:
    metric = facts.metric(MetricName.TIME_TO_MITIGATE)
    return metric.end if metric else None


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _how_mitigated(facts: _Facts) -> str | None:
    """'by rolling back acme/api to 7a6b5c4 at 11:18 UTC', 'at 11:25 UTC (Ana Lima: "mitigated")', or None."""
    end = _mitigation_ref(facts)
    if end is None:
        return None
    rollback = next((r for r in facts.rollbacks if r.created_at == end.at), None)
    if rollback is not None:
        target = (rollback.rolls_back_to or rollback.sha)[:7]
        return f"by rolling back {rollback.repo} to {target} at {facts.clock(end.at)}"
    said = next((e for e in facts.timeline.all_messages() if e.at == end.at and e.text == end.text), None)
    who = f"{said.actor}: " if said is not None and said.actor else ""
    return f"at {facts.clock(end.at)} ({who}\u201c{_shorten(end.text)}\u201d)"


def _summary(facts: _Facts) -> str:
    incident = facts.incident
    what = f"{incident.key}" + (f" ({incident.severity})" if incident.severity else "")
    services = [s.name for s in incident.services]
    first = f'{what}, "{incident.title}", began at {facts.clock(facts.start.at)} on {facts.day:%Y-%m-%d}'
    first += f" and affected {_join(services)}." if services else "."

    if facts.first_alert is not None:
        alert = facts.first_alert
        detected = f'It was detected by the alert "{_alert_name(alert)}" at {facts.clock(alert.at)}'
    else:
        detected = f"It was opened in PagerDuty at {facts.clock(facts.trigger.at)}"
    resolve = facts.metric(MetricName.TIME_TO_RESOLVE)
    if resolve is not None:
        detected += f" and resolved {format_duration(resolve.seconds)} after the trigger."
    elif incident.status != "resolved":
        detected += f"; it is still {incident.status}."
    else:
        detected += "."

    mitigated = _how_mitigated(facts)
    if facts.suspects:
        deploy = facts.suspects[0].deployment
        trigger = f"The suspected trigger is the deploy of {_deploy_name(deploy)} at {facts.clock(deploy.created_at)}"
        if mitigated:
            third = f"{trigger}; it was mitigated {mitigated}."
        else:
            third = f"{trigger}. How it was mitigated: {TO_BE_FILLED}"
    elif mitigated:
        third = f"It was mitigated {mitigated}. The trigger: {TO_BE_FILLED}"
    else:
        third = f"The trigger and how it was mitigated: {TO_BE_FILLED}"
    return " ".join((first, detected, third))


def _impact(facts: _Facts) -> str:
    start = facts.start
    alert = facts.first_alert is not None and facts.first_alert.at == start.at
    label = "the first alert" if alert else "the trigger"
    mitigation, resolved = _mitigation_ref(facts), facts.resolved
    end = mitigation or resolved
    parts = []
    if end is not None and end.at >= start.at:
        how = "mitigation" if mitigation else "resolution"
        window = f"From {label} at {facts.clock(start.at)} to the {how} at {facts.clock(end.at)}"
        parts.append(f"{window} ({format_duration((end.at - start.at).total_seconds())}).")
        if mitigation and resolved and resolved.at > mitigation.at:
            parts.append(f"The incident was resolved at {facts.clock(resolved.at)}.")
    else:
        parts.append(f"From {label} at {facts.clock(start.at)}; its end: {TO_BE_FILLED}")
    services = [s.name for s in facts.incident.services]
    parts.append(f"Services: {', '.join(services)}." if services else f"Services: {TO_BE_FILLED}")
    parts.append(f"Customer-facing effect: {TO_BE_FILLED}")
    return " ".join(parts)


def _leadup(facts: _Facts) -> str:
    if not facts.suspects:
        return TO_BE_FILLED
    top = facts.suspects[0]
    deploy = top.deployment
    parts = [
        f"The suspected trigger is deploy {deploy.id} of {_deploy_name(deploy)} to {deploy.environment} "
        f"at {facts.clock(deploy.created_at)}: {'; '.join(top.reasons)}."
    ]
    shipped = [_commit_name(c) for c in deploy.commits[:_MAX_LISTED]]
    if shipped:
        more = len(deploy.commits) - _MAX_LISTED
        parts.append(f"It shipped {_join(shipped + ([f'{more} more'] if more > 0 else []))}.")
    others = [
        f"{_deploy_name(s.deployment)} at {facts.clock(s.deployment.created_at)}" for s in facts.suspects[1:]
    ]
    if others:
        listed = others[:_MAX_LISTED] + (
            [f"{len(others) - _MAX_LISTED} more"] if len(others) > _MAX_LISTED else []
        )
        parts.append(f"Other deploys before the trigger: {_join(listed)}.")
    return " ".join(parts)


def _commit_name(commit: Commit) -> str:
    """'PR #482 "Use pool v2 for the orders DB client"' (GitHub's " (#482)" suffix dropped), else the short sha."""
    title = commit.message.splitlines()[0].strip() if commit.message.strip() else ""
    if commit.pull_request:
        title = title.removesuffix(f"(#{commit.pull_request})").rstrip()
        return f'PR #{commit.pull_request} "{title}"' if title else f"PR #{commit.pull_request}"
    return f'{commit.sha[:7]} "{title}"' if title else commit.sha[:7]


def _detection(facts: _Facts) -> str:
    parts = []
    alert = facts.first_alert
    if alert is not None:
        first = f'The first alert was "{_alert_name(alert)}" at {facts.clock(alert.at)}'
        if alert.count > 1 and alert.last_at is not None:
            first += f" (fired {alert.count} times, last at {facts.clock(alert.last_at)})"
        parts.append(first + ".")
    else:
        triggered = facts.timeline.first(EventKind.TRIGGERED)
        said = f": \u201c{triggered.text}\u201d" if triggered else ""
        parts.append(f"PagerDuty opened the incident at {facts.clock(facts.trigger.at)}{said}.")
        parts.append(f"How it was noticed: {TO_BE_FILLED}")
    detect = facts.metric(MetricName.TIME_TO_DETECT)
    if detect is not None:
        parts.append(f"Time to detect: {format_duration(detect.seconds)} after the suspected deploy.")
    else:
        parts.append(f"Time to detect: {TO_BE_FILLED}")
    return " ".join(parts)


def _response(facts: _Facts) -> str:
    parts = []
    ack = facts.metric(MetricName.TIME_TO_ACKNOWLEDGE)
    ack_event = facts.timeline.first(EventKind.ACKNOWLEDGED)
    if ack is not None and ack_event is not None:
        who = f"{ack_event.actor} acknowledged" if ack_event.actor else "Acknowledged"
        parts.append(f"{who} at {facts.clock(ack.end.at)}, {format_duration(ack.seconds)} after the trigger.")
    escalations = facts.timeline.of_kind(EventKind.ESCALATED)
    for event in escalations[:_MAX_LISTED]:
        parts.append(f"At {facts.clock(event.at)}: {event.text.rstrip('.')}.")
    for rollback in facts.rollbacks[:_MAX_LISTED]:
        target = (rollback.rolls_back_to or rollback.sha)[:7]
        parts.append(
            f"{rollback.repo} was rolled back to {target} at {facts.clock(rollback.created_at)} "
            f"(deploy {rollback.id}, {rollback.status})."
        )
    if facts.chat_mitigation is not None:
        message = facts.chat_mitigation
        who = f"{message.actor} reported" if message.actor else "Reported in the channel"
        parts.append(f"{who} at {facts.clock(message.at)}: \u201c{message.text}\u201d")
    if facts.resolved is not None:
        resolved_event = facts.timeline.first(EventKind.RESOLVED)
        by = f" by {resolved_event.actor}" if resolved_event and resolved_event.actor else ""
        resolve = facts.metric(MetricName.TIME_TO_RESOLVE)
        after = f", {format_duration(resolve.seconds)} after the trigger" if resolve else ""
        parts.append(f"Resolved at {facts.clock(facts.resolved.at)}{by}{after}.")
    elif facts.incident.status != "resolved":
        parts.append(f"The incident is still {facts.incident.status}.")
    return " ".join(parts) if parts else TO_BE_FILLED
