from __future__ import annotations

import pytest

from bot.analysis.metrics import compute_metrics, format_duration
from bot.analysis.models import DraftOptions, EvidenceRef, Metric, MetricName, Suspect
from bot.timeline.models import Deployment, EventKind, Source, Timeline, TimelineEvent
from tests.builders import INCIDENT_URL, at, incident

OPTIONS = DraftOptions()


def pd(minutes: float, kind: EventKind, text: str = "", **fields: object) -> TimelineEvent:
    values: dict[str, object] = {
        "at": at(minutes),
        "source": Source.PAGERDUTY,
        "kind": kind,
        "text": text or kind.value.capitalize(),
        "url": f"{INCIDENT_URL}/log_entries/R{kind.value.upper()}{int(minutes * 60)}",
    }
    values.update(fields)
    return TimelineEvent.model_validate(values)


def chat(minutes: float, text: str) -> TimelineEvent:
    return TimelineEvent(
        at=at(minutes),
        source=Source.SLACK,
        kind=EventKind.MESSAGE,
        text=text,
        actor="Ana Lima",
        url=f"https://acme.slack.com/archives/C07INC9876/p{int(at(minutes).timestamp())}000100",
    )


def suspect(minutes: float, *, id: int = 1003) -> Suspect:
    deployment = Deployment(
        id=id,
        repo="acme/customer-api",
        service="customer-api",
        sha="9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        ref="9f8e7d6",
        environment="production",
        description="Deploy #482: DB client pool v2",
        created_at=at(minutes),
        url=f"https://github.com/acme/customer-api/deployments/{id}",
    )
    return Suspect(
        deployment=deployment,
        score=3.0,
        reasons=("deployed 18 min before the trigger",),
        minutes_before_trigger=18,
    )


def deploy_event(minutes: float, *, id: int = 1003, kind: EventKind = EventKind.DEPLOY) -> TimelineEvent:
    return TimelineEvent(
        at=at(minutes),
        source=Source.GITHUB,
        kind=kind,
        text=f"Deployed acme/customer-api 9f8e7d6 to production (deploy {id})",
        url=f"https://github.com/acme/customer-api/deployments/{id}/log",
        id=str(id),
    )


def metrics(
    *events: TimelineEvent,
    suspects: tuple[Suspect, ...] = (),
    options: DraftOptions = OPTIONS,
    **incident_fields: object,
) -> dict[MetricName, Metric]:
    timeline = Timeline(events=tuple(sorted(events, key=lambda e: e.at)))
    found = compute_metrics(
        timeline=timeline, incident=incident(**incident_fields), suspects=suspects, options=options
    )
    return {m.name: m for m in found}


class TestComputeMetrics:
    def test_time_to_acknowledge_runs_from_trigger_to_first_ack(self) -> None:
        """Acknowledge: the first TRIGGERED -> the first ACKNOWLEDGED, both linked."""
        trigger, ack = pd(0, EventKind.TRIGGERED), pd(4, EventKind.ACKNOWLEDGED, actor="Ana Lima")
        metric = metrics(trigger, ack, pd(9, EventKind.ACKNOWLEDGED))[MetricName.TIME_TO_ACKNOWLEDGE]
        assert metric.seconds == 240
        assert (metric.start, metric.end) == (EvidenceRef.of(trigger), EvidenceRef.of(ack))

    def test_without_a_trigger_event_the_incidents_creation_starts_the_clock(self) -> None:
        """No TRIGGERED event: the incident's created_at (linked to the incident) is the start."""
        metric = metrics(pd(3, EventKind.ACKNOWLEDGED), created_at=at(-1))[MetricName.TIME_TO_ACKNOWLEDGE]
        assert metric.seconds == 240
        assert metric.start == EvidenceRef(at=at(-1), text="PD-9876 created", url=INCIDENT_URL)

    def test_no_acknowledgement_means_no_metric(self) -> None:
        """Without an ACKNOWLEDGED event there is no time to acknowledge."""
        assert MetricName.TIME_TO_ACKNOWLEDGE not in metrics(pd(0, EventKind.TRIGGERED))

    def test_an_end_before_the_start_means_no_metric(self) -> None:
        """An acknowledgement stamped before the trigger gives no (negative) metric."""
        assert MetricName.TIME_TO_ACKNOWLEDGE not in metrics(
            pd(-2, EventKind.ACKNOWLEDGED), pd(0, EventKind.TRIGGERED)
        )

    def test_time_to_resolve_uses_the_first_resolved_event(self) -> None:
        """Resolve: trigger -> the first RESOLVED event, linked to its log entry."""
        resolved = pd(105, EventKind.RESOLVED)
        metric = metrics(pd(0, EventKind.TRIGGERED), resolved, resolved_at=at(200))[
            MetricName.TIME_TO_RESOLVE
        ]
        assert metric.seconds == 105 * 60
        assert metric.end == EvidenceRef.of(resolved)

    def test_time_to_resolve_falls_back_to_the_incidents_resolved_at(self) -> None:
        """Without a RESOLVED event the incident's resolved_at ends the clock, linked to the incident."""
        metric = metrics(pd(0, EventKind.TRIGGERED), resolved_at=at(105))[MetricName.TIME_TO_RESOLVE]
        assert metric.seconds == 105 * 60
        assert metric.end == EvidenceRef(at=at(105), text="PD-9876 resolved", url=INCIDENT_URL)

    def test_an_open_incident_has_no_time_to_resolve(self) -> None:
        """No RESOLVED event and no resolved_at: nothing to compute."""
        assert MetricName.TIME_TO_RESOLVE not in metrics(pd(0, EventKind.TRIGGERED), status="acknowledged")

    def test_time_to_detect_runs_from_the_top_suspect_to_the_first_alert(self) -> None:
        """Detect: the top suspect's deploy event -> the first ALERT, with the deploy's own link."""
        deploy, alert = deploy_event(-18), pd(0, EventKind.ALERT, "High API Latency")
        metric = metrics(deploy, alert, pd(0.1, EventKind.TRIGGERED), suspects=(suspect(-18),))[
            MetricName.TIME_TO_DETECT
        ]
        assert metric.seconds == 18 * 60
        assert (metric.start, metric.end) == (EvidenceRef.of(deploy), EvidenceRef.of(alert))

    def test_time_to_detect_links_the_deployment_when_the_timeline_lacks_its_event(self) -> None:
        """A suspect without a deploy event in the timeline is linked through the deployment itself."""
        metric = metrics(pd(0, EventKind.TRIGGERED), suspects=(suspect(-18),))[MetricName.TIME_TO_DETECT]
        assert metric.start.url == "https://github.com/acme/customer-api/deployments/1003"
        assert metric.start.at == at(-18)

    def test_no_suspect_means_no_time_to_detect(self) -> None:
        """Without a suspect change there is nothing to detect from."""
        assert MetricName.TIME_TO_DETECT not in metrics(pd(0, EventKind.ALERT), pd(0, EventKind.TRIGGERED))

    def test_a_suspect_after_the_first_alert_gives_no_time_to_detect(self) -> None:
        """An alert that fired before the suspect deploy did not detect it."""
        found = metrics(
            pd(-30, EventKind.ALERT), deploy_event(-18), pd(0, EventKind.TRIGGERED), suspects=(suspect(-18),)
        )
        assert MetricName.TIME_TO_DETECT not in found

    def test_time_to_mitigate_ends_at_a_rollback(self) -> None:
        """Mitigate: trigger -> the first ROLLBACK deploy after it."""
        rollback = deploy_event(48, id=1004, kind=EventKind.ROLLBACK)
        metric = metrics(pd(0, EventKind.TRIGGERED), rollback, chat(55, "mitigated"))[
            MetricName.TIME_TO_MITIGATE
        ]
        assert metric.seconds == 48 * 60
        assert metric.end == EvidenceRef.of(rollback)

    def test_time_to_mitigate_ends_at_a_chat_cue(self) -> None:
        """A chat message stating a mitigation phrase ends the clock when it comes first."""
        cue = chat(55, "error rate back to normal, mitigated")
        metric = metrics(pd(0, EventKind.TRIGGERED), cue)[MetricName.TIME_TO_MITIGATE]
        assert (metric.seconds, metric.end.url) == (55 * 60, cue.url)

    @pytest.mark.parametrize("text", ["not mitigated yet", "is it mitigated?", "isn't mitigated"])
    def test_an_unstated_cue_gives_no_time_to_mitigate(self, text: str) -> None:
        """Negated or asked cues are no mitigation, so no metric."""
        assert MetricName.TIME_TO_MITIGATE not in metrics(pd(0, EventKind.TRIGGERED), chat(30, text))

    def test_mitigation_phrases_come_from_the_options(self) -> None:
        """The cue phrases are the options', matched case-insensitively on whole words."""
        options = DraftOptions(mitigation_phrases=("failover complete",))
        found = metrics(
            pd(0, EventKind.TRIGGERED), chat(20, "mitigated"), chat(30, "Failover COMPLETE"), options=options
        )
        assert found[MetricName.TIME_TO_MITIGATE].seconds == 30 * 60

    def test_metrics_come_in_the_order_of_an_incidents_life(self) -> None:
        """Detect, acknowledge, mitigate, resolve."""
        timeline = Timeline(
            events=(
                deploy_event(-18),
                pd(0, EventKind.ALERT),
                pd(0, EventKind.TRIGGERED),
                pd(4, EventKind.ACKNOWLEDGED),
                deploy_event(48, id=1004, kind=EventKind.ROLLBACK),
                pd(105, EventKind.RESOLVED),
            )
        )
        found = compute_metrics(
            timeline=timeline, incident=incident(), suspects=(suspect(-18),), options=OPTIONS
        )
        assert [m.name for m in found] == [
            MetricName.TIME_TO_DETECT,
            MetricName.TIME_TO_ACKNOWLEDGE,
            MetricName.TIME_TO_MITIGATE,
            MetricName.TIME_TO_RESOLVE,
        ]


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (40, "40 s"),
            (240, "4 min"),
            (3600, "1 h"),
            (6300, "1 h 45 min"),
            (86400 + 3 * 3600, "1 d 3 h"),
            (2 * 86400, "2 d"),
        ],
    )
    def test_durations_read_as_people_say_them(self, seconds: int, text: str) -> None:
        """Seconds, minutes, hours and days, rounded down."""
        assert format_duration(seconds) == text
