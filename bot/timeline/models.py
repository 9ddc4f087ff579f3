"""The typed facts everything else is computed from.

Two kinds of value live here:

* *Evidence*: what the sources fetched, already mapped from the vendors' JSON into typed records
  (`Incident`, `Deployment`, `ChatMessage`, PagerDuty `TimelineEvent`s) and bundled as `IncidentEvidence`.
* *Timeline*: the merged, ordered, de-noised `TimelineEvent`s built from that evidence (see `build.py`).

All values are frozen pydantic models: immutable, typed, and serialisable to JSON for the store and the CLI.
Times are timezone-aware UTC everywhere; Slack `ts` strings stay strings when they are ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class Source(StrEnum):
    PAGERDUTY = "pagerduty"
    GITHUB = "github"
    SLACK = "slack"


class EventKind(StrEnum):
    ALERT = "alert"  # a monitoring alert (Datadog, ...) attached to the incident
    TRIGGERED = "triggered"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    PRIORITY = "priority"  # priority or urgency changed
    NOTE = "note"  # a PagerDuty note / annotate log entry
    STATUS_UPDATE = "status_update"
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    MESSAGE = "message"  # a chat message (thread replies hang off their parent)
    MITIGATED = "mitigated"  # a chat message that says the impact is mitigated
    RESOLVED = "resolved"


class Service(Frozen):
    id: str
    name: str
    url: str | None = None


class Incident(Frozen):
    """A PagerDuty incident, as `GET /incidents/{id}` describes it."""

    id: str  # PagerDuty's id, e.g. "Q1ABCD2EFGH3IJ"
    number: int  # 9876 -> shown as "PD-9876"
    title: str
    url: str  # html_url
    status: str  # triggered | acknowledged | resolved
    urgency: str | None = None
    severity: str | None = None  # the priority name ("SEV-1", "P1"), when the account uses priorities
    created_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    services: tuple[Service, ...] = ()
    assignees: tuple[str, ...] = ()  # names
    acknowledgers: tuple[str, ...] = ()  # names, first acknowledger first
    escalation_policy: str | None = None
    teams: tuple[str, ...] = ()
    # Where the incident points to its Slack channel, when it does (conference bridge URL or a Slack link).
    slack_channel_id: str | None = None
    conference_url: str | None = None

    _utc = field_validator("created_at", "resolved_at")(lambda v: None if v is None else _to_utc(v))

    @property
    def key(self) -> str:
        return f"PD-{self.number}"

    @property
    def commander(self) -> str | None:
        """The incident commander: the first acknowledger, else the first assignee."""
        if self.acknowledgers:
            return self.acknowledgers[0]
        return self.assignees[0] if self.assignees else None


class Commit(Frozen):
    sha: str
    message: str
    author: str | None = None
    url: str | None = None
    pull_request: int | None = None
    pull_request_url: str | None = None
    pull_request_title: str | None = None  # the PR's title, when the source fetched it


class Deployment(Frozen):
    """A GitHub deployment of one repo to one environment, with its latest status."""

    id: int
    repo: str  # "acme/customer-api"
    service: str | None = None  # the PagerDuty service name the repo belongs to
    sha: str
    ref: str
    environment: str
    description: str = ""
    creator: str | None = None
    created_at: AwareDatetime
    status: str = (
        "unknown"  # latest status state: success, failure, error, inactive, in_progress, queued, pending
    )
    status_at: AwareDatetime | None = None
    url: str  # evidence link: the status's log/target URL, else the commit URL
    commit_url: str | None = None
    # Filled by the timeline build: the sha of the earlier deploy this one restores (a rollback).
    rolls_back_to: str | None = None
    # The commits this deploy shipped since the previous successful one (compare), when fetched.
    commits: tuple[Commit, ...] = ()

    _utc = field_validator("created_at", "status_at")(lambda v: None if v is None else _to_utc(v))

    @property
    def is_rollback(self) -> bool:
        return self.rolls_back_to is not None


class ChatMessage(Frozen):
    """One Slack message as `conversations.history` / `conversations.replies` return it, typed.

    `text` is still Slack markup; the timeline build turns it into readable text.
    """

    ts: str  # Slack's id for the message, "1721471400.000100"
    channel_id: str
    user_id: str | None = None
    bot_id: str | None = None
    subtype: str | None = None  # channel_join, bot_message, ...
    text: str = ""
    thread_ts: str | None = None  # set on a parent (== ts) and on its replies
    reply_count: int = 0
    edited: bool = False
    pinned: bool = False
    permalink: str | None = None
    reactions: tuple[str, ...] = ()
    # Secrets already taken out of `text` before it reached the evidence (a captured message is stored
    # redacted), kind -> count: the draft's redaction count includes them.
    redactions: dict[str, int] = Field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return slack_ts_to_datetime(self.ts)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


class Channel(Frozen):
    id: str
    name: str | None = None
    url: str | None = None  # https://WORKSPACE.slack.com/archives/C...


class IncidentEvidence(Frozen):
    """Everything the sources fetched for one incident: the input of `build_timeline` and the analysis."""

    incident: Incident
    # Log entries, alerts and notes, already mapped to events by the PagerDuty mapping.
    pagerduty_events: tuple[TimelineEvent, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    channel: Channel | None = None
    messages: tuple[ChatMessage, ...] = ()  # parents and replies, any order
    users: dict[str, str] = Field(default_factory=dict)  # Slack user id -> display name
    channels: dict[str, str] = Field(default_factory=dict)  # Slack channel id -> name, for <#C…> markup
    bot_user_id: str | None = None  # the bot's own Slack user: its messages are noise
    # One line per source that failed: "GitHub was unreachable: 503 Service Unavailable".
    source_notes: tuple[str, ...] = ()


class TimelineEvent(Frozen):
    """One fact in the timeline, with the link back to its evidence."""

    at: AwareDatetime
    source: Source
    kind: EventKind
    text: str
    actor: str | None = None
    url: str | None = (
        None  # Slack permalink, PagerDuty log entry / incident URL, GitHub deployment or commit URL
    )
    id: str = ""  # the source's id: log entry id, alert id, Slack ts, deployment id
    count: int = 1  # > 1 when duplicate alerts were collapsed: "fired N times"
    last_at: AwareDatetime | None = None  # the last of the collapsed duplicates
    pinned: bool = False
    edited: bool = False
    replies: tuple[TimelineEvent, ...] = ()  # a thread's replies, in order, under their parent
    details: dict[str, str] = Field(default_factory=dict)  # service, sha, monitor, query, status, ...

    _utc = field_validator("at", "last_at")(lambda v: None if v is None else _to_utc(v))


class Timeline(Frozen):
    """The merged, ordered, de-noised events of one incident."""

    events: tuple[TimelineEvent, ...] = ()
    removed_noise: int = 0  # joins, bot messages, emoji-only replies, duplicate alerts folded away

    def of_kind(self, *kinds: EventKind) -> tuple[TimelineEvent, ...]:
        return tuple(e for e in self.events if e.kind in kinds)

    def first(self, *kinds: EventKind) -> TimelineEvent | None:
        return next((e for e in self.events if e.kind in kinds), None)

    def all_messages(self) -> tuple[TimelineEvent, ...]:
        """Chat messages including thread replies, in time order."""
        out: list[TimelineEvent] = []
        for event in self.events:
            if event.source is Source.SLACK:
                out.append(event)
                out.extend(event.replies)
        return tuple(sorted(out, key=lambda e: e.at))


def slack_ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=UTC)


def datetime_to_slack_ts(at: datetime) -> str:
    return f"{at.timestamp():.6f}"


IncidentEvidence.model_rebuild()
