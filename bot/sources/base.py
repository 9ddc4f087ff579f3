"""The interfaces of the three sources. Live clients and the replay of bundled samples implement them.

Every method returns typed values from `bot.timeline.models`, mapped from the vendors' JSON by the
`*_mapping` modules, so the live path and the replay path share one mapping.
Errors are the project's own (`bot.errors`); no vendor exception crosses these methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from bot.timeline.models import Channel, ChatMessage, Commit, Deployment, Frozen, Incident, TimelineEvent


class Progress(Protocol):
    """Called as each source makes headway: ("slack", "412 messages read"), then once with `done=True`
    when the source has finished ("412 messages") or failed ("failed: …", `failed=True`)."""

    def __call__(self, source: str, message: str, *, done: bool = False, failed: bool = False) -> None: ...


def no_progress(source: str, message: str, *, done: bool = False, failed: bool = False) -> None:
    return None


class ChatHistory(Frozen):
    """What the chat source read for one channel and window."""

    channel: Channel
    messages: tuple[ChatMessage, ...]  # parents and replies
    users: dict[str, str]  # user id -> display name, for every author and mention seen
    channels: dict[str, str]  # channel id -> name, for <#C...> mentions seen
    bot_user_id: str | None = None


class IncidentLog(Frozen):
    """What an incident's log says: the incident with its responders filled in, and its events."""

    incident: Incident
    events: tuple[TimelineEvent, ...]


class IncidentSource(Protocol):
    """PagerDuty."""

    def get_incident(self, ref: str) -> Incident:
        """`ref`: 'PD-9876', '9876' (the incident number) or an incident id. IncidentNotFound if none.

        The incident and its alerts (for its services), not its log: a resolved incident's responders are
        only in its log, so they come with `get_log`, read alongside the other sources."""
        ...

    def get_log(self, incident: Incident) -> IncidentLog:
        """Every log entry (all pages), alert (with body details) and note of the incident, as events; and
        the incident with its assignees and acknowledgers from the log when the incident no longer lists them."""
        ...


class DeploySource(Protocol):
    """GitHub."""

    def get_deployments(
        self, *, service_repos: Mapping[str, str], since: datetime, until: datetime
    ) -> tuple[Deployment, ...]:
        """Deployments to the configured environment of each repo (service -> 'owner/repo') created in
        [since, until], each with its latest status."""
        ...

    def get_commits(self, *, deployment: Deployment, previous: Deployment | None) -> tuple[Commit, ...]:
        """The commits `deployment` shipped since `previous` (compare), with PR numbers and authors."""
        ...


class ChatSource(Protocol):
    """Slack."""

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        """The incident's channel: its Slack link, else a channel whose name holds the incident number."""
        ...

    def get_channel(self, channel_id: str) -> Channel:
        """ChannelAccessError with what to do when the bot cannot read it."""
        ...

    def get_history(self, *, channel: Channel, oldest: datetime, latest: datetime) -> ChatHistory:
        """Messages in [oldest, latest] (every page), replies of threaded ones, names of users seen."""
        ...
