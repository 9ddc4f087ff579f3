"""The PagerDuty watcher: offer a postmortem for each newly resolved incident, once, in its own channel.

`watch_once` is one run; the scheduler calls it every WATCH_INTERVAL_SECONDS on every replica.

1. Take the lease "pagerduty-watcher" (see below); a replica that cannot take it skips this run.
2. Read the cursor: every incident resolved before it has been handled. First run: now - WATCH_LOOKBACK,
   so a fresh install does not prompt on last year's incidents.
3. Ask PagerDuty for resolved incidents and keep those resolved after `cursor - overlap` (the window is
   reasoned out in `query_window`), that pass the priority filter; oldest resolution first.
4. For each not offered yet: find its channel (`route`), claim the prompt in the store, post it (or the
   draft, with WATCH_AUTO_DRAFT). No channel: one report in FALLBACK_CHANNEL.
5. Advance the cursor to `now`, or to just before the first incident whose posting failed, so that
   incident is tried again on the next run (until `give_up_after` has passed since it resolved).

What holds each guarantee:

* *Once per incident*: `claim_prompt`, a unique row per incident shared with `/postmortem`, the "resolved"
  message and every replica. The watcher claims before it posts and releases the claim if posting fails.
* *No skip across restarts*: the cursor lives in the database and only moves past handled incidents.
* *No repeat*: the claim, not the cursor. The overlap re-reads the last minutes on purpose (PagerDuty's
  lists lag behind, clocks differ), and the claim turns those re-reads into no-ops.
* *The lease* (a conditional UPDATE on one row) is not what makes prompts unique. It keeps N replicas from
  multiplying the API calls, and keeps a replica that is about to retry a failed incident from being
  overtaken by another replica's cursor. APScheduler 3 shares no job store, so the database decides.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.config import Settings, priority_rank
from bot.errors import ChannelAccessError
from bot.store.repository import Repository
from bot.timeline.models import Channel, Incident

log = logging.getLogger(__name__)

CURSOR = "pagerduty-watcher"
# PagerDuty refuses a since/until range longer than 6 months; 180 days is shorter than any 6 months.
MAX_QUERY_RANGE = timedelta(days=180)


class ResolvedIncidents(Protocol):
    """PagerDuty (`PagerDutySource`)."""

    def list_resolved_incidents(
        self,
        *,
        since: datetime,
        until: datetime,
        service_ids: Sequence[str] = (),
        team_ids: Sequence[str] = (),
        urgencies: Sequence[str] = (),
    ) -> tuple[Incident, ...]: ...


class ChannelFinder(Protocol):
    """Slack (`SlackHistorySource`): the incident's Slack link, else the channel-name convention."""

    def find_incident_channel(self, incident: Incident) -> Channel | None: ...


class Announcer(Protocol):
    """What the jobs say in Slack; the Slack layer implements it. Errors may be raised: the jobs log them,
    undo their claim and try again on a later run. `ChannelAccessError` means the bot cannot post there."""

    def prompt(self, *, channel_id: str, incident: Incident) -> str | None:
        """Post the "draft its postmortem?" prompt; return the message's ts."""
        ...

    def draft_now(self, *, channel_id: str, incident: Incident) -> None:
        """Draft the postmortem at once and post its preview (WATCH_AUTO_DRAFT)."""
        ...

    def unrouted(self, *, channel_id: str, incident: Incident) -> None:
        """Say in the fallback channel that the incident resolved but has no channel the bot can use."""
        ...

    def remind(
        self, *, channel_id: str, draft_key: str, commander: str | None, preview_ts: str | None
    ) -> None:
        """Remind the channel that the draft of `draft_key` ("PD-9876") waits for review, naming the
        commander (a PagerDuty name) when known, in the preview's thread when `preview_ts` is set."""
        ...


def replica_id() -> str:
    """Who holds the lease: this host and process, plus a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WatchOptions:
    lookback: timedelta = timedelta(hours=1)  # first run only
    max_incident_age: timedelta = timedelta(days=7)  # longest an incident may stay open and still be seen
    overlap: timedelta = timedelta(minutes=10)  # re-read behind the cursor: list lag and clock skew
    service_ids: tuple[str, ...] = ()
    team_ids: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    min_priority: str | None = None  # "SEV-2": less severe and unprioritised incidents are skipped
    auto_draft: bool = False
    fallback_channel: str | None = None
    channel_map: Mapping[str, str] = field(default_factory=dict)  # key, id, service name or id -> channel
    give_up_after: timedelta = timedelta(days=1)  # a failing incident stops holding the cursor back
    lease_ttl: timedelta = timedelta(minutes=2)
    holder: str = field(default_factory=replica_id)
    cursor: str = CURSOR

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> WatchOptions:
        values: dict[str, object] = {
            "lookback": settings.watch_lookback,
            "max_incident_age": settings.watch_max_incident_age,
            "service_ids": settings.watch_service_ids,
            "team_ids": settings.watch_team_ids,
            "urgencies": settings.watch_urgencies,
            "min_priority": settings.watch_min_priority,
            "auto_draft": settings.watch_auto_draft,
            "fallback_channel": settings.fallback_channel,
            "channel_map": dict(settings.channel_map),
            # The lease outlives two missed runs, so one slow run does not hand the watch to another replica.
            "lease_ttl": max(timedelta(seconds=2 * settings.watch_interval_seconds), timedelta(minutes=2)),
        }
        return cls(**(values | overrides))  # type: ignore[arg-type]


class Outcome(StrEnum):
    PROMPTED = "prompted"
    DRAFTED = "drafted"
    UNROUTED = "unrouted"  # reported in the fallback channel (or logged, without one)
    ALREADY = "already"  # prompted, drafted or reported before: by a command, a message or a replica
    FILTERED = "filtered"  # below WATCH_MIN_PRIORITY
    FAILED = "failed"  # posting failed; tried again on a later run


@dataclass(frozen=True)
class WatchReport:
    ran: bool  # False: another replica holds the watch
    since: datetime | None = None  # the PagerDuty query window (creation times)
    until: datetime | None = None
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # incident key -> what happened

    def keys(self, outcome: Outcome) -> list[str]:
        return [key for key, value in self.outcomes.items() if value is outcome]


def query_window(
    *, cursor: datetime | None, now: datetime, options: WatchOptions
) -> tuple[datetime, datetime]:
    """The lower bound of resolution times still to handle, and the `since` to ask PagerDuty.

    PagerDuty's since/until select incidents by *creation*. An incident resolved after `lower` was created at
    most `max_incident_age` before it resolved, so `since = lower - max_incident_age` finds it; a range may
    span at most 6 months, so `since` is never earlier than `now - 180 days` (after a very long outage the
    oldest resolutions are then out of reach, and said so in the log).
    """
    lower = now - options.lookback if cursor is None else cursor - options.overlap
    since = lower - options.max_incident_age
    if since < now - MAX_QUERY_RANGE:
        log.warning("the watcher's window is clamped to PagerDuty's 6 months", extra={"cursor": str(cursor)})
        since = now - MAX_QUERY_RANGE
    return lower, since


def route(incident: Incident, *, chat: ChannelFinder, channel_map: Mapping[str, str]) -> str | None:
    """The channel for the incident's prompt, or None.

    An explicit entry for the incident (key or id) wins; then the incident's own channel (its Slack link,
    else the name convention); only then a service's mapped channel. The order matters: a draft reads the
    history of the channel it starts in, so an incident channel must beat a team-wide service channel.
    """
    for key in (incident.key, incident.id):
        if key in channel_map:
            return channel_map[key]
    try:
        channel = chat.find_incident_channel(incident)
    except ChannelAccessError as exc:  # linked, but the bot may not read it: try the mapping, then report
        log.warning("incident channel not usable", extra={"incident": incident.key, "error": str(exc)})
        channel = None
    if channel is not None:
        return channel.id
    for service in incident.services:
        for key in (service.id, service.name):
            if key in channel_map:
                return channel_map[key]
    return None


def passes_priority(incident: Incident, min_priority: str | None) -> bool:
    """Whether the incident is at least as severe as `min_priority` ("SEV-1" beats "SEV-2").

    With a minimum set, an incident without a (numbered) priority is skipped: the setting asks for the
    serious ones, and an unprioritised incident has not been called serious by anyone.
    """
    if min_priority is None:
        return True
    limit = priority_rank(min_priority)
    rank = priority_rank(incident.severity) if incident.severity else None
    return limit is not None and rank is not None and rank <= limit


def watch_once(
    *,
    incidents: ResolvedIncidents,
    chat: ChannelFinder,
    repo: Repository,
    announcer: Announcer,
    options: WatchOptions,
    now: datetime,
) -> WatchReport:
    """One run of the watcher (see the module's docstring). Raises when PagerDuty cannot be listed."""
    if not repo.take_lease(name=options.cursor, holder=options.holder, now=now, ttl=options.lease_ttl):
        return WatchReport(ran=False)
    stored = repo.get_cursor(options.cursor)
    cursor = datetime.fromisoformat(stored) if stored else None
    lower, since = query_window(cursor=cursor, now=now, options=options)
    listed = incidents.list_resolved_incidents(
        since=since,
        until=now,
        service_ids=options.service_ids,
        team_ids=options.team_ids,
        urgencies=options.urgencies,
    )
    fresh = sorted(
        ((i, i.resolved_at) for i in listed if i.resolved_at is not None and i.resolved_at > lower),
        key=lambda pair: (pair[1], pair[0].number),
    )
    outcomes: dict[str, Outcome] = {}
    advance_to = now
    for incident, resolved_at in fresh:
        if not passes_priority(incident, options.min_priority):
            outcomes[incident.key] = Outcome.FILTERED
            continue
        try:
            outcomes[incident.key] = _offer(
                incident, chat=chat, repo=repo, announcer=announcer, options=options, now=now
            )
        except Exception:  # one incident's failure must not stop the others; logged with its traceback
            outcomes[incident.key] = Outcome.FAILED
            if resolved_at < now - options.give_up_after:
                log.exception("giving up on offering a postmortem", extra={"incident": incident.key})
            else:
                log.exception("could not offer a postmortem; will retry", extra={"incident": incident.key})
                advance_to = min(advance_to, resolved_at - timedelta(microseconds=1))
    if cursor is None or advance_to > cursor:
        repo.advance_cursor(name=options.cursor, value=_cursor_text(advance_to), now=now)
    report = WatchReport(
        ran=True,
        since=since,
        until=now,
        cursor_before=cursor,
        cursor_after=max(advance_to, cursor) if cursor else advance_to,
        outcomes=outcomes,
    )
    done = {k: v for k, v in outcomes.items() if v is not Outcome.ALREADY}
    if done:
        log.info("watcher run", extra={"outcomes": {k: str(v) for k, v in done.items()}})
    return report


def _offer(
    incident: Incident,
    *,
    chat: ChannelFinder,
    repo: Repository,
    announcer: Announcer,
    options: WatchOptions,
    now: datetime,
) -> Outcome:
    if repo.was_offered(incident_id=incident.id):
        return Outcome.ALREADY  # a cheap look first: finding a channel may list the workspace's channels
    channel_id = route(incident, chat=chat, channel_map=options.channel_map)
    if channel_id is None:
        return _report_unrouted(incident, repo=repo, announcer=announcer, options=options, now=now)
    if not repo.claim_prompt(incident_id=incident.id, channel_id=channel_id, trigger="watcher", now=now):
        return Outcome.ALREADY
    try:
        if options.auto_draft:
            announcer.draft_now(channel_id=channel_id, incident=incident)
        else:
            ts = announcer.prompt(channel_id=channel_id, incident=incident)
            if ts:
                repo.set_prompt_ts(incident_id=incident.id, ts=ts)
    except ChannelAccessError as exc:
        # The bot may not post there (not a member, archived): report it where someone can act on it. The
        # claim goes, as nothing was posted: a "resolved" message may still prompt once the bot is invited.
        log.warning(
            "cannot post in the incident's channel", extra={"incident": incident.key, "error": str(exc)}
        )
        repo.release_prompt(incident_id=incident.id)
        return _report_unrouted(incident, repo=repo, announcer=announcer, options=options, now=now)
    except Exception:
        repo.release_prompt(incident_id=incident.id)  # let the next run (or a resolved message) try again
        raise
    log.info(
        "offered a postmortem",
        extra={"incident": incident.key, "channel": channel_id, "auto_draft": options.auto_draft},
    )
    return Outcome.DRAFTED if options.auto_draft else Outcome.PROMPTED


def _report_unrouted(
    incident: Incident, *, repo: Repository, announcer: Announcer, options: WatchOptions, now: datetime
) -> Outcome:
    key = f"unrouted:{incident.id}"
    if not repo.claim(key=key, now=now):
        return Outcome.ALREADY
    if options.fallback_channel is None:
        log.warning(
            "no channel for a resolved incident, and FALLBACK_CHANNEL is not set",
            extra={"incident": incident.key},
        )
        return Outcome.UNROUTED
    try:
        announcer.unrouted(channel_id=options.fallback_channel, incident=incident)
    except Exception:
        repo.release(key=key)
        raise
    return Outcome.UNROUTED


def _cursor_text(at: datetime) -> str:
    # One fixed width, so the store's string comparison orders cursors as times.
    return at.astimezone(UTC).isoformat(timespec="microseconds")
