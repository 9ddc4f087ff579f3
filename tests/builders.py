"""Timeline models built around the sample incident PD-9876, for the tests of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.timeline.models import Deployment, Incident

T0 = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)  # PD-9876's first alert and trigger
INCIDENT_ID = "Q1R2S3T4U5V6W7"
INCIDENT_URL = f"https://acme.pagerduty.com/incidents/{INCIDENT_ID}"


def at(minutes: float) -> datetime:
    """`minutes` after (or before, when negative) the trigger."""
    return T0 + timedelta(minutes=minutes)


def incident(**fields: object) -> Incident:
    """PD-9876, resolved, with nothing else known; `fields` add to or override that."""
    values: dict[str, object] = {
        "id": INCIDENT_ID,
        "number": 9876,
        "title": "High severity API latency spikes in production",
        "url": INCIDENT_URL,
        "status": "resolved",
        "created_at": T0,
    }
    values.update(fields)
    return Incident.model_validate(values)


def deploy(
    id: int, minutes: float, sha: str, *, service: str = "customer-api", **fields: object
) -> Deployment:
    """A successful production deployment of acme/`service`, `minutes` after the trigger."""
    values: dict[str, object] = {
        "id": id,
        "repo": f"acme/{service}",
        "service": service,
        "sha": sha,
        "ref": sha[:7],
        "environment": "production",
        "created_at": at(minutes),
        "status": "success",
        "url": f"https://github.com/acme/{service}/deployments/{id}",
    }
    values.update(fields)
    return Deployment.model_validate(values)
