"""A hand-built draft of the sample incident PD-9876 (bot/samples/pd-9876/STORY.md), a huge hostile one,
and the golden-file helper.

Golden files live in tests/render/golden/. After a deliberate change to a renderer or template,
regenerate them with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/render` and review the diff.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.analysis.models import (
    ActionItem,
    ActionItemType,
    Draft,
    EvidenceRef,
    Lessons,
    Metric,
    MetricName,
    Quote,
    Suspect,
)
from bot.render.options import RenderOptions
from bot.timeline.models import (
    Channel,
    Commit,
    Deployment,
    EventKind,
    Incident,
    Service,
    Source,
    Timeline,
    TimelineEvent,
)

GOLDEN = Path(__file__).parent / "golden"
INCIDENT_URL = "https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7"
CHANNEL_URL = "https://acme.slack.com/archives/C07INC9876"
BAD_SHA = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
GOOD_SHA = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
AUTH_SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2024, 7, 20, hour, minute, second, tzinfo=UTC)


def permalink(when: datetime) -> str:
    return f"{CHANNEL_URL}/p{int(when.timestamp())}000100"


def log_entry(entry_id: str) -> str:
    return f"{INCIDENT_URL}/log_entries/{entry_id}"


def chat(when: datetime, actor: str, text: str, **extra: object) -> TimelineEvent:
    kind = extra.pop("kind", EventKind.MESSAGE)
    return TimelineEvent(
        at=when,
        source=Source.SLACK,
        kind=kind,
        actor=actor,
        text=text,
        url=permalink(when),
        id=f"{int(when.timestamp())}.000100",
        **extra,
    )


def pd(when: datetime, kind: EventKind, text: str, entry_id: str, actor: str | None = None) -> TimelineEvent:
    return TimelineEvent(
        at=when,
        source=Source.PAGERDUTY,
        kind=kind,
        text=text,
        actor=actor,
        url=log_entry(entry_id),
        id=entry_id,
    )


def quote(event: TimelineEvent, text: str | None = None) -> Quote:
    return Quote(text=text or event.text, author=event.actor, at=event.at, url=event.url, pinned=event.pinned)


def build_draft() -> Draft:
    customer_api = Service(
        id="PSVC001", name="customer-api", url="https://acme.pagerduty.com/service-directory/PSVC001"
    )
    auth_service = Service(
        id="PSVC002", name="auth-service", url="https://acme.pagerduty.com/service-directory/PSVC002"
    )
    incident = Incident(
        id="Q1R2S3T4U5V6W7",
        number=9876,
        title="High severity API latency spikes in production",
        url=INCIDENT_URL,
        status="resolved",
        urgency="high",
        severity="SEV-1",
        created_at=at(10, 30),
        resolved_at=at(12, 15),
        services=(customer_api, auth_service),
        assignees=("Ana Lima",),
        acknowledgers=("Ana Lima",),
        escalation_policy="API Platform",
        slack_channel_id="C07INC9876",
        conference_url=CHANNEL_URL,
    )
    bad_deploy = Deployment(
        id=1003,
        repo="acme/customer-api",
        service="customer-api",
        sha=BAD_SHA,
        ref="main",
        environment="production",
        description="Deploy #482: DB client pool v2",
        creator="Ben Okafor",
        created_at=at(10, 12),
        status="inactive",
        status_at=at(11, 18),
        url=f"https://github.com/acme/customer-api/commit/{BAD_SHA}",
        commit_url=f"https://github.com/acme/customer-api/commit/{BAD_SHA}",
        commits=(
            Commit(
                sha=BAD_SHA,
                message="Use pool v2 for the orders DB client",
                author="Ben Okafor",
                url=f"https://github.com/acme/customer-api/commit/{BAD_SHA}",
                pull_request=482,
                pull_request_url="https://github.com/acme/customer-api/pull/482",
            ),
        ),
    )
    auth_deploy = Deployment(
        id=1002,
        repo="acme/auth-service",
        service="auth-service",
        sha=AUTH_SHA,
        ref="main",
        environment="production",
        description="Bump structlog to 24.2",
        created_at=at(9, 10),
        status="success",
        url=f"https://github.com/acme/auth-service/commit/{AUTH_SHA}",
        commit_url=f"https://github.com/acme/auth-service/commit/{AUTH_SHA}",
    )
    rollback = Deployment(
        id=1004,
        repo="acme/customer-api",
        service="customer-api",
        sha=GOOD_SHA,
        ref=GOOD_SHA,
        environment="production",
        description="Rollback to 7a6b5c4",
        creator="Ana Lima",
        created_at=at(11, 18),
        status="success",
        url=f"https://github.com/acme/customer-api/commit/{GOOD_SHA}",
        commit_url=f"https://github.com/acme/customer-api/commit/{GOOD_SHA}",
        rolls_back_to=GOOD_SHA,
    )

    alert = TimelineEvent(
        at=at(10, 30),
        source=Source.PAGERDUTY,
        kind=EventKind.ALERT,
        text="High API Latency: p99 > 2s on customer-api",
        url="https://acme.pagerduty.com/alerts/Q2ALERT0LATENCY",
        id="Q2ALERT0LATENCY",
        count=3,
        last_at=at(10, 35),
        details={"monitor": "High API Latency", "service": "customer-api"},
    )
    thread = chat(
        at(10, 50),
        "Ben Okafor",
        "p99 latency on customer-api is 4.2s and DB connection wait time is through the roof",
        replies=(chat(at(10, 52), "Carlos Mendes", "auth-service token checks are timing out too"),),
    )
    root_cause = chat(
        at(11, 10),
        "Ben Okafor",
        "root cause: pool size dropped from 50 to 5 in [#482](https://github.com/acme/customer-api/pull/482), "
        "requests queue for a connection under load",
        pinned=True,
    )
    mitigated = chat(at(11, 25), "Ana Lima", "error rate back to normal, mitigated", kind=EventKind.MITIGATED)
    items = [
        chat(
            at(11, 50),
            "Carlos Mendes",
            "action item: @Ben Okafor add a CI check that fails when the DB pool size drops below 20",
        ),
        chat(at(11, 52), "Ana Lima", "TODO: add a Datadog monitor on DB connection wait time"),
        chat(at(11, 55), "Dee Park", "we should be more careful"),
        chat(at(12, 0), "Ben Okafor", "follow-up: Carlos to document pool sizing in the runbook"),
    ]
    went_well = chat(at(12, 5), "Ana Lima", "went well: the rollback took 7 minutes")
    lucky = chat(at(12, 6), "Dee Park", "we got lucky: Saturday traffic was low")
    events = (
        TimelineEvent(
            at=at(9, 10),
            source=Source.GITHUB,
            kind=EventKind.DEPLOY,
            text="acme/auth-service: Bump structlog to 24.2 (a1b2c3d)",
            url=auth_deploy.url,
            id="1002",
            details={"sha": AUTH_SHA, "service": "auth-service"},
        ),
        TimelineEvent(
            at=at(10, 12),
            source=Source.GITHUB,
            kind=EventKind.DEPLOY,
            actor="Ben Okafor",
            text="acme/customer-api: Deploy #482: DB client pool v2 (9f8e7d6)",
            url=bad_deploy.url,
            id="1003",
            details={"sha": BAD_SHA, "service": "customer-api"},
        ),
        alert,
        pd(at(10, 30), EventKind.TRIGGERED, "Triggered through the Datadog integration", "R1TRIGGER00001"),
        pd(
            at(10, 30, 20),
            EventKind.NOTIFIED,
            "Notified Ana Lima by push and phone",
            "R1NOTIFY000001",
            "Ana Lima",
        ),
        pd(at(10, 34), EventKind.ACKNOWLEDGED, "Acknowledged by Ana Lima", "R1ACK000000001", "Ana Lima"),
        chat(
            at(10, 36), "Ana Lima", "@channel investigating high latency on customer-api, joining the bridge"
        ),
        pd(
            at(10, 45),
            EventKind.ESCALATED,
            "Escalated to level 2: Carlos Mendes (auth-service added)",
            "R1ESCALATE0001",
        ),
        thread,
        chat(
            at(10, 55),
            "Carlos Mendes",
            "@Ben Okafor could this be [PR #482](https://github.com/acme/customer-api/pull/482)?",
        ),
        pd(
            at(11, 0),
            EventKind.NOTE,
            "Suspect the connection pool change in customer-api deploy 1003",
            "R1NOTE00000001",
            "Ana Lima",
        ),
        chat(
            at(11, 5),
            "Dee Park",
            "repro: curl -H 'Authorization: Bearer [REDACTED]' https://api.acme.example/orders?limit=5&AWS_ACCESS_KEY_ID=[REDACTED]",
        ),
        root_cause,
        TimelineEvent(
            at=at(11, 18),
            source=Source.GITHUB,
            kind=EventKind.ROLLBACK,
            actor="Ana Lima",
            text="acme/customer-api: Rollback to 7a6b5c4 (7a6b5c4)",
            url=rollback.url,
            id="1004",
            details={"sha": GOOD_SHA, "service": "customer-api"},
        ),
        mitigated,
        chat(
            at(11, 30), "Carlos Mendes", "p99 is at 180ms again, keeping an eye on auth-service", edited=True
        ),
        *items,
        went_well,
        lucky,
        pd(at(12, 15), EventKind.RESOLVED, "Resolved by Ana Lima", "R1RESOLVE00001", "Ana Lima"),
        chat(at(12, 16), "Ana Lima", "Incident is resolved, all clear. Thanks all!"),
    )
    trigger_ref = EvidenceRef.of(events[3])
    return Draft(
        incident=incident,
        channel=Channel(id="C07INC9876", name="inc-9876-api-latency", url=CHANNEL_URL),
        generated_at=at(12, 20),
        timeline=Timeline(events=events, removed_noise=6),
        metrics=(
            Metric(
                name=MetricName.TIME_TO_DETECT,
                seconds=18 * 60,
                start=EvidenceRef.of(events[1]),
                end=EvidenceRef.of(alert),
            ),
            Metric(
                name=MetricName.TIME_TO_ACKNOWLEDGE,
                seconds=4 * 60,
                start=trigger_ref,
                end=EvidenceRef.of(events[5]),
            ),
            Metric(
                name=MetricName.TIME_TO_MITIGATE,
                seconds=55 * 60,
                start=trigger_ref,
                end=EvidenceRef.of(mitigated),
            ),
            Metric(
                name=MetricName.TIME_TO_RESOLVE,
                seconds=105 * 60,
                start=trigger_ref,
                end=EvidenceRef.of(events[-2]),
            ),
        ),
        suspects=(
            Suspect(
                deployment=bad_deploy,
                score=0.92,
                reasons=(
                    "deployed 18 min before the trigger",
                    "customer-api is an affected service",
                    "its pull request #482 was linked in the channel",
                    "rolled back during the incident",
                ),
                minutes_before_trigger=18,
            ),
            Suspect(
                deployment=auth_deploy,
                score=0.31,
                reasons=("deployed 80 min before the trigger", "auth-service is an affected service"),
                minutes_before_trigger=80,
            ),
        ),
        rollbacks=(rollback,),
        action_items=(
            ActionItem(
                text="add a CI check that fails when the DB pool size drops below 20",
                owner="Ben Okafor",
                owner_stated=True,
                type=ActionItemType.PREVENT,
                source=EvidenceRef.of(items[0]),
                author="Carlos Mendes",
            ),
            ActionItem(
                text="add a Datadog monitor on DB connection wait time",
                owner="Ana Lima",
                owner_stated=False,
                type=ActionItemType.DETECT,
                source=EvidenceRef.of(items[1]),
                author="Ana Lima",
                problems=("no owner stated",),
            ),
            ActionItem(
                text="we should be more careful",
                owner="Dee Park",
                owner_stated=False,
                source=EvidenceRef.of(items[2]),
                author="Dee Park",
                problems=("no owner stated", "not specific"),
            ),
            ActionItem(
                text="document pool sizing in the runbook",
                owner="Carlos Mendes",
                owner_stated=True,
                type=ActionItemType.PROCESS,
                source=EvidenceRef.of(items[3]),
                author="Ben Okafor",
            ),
        ),
        contributing_factors=(quote(root_cause),),
        lessons=Lessons(
            went_well=(quote(went_well, "the rollback took 7 minutes"),),
            lucky=(quote(lucky, "Saturday traffic was low"),),
        ),
        summary=(
            "On 2024-07-20 customer-api answered slowly (p99 above 2 s) for 55 min after a deploy shrank its "
            "database connection pool; auth-service token checks timed out too. Rolling the deploy back "
            "mitigated it, and the incident was resolved 1 h 45 min after the first alert."
        ),
        impact=(
            "From 10:30 to 11:25 UTC API requests to customer-api were slow (p99 up to 4.2 s) and some "
            "logins failed while auth-service token checks timed out."
        ),
        leadup="At 10:12 UTC deploy 1003 of acme/customer-api shipped PR #482, which moved the orders DB client to pool v2.",
        detection='The Datadog monitor "High API Latency" fired at 10:30 UTC, 18 min after the deploy; it paged Ana Lima.',
        response=(
            "Ana Lima acknowledged at 10:34 UTC, the incident escalated to Carlos Mendes at 10:45, the deploy "
            "was rolled back at 11:18 and the error rate was back to normal at 11:25."
        ),
        redactions={"bearer_token": 1, "aws_access_key_id": 1, "aws_secret_access_key": 1},
    )


@pytest.fixture
def draft() -> Draft:
    return build_draft()


@pytest.fixture
def options() -> RenderOptions:
    return RenderOptions(timezone="Europe/Berlin")


HOSTILE = (
    '<script>alert(1)</script> ]]> <ac:structured-macro ac:name="html"><ac:plain-text-body><![CDATA[x]]>'
    "</ac:plain-text-body></ac:structured-macro> &amp; & &#0; "
    + "".join(chr(c) for c in range(0x20))
    + " \u202e\u2066evil\u2069 zero\u200bwidth\u200d\ufeff <!channel> <!here> <@U02BEN> <#C07INC9876> "
    "<!subteam^S0123|@oncall> @channel @here @everyone \ud800 [x](javascript:alert(1)) \"'"
)


def build_huge_draft() -> Draft:
    """5,000 events with huge hostile texts, a 40 KB message, 200 action items, endless lists everywhere."""
    base = build_draft()
    start = at(10, 0)
    big = HOSTILE * 8 + "x" * 2000
    message_40k = ("@channel <script>&" + HOSTILE + "pool ") * 40
    message_40k = message_40k[: 40 * 1024]
    events = []
    for i in range(5000):
        kind = list(EventKind)[i % len(EventKind)]
        source = Source.SLACK if kind in (EventKind.MESSAGE, EventKind.MITIGATED) else Source.PAGERDUTY
        when = start + timedelta(seconds=37 * i)
        text = message_40k if i == 100 else f"{i} {big} [link {i}](https://example.com/{i}?a=1&b=<2>)"
        events.append(
            TimelineEvent(
                at=when,
                source=source,
                kind=kind,
                text=text,
                actor=HOSTILE[:200],
                url=f"https://example.com/e/{i}?q=<&>",
                id=str(i),
                pinned=i % 50 == 0,
                replies=(chat(when, HOSTILE, big),) if i % 500 == 0 else (),
            )
        )
    ref = EvidenceRef(at=start, text=big, url="https://example.com/?x=<&>")
    deployment = base.suspects[0].deployment.model_copy(
        update={"description": big, "repo": HOSTILE, "sha": HOSTILE}
    )
    return base.model_copy(
        update={
            "incident": base.incident.model_copy(
                update={
                    "title": HOSTILE * 4,
                    "severity": HOSTILE,
                    "services": tuple(Service(id=f"P{i}", name=f"svc-{i}-{HOSTILE}") for i in range(100)),
                    "acknowledgers": (HOSTILE,),
                }
            ),
            "timeline": Timeline(events=tuple(events), removed_noise=10_000),
            "metrics": tuple(Metric(name=name, seconds=10**9, start=ref, end=ref) for name in MetricName),
            "suspects": tuple(
                Suspect(deployment=deployment, score=0.5, reasons=(big,) * 30, minutes_before_trigger=5)
                for _ in range(40)
            ),
            "rollbacks": (deployment,) * 20,
            "action_items": tuple(
                ActionItem(
                    text=f"{i} {big}", owner=HOSTILE, owner_stated=False, source=ref, problems=(big,) * 5
                )
                for i in range(200)
            ),
            "contributing_factors": tuple(
                Quote(text=big, author=HOSTILE, at=start, url=ref.url) for _ in range(100)
            ),
            "lessons": Lessons(went_well=(Quote(text=message_40k, author=HOSTILE, at=start),) * 30),
            "summary": message_40k,
            "impact": big,
            "source_notes": tuple(f"{HOSTILE} source {i} failed" for i in range(60)),
            "redactions": {HOSTILE: 10**6},
        }
    )


@pytest.fixture(scope="session")
def huge_draft() -> Draft:
    return build_huge_draft()


def assert_golden(name: str, actual: str) -> None:
    """Compare with tests/render/golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"
    )


STORAGE_NAMESPACES = (
    'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
)


def parse_storage(xhtml: str) -> ET.Element:
    """Parse Confluence storage format as Confluence does: well-formed XML once the ac/ri prefixes are declared."""
    return ET.fromstring(f"<root {STORAGE_NAMESPACES}>{xhtml}</root>")
