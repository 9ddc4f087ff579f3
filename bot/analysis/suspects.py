"""Which deploys before the trigger may have started the incident, ranked, each with its reasons.

The score adds up independent signals, strongest first:

* rolled back later (1.5): someone already judged this deploy bad;
* same service as the incident (1.0);
* a failed or errored deploy (0.75);
* closeness to the trigger (0..1, linear over the window).

A suspect is never "the cause": the draft calls the top one the suspected trigger, with its reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.analysis.models import Suspect
from bot.timeline.models import Deployment, Incident

ROLLED_BACK_WEIGHT = 1.5
SAME_SERVICE_WEIGHT = 1.0
FAILED_WEIGHT = 0.75
FAILED_STATES = frozenset({"failure", "error"})
# GitHub marks the previous deploy inactive when the next one succeeds; this close to a rollback,
# "inactive" means the rollback replaced it.
INACTIVE_TOLERANCE = timedelta(minutes=5)


def find_rollbacks(deployments: Sequence[Deployment]) -> tuple[Deployment, ...]:
    """The deploys that restore an earlier sha (marked by the timeline build), oldest first."""
    return tuple(sorted((d for d in deployments if d.is_rollback), key=lambda d: (d.created_at, d.id)))


def _rolled_back_by(deployment: Deployment, deployments: Sequence[Deployment]) -> Deployment | None:
    """The first later rollback in the same repo that undid `deployment`, if any.

    A rollback undoes it when it restores a sha older than it: neither its own sha nor that of any deploy
    between it and the rollback. Or, failing that evidence, when the deploy turned inactive right as a
    rollback happened.
    """
    same_repo = [d for d in deployments if d.repo == deployment.repo and d.id != deployment.id]
    for rollback in find_rollbacks(same_repo):
        if rollback.created_at <= deployment.created_at or rollback.rolls_back_to == deployment.sha:
            continue
        since = [
            d.sha
            for d in same_repo
            if deployment.created_at < d.created_at < rollback.created_at and not d.is_rollback
        ]
        if rollback.rolls_back_to not in since:
            return rollback
        if deployment.status == "inactive" and deployment.status_at is not None:
            moments = [rollback.created_at] + ([rollback.status_at] if rollback.status_at else [])
            if any(abs(deployment.status_at - moment) <= INACTIVE_TOLERANCE for moment in moments):
                return rollback
    return None


def _before(minutes: int) -> str:
    if minutes < 1:
        return "deployed less than a minute before the trigger"
    if minutes < 60:
        return f"deployed {minutes} min before the trigger"
    hours, rest = divmod(minutes, 60)
    return (
        f"deployed {hours} h {rest} min before the trigger"
        if rest
        else f"deployed {hours} h before the trigger"
    )


def _score(
    deployment: Deployment,
    *,
    deployments: Sequence[Deployment],
    services: set[str],
    trigger_at: datetime,
    window: timedelta,
) -> Suspect:
    gap = trigger_at - deployment.created_at
    minutes = int(gap.total_seconds() // 60)
    score = max(0.0, 1.0 - gap / window)
    reasons = [_before(minutes)]
    if deployment.service and deployment.service in services:
        score += SAME_SERVICE_WEIGHT
        reasons.append(f"same service: {deployment.service}")
    if deployment.status in FAILED_STATES:
        score += FAILED_WEIGHT
        reasons.append(f"deploy status: {deployment.status}")
    rollback = _rolled_back_by(deployment, deployments)
    if rollback is not None:
        score += ROLLED_BACK_WEIGHT
        reasons.append(f"rolled back at {rollback.created_at.astimezone(UTC):%H:%M} UTC")
    return Suspect(
        deployment=deployment, score=round(score, 3), reasons=tuple(reasons), minutes_before_trigger=minutes
    )


def rank_suspects(
    *, deployments: Sequence[Deployment], incident: Incident, trigger_at: datetime, window: timedelta
) -> tuple[Suspect, ...]:
    """Deploys created in [trigger_at - window, trigger_at), rollbacks excluded, highest score first.

    Deploys at or after the trigger are never suspects, whatever else they have going for them.
    """
    services = {s.name for s in incident.services}
    suspects = [
        _score(d, deployments=deployments, services=services, trigger_at=trigger_at, window=window)
        for d in deployments
        if trigger_at - window <= d.created_at < trigger_at and not d.is_rollback
    ]
    # Ties: the later deploy (closer to the trigger) first, then a stable id order.
    suspects.sort(key=lambda s: (-s.score, s.minutes_before_trigger, s.deployment.id))
    return tuple(suspects)
