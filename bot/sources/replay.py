"""Replay a bundled sample incident through the same mapping code the live clients use.

A sample folder holds the bodies the real APIs returned (see samples/pd-9876/STORY.md):

    pagerduty/incident.json, log_entries.json, alerts.json, notes.json
    github/<owner>/<repo>/deployments.json, statuses/<id>.json, compare/<base>...<head>.json, commits/<sha>/pulls.json
    slack/auth.test.json, conversations.info.json, conversations.history.json,
          conversations.replies/<thread_ts>.json, users.info/<user>.json

`ReplaySource` implements the three source Protocols over those files; only the HTTP is missing, the
mapping (`*_mapping` modules) and the selection rules are the live path's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.errors import IncidentNotFound, SourceError
from bot.sources import github_mapping, pagerduty_mapping, slack_mapping
from bot.sources.base import ChatHistory, IncidentLog
from bot.timeline.models import (
    Channel,
    ChatMessage,
    Commit,
    Deployment,
    Incident,
)


class ReplaySource:
    """PagerDuty, GitHub and Slack answers read from a sample folder instead of the network."""

    def __init__(
        self, sample_dir: Path, *, environment: str = "production", web_url: str = "https://github.com"
    ) -> None:
        self._dir = sample_dir
        self._environment = environment
        self._web_url = web_url

    def _read(self, *parts: str) -> Any:
        path = self._dir.joinpath(*parts)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SourceError(f"The sample has no {'/'.join(parts)}", source="replay") from None

    def _exists(self, *parts: str) -> bool:
        return self._dir.joinpath(*parts).exists()

    # -- IncidentSource -----------------------------------------------------------------------
    def get_incident(self, ref: str) -> Incident:
        wanted = pagerduty_mapping.parse_incident_ref(ref)
        body = self._read("pagerduty", "incident.json")["incident"]
        if wanted not in (body["id"], str(body["incident_number"])):
            raise IncidentNotFound(f"No PagerDuty incident {ref} in the sample", source="pagerduty")
        return pagerduty_mapping.incident_from_json(
            body, alerts=self._read("pagerduty", "alerts.json")["alerts"]
        )

    def get_log(self, incident: Incident) -> IncidentLog:
        entries = self._read("pagerduty", "log_entries.json")["log_entries"]
        alerts = self._read("pagerduty", "alerts.json")["alerts"]
        notes = self._read("pagerduty", "notes.json")["notes"]
        return IncidentLog(
            incident=pagerduty_mapping.with_responders(incident, entries),
            events=pagerduty_mapping.events_for_incident(
                incident=incident, log_entries=entries, alerts=alerts, notes=notes
            ),
        )

    # -- DeploySource -------------------------------------------------------------------------
    def get_deployments(
        self, *, service_repos: Mapping[str, str], since: datetime, until: datetime
    ) -> tuple[Deployment, ...]:
        found: list[Deployment] = []
        for service, repo in service_repos.items():
            if not self._exists("github", repo, "deployments.json"):
                continue
            for raw in self._read("github", repo, "deployments.json"):
                if raw["environment"] != self._environment:
                    continue  # the live API filters by ?environment=
                statuses = self._read("github", repo, "statuses", f"{raw['id']}.json")
                found.append(
                    github_mapping.deployment_from_json(raw, statuses, service=service, web_url=self._web_url)
                )
        return github_mapping.select_deployments(found, since=since, until=until)

    def get_commits(self, *, deployment: Deployment, previous: Deployment | None) -> tuple[Commit, ...]:
        if previous is None:
            return ()
        compare_file = ("github", deployment.repo, "compare", f"{previous.sha}...{deployment.sha}.json")
        if not self._exists(*compare_file):
            return ()
        compare = self._read(*compare_file)
        pulls = {
            c["sha"]: self._read("github", deployment.repo, "commits", c["sha"], "pulls.json")
            for c in compare.get("commits", [])
            if self._exists("github", deployment.repo, "commits", c["sha"], "pulls.json")
        }
        return github_mapping.commits_from_compare(compare, pulls=pulls)

    # -- ChatSource ---------------------------------------------------------------------------
    def _channel(self) -> Channel:
        info = self._read("slack", "conversations.info.json")["channel"]
        workspace = self._read("slack", "auth.test.json")["url"]
        return Channel(id=info["id"], name=info.get("name"), url=f"{workspace}archives/{info['id']}")

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        channel = self._channel()
        return channel if str(incident.number) in (channel.name or "") else None

    def get_channel(self, channel_id: str) -> Channel:
        channel = self._channel()
        if channel.id != channel_id:
            raise SourceError(f"The sample has no channel {channel_id}", source="slack")
        return channel

    def get_history(self, *, channel: Channel, oldest: datetime, latest: datetime) -> ChatHistory:
        auth = self._read("slack", "auth.test.json")
        workspace = auth["url"]
        low, high = oldest.timestamp(), latest.timestamp()
        messages: list[ChatMessage] = []
        for raw in self._read("slack", "conversations.history.json")["messages"]:
            if not low <= float(raw["ts"]) <= high:
                continue
            messages.append(
                slack_mapping.message_from_json(raw, channel_id=channel.id, workspace_url=workspace)
            )
            if raw.get("reply_count"):
                replies = self._read("slack", "conversations.replies", f"{raw['ts']}.json")["messages"]
                messages.extend(
                    slack_mapping.message_from_json(r, channel_id=channel.id, workspace_url=workspace)
                    for r in replies
                    if r["ts"] != raw["ts"]
                )
        user_ids: set[str] = {m.user_id for m in messages if m.user_id}
        channel_ids: set[str] = set()
        for message in messages:
            users, channels = slack_mapping.referenced_ids(message.text)
            user_ids |= users
            channel_ids |= channels
        names = {}
        for user_id in sorted(user_ids):
            if self._exists("slack", "users.info", f"{user_id}.json"):
                names[user_id] = slack_mapping.user_name_from_json(
                    self._read("slack", "users.info", f"{user_id}.json")["user"]
                )
        known = {c["id"]: c["name"] for c in self._read("slack", "conversations.list.json")["channels"]}
        channels = {channel.id: channel.name or channel.id} | {c: known[c] for c in channel_ids if c in known}
        return ChatHistory(
            channel=channel,
            messages=tuple(messages),
            users=names,
            channels=channels,
            bot_user_id=auth.get("user_id"),
        )
