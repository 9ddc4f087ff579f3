"""Fetch everything for one incident: PagerDuty first (it says when and what), then the three sources at once.

The wall time of a draft is close to the slowest source, not the sum: log entries, deployments and chat
history are read on three threads. A source that fails does not sink the draft; it becomes a line in
`IncidentEvidence.source_notes` ("GitHub was unreachable: …") that every output shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.analysis.suspects import rank_suspects
from bot.errors import AuthError, ChannelAccessError, PostmortemError, SourceUnavailable
from bot.sources.base import (
    ChatHistory,
    ChatSource,
    DeploySource,
    IncidentLog,
    IncidentSource,
    Progress,
    no_progress,
)
from bot.timeline.build import recognise_rollbacks
from bot.timeline.models import Channel, Deployment, Incident, IncidentEvidence

log = logging.getLogger(__name__)

SOURCE_NAMES = {"pagerduty": "PagerDuty", "github": "GitHub", "slack": "Slack"}


@dataclass(frozen=True)
class GatherOptions:
    suspect_window: timedelta = timedelta(hours=6)
    history_lead_in: timedelta = timedelta(minutes=30)
    history_tail: timedelta = timedelta(minutes=60)
    repo_for_service: Callable[[str], str | None] = lambda service: None


@dataclass(frozen=True)
class Sources:
    incidents: IncidentSource
    deploys: DeploySource | None
    chat: ChatSource | None


def source_note(source: str, error: Exception) -> str:
    """One line for the draft saying which source failed and why."""
    name = SOURCE_NAMES.get(source, source)
    if isinstance(error, SourceUnavailable):
        return f"{name} was unreachable: {error}"
    if isinstance(error, AuthError):
        return f"{name} refused access: {error}"
    if isinstance(error, ChannelAccessError):
        return f"{name} history could not be read: {error}"
    if isinstance(error, PostmortemError):
        return f"{name} failed: {error}"
    return f"{name} failed unexpectedly: {type(error).__name__}: {error}"


def gather_evidence(
    *,
    ref: str,
    channel_id: str | None,
    sources: Sources,
    options: GatherOptions,
    now: datetime,
    progress: Progress = no_progress,
    incident: Incident | None = None,
) -> IncidentEvidence:
    """Read the incident (errors propagate: without it there is nothing to draft), then the rest concurrently:
    its PagerDuty log (which completes it with its responders), GitHub's deployments and the Slack history.
    `incident`: the incident as the caller has just read it (`get_incident(ref)`), so it is not read again."""
    if incident is None:
        progress("pagerduty", "reading the incident")
        incident = sources.incidents.get_incident(ref)
    progress("pagerduty", f"found {incident.key}: {incident.title}")

    notes: list[str] = []
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="gather") as pool:
        log_f = pool.submit(_pagerduty_log, sources.incidents, incident, progress)
        deploys_f = pool.submit(_deployments, sources.deploys, incident, options, now, progress)
        chat_f = pool.submit(_chat_history, sources.chat, incident, channel_id, options, now, progress)
        incident_log: IncidentLog | None = _result(log_f, "pagerduty", notes, progress)
        found, deploy_notes = _result(deploys_f, "github", notes, progress) or ((), ())
        deployments: tuple[Deployment, ...] = found or ()
        chat, chat_notes = _result(chat_f, "slack", notes, progress) or (None, ())
    notes.extend(deploy_notes)
    notes.extend(chat_notes)

    history: ChatHistory | None = chat
    return IncidentEvidence(
        incident=incident_log.incident if incident_log else incident,
        pagerduty_events=incident_log.events if incident_log else (),
        deployments=deployments,
        channel=history.channel if history else None,
        messages=history.messages if history else (),
        users=history.users if history else {},
        channels=history.channels if history else {},
        bot_user_id=history.bot_user_id if history else None,
        source_notes=tuple(notes),
    )


def _result(future: Future, source: str, notes: list[str], progress: Progress):  # noqa: ANN202 - per-source tuple
    try:
        return future.result()
    except Exception as exc:  # a failing source becomes a visible note, never a lost draft
        if not isinstance(exc, PostmortemError):
            log.exception("source failed unexpectedly", extra={"source": source})
        note = source_note(source, exc)
        notes.append(note)
        progress(source, note, done=True, failed=True)
        return None


def _pagerduty_log(incidents: IncidentSource, incident: Incident, progress: Progress) -> IncidentLog:
    found = incidents.get_log(incident)
    progress("pagerduty", f"{len(found.events)} log entries, alerts and notes", done=True)
    return found


def _deployments(
    deploys: DeploySource | None,
    incident: Incident,
    options: GatherOptions,
    now: datetime,
    progress: Progress,
) -> tuple[tuple[Deployment, ...], tuple[str, ...]]:
    if deploys is None:
        return _skipped(
            "github", "GitHub was not configured: set GITHUB_TOKEN to include deployments.", progress
        )
    service_repos = {s.name: repo for s in incident.services if (repo := options.repo_for_service(s.name))}
    unmapped = [s.name for s in incident.services if s.name not in service_repos]
    notes: tuple[str, ...] = ()
    if unmapped:
        notes = (f"GitHub: no repository known for {', '.join(unmapped)} (set SERVICE_REPOS or GITHUB_ORG).",)
    if not service_repos:
        progress("github", notes[0] if notes else "no repositories", done=True, failed=True)
        return (), notes
    progress("github", f"reading deployments of {', '.join(sorted(service_repos.values()))}")
    trigger = incident.created_at
    until = incident.resolved_at or now
    deployments = recognise_rollbacks(
        deploys.get_deployments(
            service_repos=service_repos, since=trigger - options.suspect_window, until=until
        )
    )
    suspects = rank_suspects(
        deployments=deployments, incident=incident, trigger_at=trigger, window=options.suspect_window
    )
    if suspects:
        top = suspects[0].deployment
        previous = _previous_success(deployments, top)
        try:
            commits = deploys.get_commits(deployment=top, previous=previous)
        except PostmortemError as exc:
            notes += (source_note("github", exc) + " (the suspect's commits are missing)",)
        else:
            deployments = tuple(
                d.model_copy(update={"commits": commits}) if d.id == top.id else d for d in deployments
            )
    progress("github", f"{len(deployments)} deployments", done=True)
    return deployments, notes


def _previous_success(deployments: tuple[Deployment, ...], deployment: Deployment) -> Deployment | None:
    earlier = [
        d
        for d in deployments
        if d.repo == deployment.repo
        and d.created_at < deployment.created_at
        and d.status in ("success", "inactive")
    ]
    return max(earlier, key=lambda d: d.created_at, default=None)


def _chat_history(
    chat: ChatSource | None,
    incident: Incident,
    channel_id: str | None,
    options: GatherOptions,
    now: datetime,
    progress: Progress,
) -> tuple[ChatHistory | None, tuple[str, ...]]:
    if chat is None:
        return _skipped(
            "slack", "Slack was not configured: set SLACK_BOT_TOKEN to include the channel.", progress
        )
    channel: Channel | None
    if channel_id:
        channel = chat.get_channel(channel_id)
    else:
        progress("slack", "looking for the incident's channel")
        channel = chat.find_incident_channel(incident)
    if channel is None:
        note = (
            f"Slack: no channel found for {incident.key} (name it inc-{incident.number}, link it from the incident, "
            "or pass the channel explicitly)."
        )
        return _skipped("slack", note, progress)
    progress("slack", f"reading #{channel.name or channel.id}")
    history = chat.get_history(
        channel=channel,
        oldest=incident.created_at - options.history_lead_in,
        latest=(incident.resolved_at or now) + options.history_tail,
    )
    progress("slack", f"{len(history.messages)} messages", done=True)
    return history, ()


def _skipped(source: str, note: str, progress: Progress) -> tuple[None, tuple[str, ...]]:
    """A source that could not be asked at all: its note, and its progress line closed as failed."""
    progress(source, note, done=True, failed=True)
    return None, (note,)
