"""Evidence -> timeline: merge the three sources, order them, fold duplicates and drop the noise.

Pure: no clock, no I/O. Linear passes plus one sort, so a channel of 10,000+ messages builds quickly.

Ordering is stable: by time, then by source (PagerDuty, GitHub, Slack), then by the order each source
gave. Everything dropped or folded is counted in `Timeline.removed_noise`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from bot.timeline.markup import is_emoji_only, slack_to_text
from bot.timeline.models import (
    ChatMessage,
    Deployment,
    EventKind,
    IncidentEvidence,
    Source,
    Timeline,
    TimelineEvent,
)

_SOURCE_RANK = {Source.PAGERDUTY: 0, Source.GITHUB: 1, Source.SLACK: 2}

# Subtypes of what people wrote. Every other subtype is a system message (joins, leaves, topic and
# purpose changes, pins, tombstones of deleted parents, huddles, ...) or a bot's.
_PEOPLE_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}

_ROLLBACK_WORDS = re.compile(r"\b(roll(?:ed|ing|s)?[\s-]?backs?|revert(?:ed|ing|s)?)\b", re.IGNORECASE)
# A sha in prose: 7-40 hex characters with at least one digit, so words like "defaced" do not count.
_SHA = re.compile(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", re.IGNORECASE)

THREAD_PARENT_MISSING = "thread_parent_missing"


def recognise_rollbacks(deployments: Iterable[Deployment]) -> tuple[Deployment, ...]:
    """Copies of `deployments` in time order, rollbacks marked with `rolls_back_to`.

    A deployment is a rollback when its sha was deployed before to the same repo and environment and the
    deployment just before it there shipped a different sha (a re-deploy of the running sha is not a
    rollback). A description saying "rollback"/"revert" and naming a sha counts too; an abbreviated sha
    is expanded when a known deployment of that repo and environment has it. A value already set is kept
    when neither rule applies, so running this twice changes nothing.
    """
    ordered = sorted(deployments, key=lambda d: d.created_at)  # sorted() is stable: ties keep input order
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    previous: dict[tuple[str, str], str] = {}
    known: dict[tuple[str, str], set[str]] = defaultdict(set)
    for deployment in ordered:
        known[(deployment.repo, deployment.environment)].add(deployment.sha)

    out: list[Deployment] = []
    for deployment in ordered:
        target = (deployment.repo, deployment.environment)
        rolls_back_to = deployment.rolls_back_to
        if deployment.sha in seen[target] and previous.get(target) not in (None, deployment.sha):
            rolls_back_to = deployment.sha
        elif named := _sha_named_as_rollback(deployment.description):
            rolls_back_to = _expand_sha(named, known[target])
        seen[target].add(deployment.sha)
        previous[target] = deployment.sha
        out.append(deployment.model_copy(update={"rolls_back_to": rolls_back_to}))
    return tuple(out)


def _sha_named_as_rollback(description: str) -> str | None:
    if not _ROLLBACK_WORDS.search(description):
        return None
    match = _SHA.search(description)
    return match.group(0).lower() if match else None


def _expand_sha(prefix: str, shas: Iterable[str]) -> str:
    matches = {sha for sha in shas if sha.lower().startswith(prefix)}
    return matches.pop() if len(matches) == 1 else prefix


def build_timeline(evidence: IncidentEvidence) -> Timeline:
    """Merge PagerDuty events, deployments and chat messages into one ordered, de-noised timeline."""
    alerts, folded = _collapse_alerts(evidence.pagerduty_events)
    deploys = [_deploy_event(d) for d in recognise_rollbacks(evidence.deployments)]
    messages, dropped = _message_events(
        evidence.messages,
        users=evidence.users,
        channels=evidence.channels,
        bot_user_id=evidence.bot_user_id,
    )
    merged = sorted(
        enumerate([*alerts, *deploys, *messages]),
        key=lambda pair: (pair[1].at, _SOURCE_RANK[pair[1].source], pair[0]),
    )
    return Timeline(events=tuple(event for _, event in merged), removed_noise=folded + dropped)


def _collapse_alerts(events: Iterable[TimelineEvent]) -> tuple[list[TimelineEvent], int]:
    """Fold ALERT events with the same `alert_key` (else the same text) into the first, counted."""
    out: list[TimelineEvent] = []
    groups: dict[tuple[str, str], list[TimelineEvent]] = {}
    for event in events:
        if event.kind is not EventKind.ALERT:
            out.append(event)
            continue
        key = ("key", event.details["alert_key"]) if event.details.get("alert_key") else ("text", event.text)
        group = groups.get(key)
        if group is None:
            groups[key] = group = []
            out.append(event)  # the group's place in the source order; replaced below when folded
        group.append(event)

    folded = 0
    firsts: dict[int, TimelineEvent] = {}
    for group in groups.values():
        if len(group) == 1:
            continue
        first = min(group, key=lambda e: e.at)  # min() keeps the earliest given one on ties
        count = sum(e.count for e in group)
        last_at = max((e.last_at or e.at) for e in group)
        folded += len(group) - 1
        firsts[id(group[0])] = first.model_copy(
            update={"count": count, "last_at": last_at, "text": f"{first.text} (fired {count} times)"}
        )
    return [firsts.get(id(e), e) for e in out], folded


def _deploy_event(deployment: Deployment) -> TimelineEvent:
    short = deployment.sha[:7]
    if deployment.is_rollback:
        kind = EventKind.ROLLBACK
        text = f"Rolled back {deployment.repo} to {short} in {deployment.environment}"
    else:
        kind = EventKind.DEPLOY
        text = f"Deployed {deployment.repo} {short} to {deployment.environment}"
    if deployment.description:
        text += f": {deployment.description}"
    if status := _status_text(deployment.status):
        text += f" ({status})"
    details = {
        "repo": deployment.repo,
        "sha": deployment.sha,
        "ref": deployment.ref,
        "status": deployment.status,
        "environment": deployment.environment,
    }
    if deployment.service:
        details["service"] = deployment.service
    if deployment.rolls_back_to:
        details["rolls_back_to"] = deployment.rolls_back_to
    return TimelineEvent(
        at=deployment.created_at,
        source=Source.GITHUB,
        kind=kind,
        text=text,
        actor=deployment.creator,
        url=deployment.url,
        id=str(deployment.id),
        details=details,
    )


def _status_text(status: str) -> str:
    # GitHub sets "inactive" only on deployments that had succeeded (a later one replaced them), so the
    # latest status alone tells the story "success -> inactive".
    if status == "inactive":
        return "success → inactive"
    return "" if status == "unknown" else status


def _is_noise(message: ChatMessage, *, bot_user_id: str | None) -> bool:
    return (
        message.subtype not in _PEOPLE_SUBTYPES
        or message.bot_id is not None
        or (bot_user_id is not None and message.user_id == bot_user_id)
        or is_emoji_only(message.text)
    )


def _message_events(
    messages: Iterable[ChatMessage],
    *,
    users: Mapping[str, str],
    channels: Mapping[str, str],
    bot_user_id: str | None,
) -> tuple[list[TimelineEvent], int]:
    """Top-level message events (replies under their parents, orphans flagged) and the count dropped."""
    # The same message arrives twice when it is both in the history and in its thread's replies; keep
    # the edited copy, else the one seen last. Dict order keeps the first sighting's position.
    unique: dict[tuple[str, str], ChatMessage] = {}
    dropped = 0
    for message in messages:
        key = (message.channel_id, message.ts)
        kept = unique.get(key)
        if kept is not None:
            dropped += 1
            if kept.edited and not message.edited:
                continue
        unique[key] = message

    parents: list[ChatMessage] = []
    replies: dict[tuple[str, str], list[ChatMessage]] = defaultdict(list)
    for message in unique.values():
        if _is_noise(message, bot_user_id=bot_user_id):
            dropped += 1
        elif message.is_reply:
            replies[(message.channel_id, message.thread_ts or "")].append(message)
        else:
            parents.append(message)

    def event(
        message: ChatMessage, *, thread: Iterable[ChatMessage] = (), orphan: bool = False
    ) -> TimelineEvent:
        under = tuple(event(reply) for reply in sorted(thread, key=lambda m: m.at))
        return _message_event(message, users=users, channels=channels, replies=under, orphan=orphan)

    events = [event(parent, thread=replies.pop((parent.channel_id, parent.ts), ())) for parent in parents]
    # What is left has no parent in the timeline: deleted, outside the window, or dropped as noise.
    for orphans in replies.values():
        events.extend(event(reply, orphan=True) for reply in orphans)
    return events, dropped


def _message_event(
    message: ChatMessage,
    *,
    users: Mapping[str, str],
    channels: Mapping[str, str],
    replies: tuple[TimelineEvent, ...] = (),
    orphan: bool = False,
) -> TimelineEvent:
    text = slack_to_text(message.text, users=users, channels=channels).strip()
    if not text:
        text = "(shared a file)" if message.subtype == "file_share" else "(message without text)"
    details: dict[str, str] = {}
    if message.user_id:
        details["user_id"] = message.user_id
    if message.thread_ts:
        details["thread_ts"] = message.thread_ts
    if orphan:
        details[THREAD_PARENT_MISSING] = "true"
    return TimelineEvent(
        at=message.at,
        source=Source.SLACK,
        kind=EventKind.MESSAGE,
        text=text,
        actor=(users.get(message.user_id) or message.user_id) if message.user_id else None,
        url=message.permalink,
        id=message.ts,
        pinned=message.pinned,
        edited=message.edited,
        replies=replies,
        details=details,
    )
