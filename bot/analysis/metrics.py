"""Key metrics: durations between two events of the timeline, each linked to both. Never typed in.

* time to detect: the top suspect deploy -> the first alert (or trigger), only when the deploy came first;
* time to acknowledge: the trigger -> the first acknowledgement;
* time to mitigate: the trigger -> the first rollback or chat message saying it is mitigated;
* time to resolve: the trigger -> the first resolution.

"The trigger" is the first TRIGGERED event, else the incident's creation. A metric whose end is unknown,
or precedes its start, is left out rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.analysis.cues import mitigation_event
from bot.analysis.models import DraftOptions, EvidenceRef, Metric, MetricName, Suspect
from bot.timeline.models import Deployment, EventKind, Incident, Timeline


def format_duration(seconds: float) -> str:
    """'1 h 45 min', '18 min', '40 s', '2 d 3 h' (rounded down)."""
    total = int(seconds)
    if total < 60:
        return f"{total} s"
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 3600:
        return f"{minutes} min"
    if total < 86400:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def trigger_ref(timeline: Timeline, incident: Incident) -> EvidenceRef:
    """Where the response clock starts: the first TRIGGERED event, else the incident's creation."""
    triggered = timeline.first(EventKind.TRIGGERED)
    if triggered is not None:
        return EvidenceRef.of(triggered)
    return EvidenceRef(at=incident.created_at, text=f"{incident.key} created", url=incident.url)


def resolved_ref(timeline: Timeline, incident: Incident) -> EvidenceRef | None:
    """The first RESOLVED event, else the incident's `resolved_at`, else None (still open)."""
    resolved = timeline.first(EventKind.RESOLVED)
    if resolved is not None:
        return EvidenceRef.of(resolved)
    if incident.resolved_at is not None:
        return EvidenceRef(at=incident.resolved_at, text=f"{incident.key} resolved", url=incident.url)
    return None


def deploy_ref(timeline: Timeline, deployment: Deployment) -> EvidenceRef:
    """The timeline's event for `deployment`, else one made from the deployment itself."""
    kinds = (EventKind.DEPLOY, EventKind.ROLLBACK)
    event = next((e for e in timeline.of_kind(*kinds) if e.id == str(deployment.id)), None)
    if event is not None:
        return EvidenceRef.of(event)
    text = f"Deployed {deployment.repo} {deployment.sha[:7]} to {deployment.environment}"
    if deployment.description:
        text += f": {deployment.description}"
    return EvidenceRef(at=deployment.created_at, text=text, url=deployment.url)


def _metric(name: MetricName, start: EvidenceRef, end: EvidenceRef | None) -> Metric | None:
    if end is None or end.at < start.at:
        return None
    return Metric(name=name, seconds=int((end.at - start.at).total_seconds()), start=start, end=end)


def compute_metrics(
    *, timeline: Timeline, incident: Incident, suspects: Sequence[Suspect], options: DraftOptions
) -> tuple[Metric, ...]:
    """The metrics the data supports, in the order of an incident's life: detect, acknowledge, mitigate, resolve."""
    trigger = trigger_ref(timeline, incident)
    metrics: list[Metric | None] = []

    first_signal = timeline.first(EventKind.ALERT, EventKind.TRIGGERED)
    if suspects and first_signal is not None:
        suspect = deploy_ref(timeline, suspects[0].deployment)
        # Only a change that precedes the first alert can have been "detected" by it.
        if suspect.at < first_signal.at:
            metrics.append(_metric(MetricName.TIME_TO_DETECT, suspect, EvidenceRef.of(first_signal)))

    acknowledged = timeline.first(EventKind.ACKNOWLEDGED)
    metrics.append(
        _metric(
            MetricName.TIME_TO_ACKNOWLEDGE, trigger, EvidenceRef.of(acknowledged) if acknowledged else None
        )
    )

    mitigated = mitigation_event(timeline, after=trigger.at, phrases=options.mitigation_phrases)
    metrics.append(
        _metric(MetricName.TIME_TO_MITIGATE, trigger, EvidenceRef.of(mitigated) if mitigated else None)
    )

    metrics.append(_metric(MetricName.TIME_TO_RESOLVE, trigger, resolved_ref(timeline, incident)))
    return tuple(m for m in metrics if m is not None)
