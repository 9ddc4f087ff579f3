"""The draft postmortem: what the analysis computes from a timeline and what the renderers draw.

A `Draft` is a frozen value. Human edits live in `Draft.edits` (section -> text) beside the computed
sections, so regenerating from fresh sources keeps them: the renderers show an edited section instead of
the computed one.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum

from pydantic import AwareDatetime, Field
from pydantic_core import PydanticSerializationError

from bot.timeline.models import Channel, Deployment, Frozen, Incident, Timeline, TimelineEvent


class EvidenceRef(Frozen):
    """A pointer to one timeline event: when, what, and the link to it."""

    at: AwareDatetime
    text: str
    url: str | None = None

    @classmethod
    def of(cls, event: TimelineEvent) -> EvidenceRef:
        return cls(at=event.at, text=event.text, url=event.url)


class MetricName(StrEnum):
    TIME_TO_DETECT = "time_to_detect"
    TIME_TO_ACKNOWLEDGE = "time_to_acknowledge"
    TIME_TO_MITIGATE = "time_to_mitigate"
    TIME_TO_RESOLVE = "time_to_resolve"


METRIC_LABELS: dict[MetricName, str] = {
    MetricName.TIME_TO_DETECT: "Time to detect",
    MetricName.TIME_TO_ACKNOWLEDGE: "Time to acknowledge",
    MetricName.TIME_TO_MITIGATE: "Time to mitigate",
    MetricName.TIME_TO_RESOLVE: "Time to resolve",
}


class Metric(Frozen):
    """A duration computed from two events, never typed in."""

    name: MetricName
    seconds: int
    start: EvidenceRef
    end: EvidenceRef

    @property
    def label(self) -> str:
        return METRIC_LABELS[self.name]


class Suspect(Frozen):
    """A deployment that may have triggered the incident, with why it ranks where it does."""

    deployment: Deployment
    score: float
    reasons: tuple[str, ...]
    minutes_before_trigger: int


class ActionItemType(StrEnum):
    PREVENT = "prevent"
    MITIGATE = "mitigate"
    DETECT = "detect"
    PROCESS = "process"


class ActionItem(Frozen):
    text: str
    owner: str | None
    owner_stated: bool  # False when the owner is only the message's author
    type: ActionItemType | None = None
    source: EvidenceRef
    author: str | None = None
    problems: tuple[str, ...] = ()  # quality flags: "no owner", "not specific"


class Quote(Frozen):
    """A chat message quoted as evidence (a root-cause cue, a lesson), with author and link."""

    text: str
    author: str | None
    at: AwareDatetime
    url: str | None = None
    pinned: bool = False


class Lessons(Frozen):
    went_well: tuple[Quote, ...] = ()
    went_wrong: tuple[Quote, ...] = ()
    lucky: tuple[Quote, ...] = ()


class EditableSection(StrEnum):
    """Sections a person may rewrite in the Edit modal; their text then replaces the computed one."""

    SUMMARY = "summary"
    IMPACT = "impact"
    CONTRIBUTING_FACTORS = "contributing_factors"
    ACTION_ITEMS = "action_items"
    LESSONS_LEARNED = "lessons_learned"


# What a section shows when the data cannot support it: the authors fill it, the bot never invents it.
TO_BE_FILLED = "To be filled in by the incident's authors."


class Draft(Frozen):
    incident: Incident
    channel: Channel | None = None
    generated_at: AwareDatetime
    timeline: Timeline
    metrics: tuple[Metric, ...] = ()
    suspects: tuple[Suspect, ...] = ()
    rollbacks: tuple[Deployment, ...] = ()
    action_items: tuple[ActionItem, ...] = ()
    contributing_factors: tuple[Quote, ...] = ()
    lessons: Lessons = Lessons()
    summary: str
    impact: str
    leadup: str
    detection: str
    response: str
    redactions: dict[str, int] = Field(default_factory=dict)  # kind -> count
    source_notes: tuple[str, ...] = ()  # "GitHub was unreachable: ..." — shown in every output
    edits: dict[EditableSection, str] = Field(default_factory=dict)  # human rewrites, kept on regenerate

    @property
    def redaction_count(self) -> int:
        return sum(self.redactions.values())

    @property
    def is_partial(self) -> bool:
        return bool(self.source_notes)

    def metric(self, name: MetricName) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def top_suspect(self) -> Suspect | None:
        return self.suspects[0] if self.suspects else None


class DraftOptions(Frozen):
    """Knobs of the analysis, taken from the settings by the caller (the core reads no environment)."""

    suspect_window_hours: float = 6.0  # deploys this long before the trigger are suspects
    mitigation_phrases: tuple[str, ...] = (
        "mitigated",
        "rolled back",
        "rollback complete",
        "error rate back to normal",
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def draft_json(draft: Draft, *, indent: int | None = None) -> str:
    """The draft as JSON. A lone surrogate from a source (half an emoji cut in two) has no UTF-8 form:
    it becomes U+FFFD, the replacement character, instead of failing the whole draft."""
    try:
        return draft.model_dump_json(indent=indent)
    except PydanticSerializationError:
        text = json.dumps(draft.model_dump(mode="json"), ensure_ascii=False, indent=indent)
        return _LONE_SURROGATE.sub("\ufffd", text)
