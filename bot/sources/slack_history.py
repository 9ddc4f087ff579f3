"""The incident channel's history, read through the Slack Web API (`ChatSource`).

Every list is read to its last page (`response_metadata.next_cursor`); thread replies are fetched only
for parents that have some, a few threads at a time; each user and each mentioned channel is looked up once per source object.
Errors leave as the project's own, with what to do (see `slack_client.slack_error`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import ChannelAccessError, PostmortemError
from bot.sources import slack_mapping
from bot.sources.base import ChatHistory, Progress, no_progress
from bot.sources.slack_client import INVITE_HINT, slack_error, slack_errors
from bot.timeline.models import Channel, ChatMessage, Incident, datetime_to_slack_ts

THREAD_READERS = 4  # threads whose replies are read at the same time


class SlackHistorySource:
    """`ChatSource` over a `WebClient` (see `slack_client.build_web_client`)."""

    def __init__(self, *, client: WebClient, page_size: int = 200, progress: Progress = no_progress) -> None:
        self._client = client
        self._page_size = page_size
        self._progress = progress
        self._auth: tuple[str | None, str | None] | None = None  # (workspace url, bot user id)
        self._users: dict[str, str] = {}
        self._channel_names: dict[str, str | None] = {}  # None: the bot cannot see that channel
        self._archived: dict[str, bool] = {}

    # -- ChatSource ---------------------------------------------------------------------------
    def get_channel(self, channel_id: str) -> Channel:
        with slack_errors(action=f"read channel {channel_id}", channel=channel_id):
            info: dict[str, Any] = self._client.conversations_info(channel=channel_id)["channel"]
        name = info.get("name") or channel_id
        self._channel_names[channel_id] = name
        self._archived[channel_id] = bool(info.get("is_archived"))
        if not info.get("is_member", True):
            if info.get("is_archived"):
                raise ChannelAccessError(
                    f"#{name} is archived and the bot is not in it: unarchive it, {INVITE_HINT}, then try again.",
                    source="slack",
                )
            raise ChannelAccessError(f"The bot is not in #{name}: {INVITE_HINT}.", source="slack")
        return Channel(id=channel_id, name=name, url=self._channel_url(channel_id))

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        linked = incident.slack_channel_id or slack_mapping.channel_id_from_url(incident.conference_url)
        if linked:
            return self.get_channel(linked)
        candidates = [
            channel
            for page in self._pages(
                self._client.conversations_list,
                key="channels",
                action="list the workspace's channels",
                types="public_channel,private_channel",
                exclude_archived=True,
            )
            for channel in page
            if slack_mapping.names_incident(channel.get("name") or "", incident.number)
        ]
        if not candidates:
            return None
        # A channel the bot is in beats one it is not; then the newest (incident channels are made for it).
        best = max(candidates, key=lambda c: (bool(c.get("is_member")), c.get("created") or 0))
        return self.get_channel(best["id"])

    def get_history(self, *, channel: Channel, oldest: datetime, latest: datetime) -> ChatHistory:
        workspace_url = self._whoami()[0]
        name = channel.name or channel.id
        window = {
            "oldest": datetime_to_slack_ts(oldest),
            "latest": datetime_to_slack_ts(latest),
            "inclusive": True,
        }
        raw: list[dict[str, Any]] = []
        try:
            for page in self._pages(
                self._client.conversations_history,
                key="messages",
                action=f"read the history of #{name}",
                where=name,
                channel=channel.id,
                **window,
            ):
                raw.extend(page)
                self._progress("slack", f"{len(raw)} messages read")
        except ChannelAccessError as exc:
            if self._is_archived(channel.id):
                raise ChannelAccessError(
                    f"#{name} is archived and the bot cannot read it: unarchive it, {INVITE_HINT}, then try again.",
                    source="slack",
                ) from exc
            raise

        messages = [self._message(m, channel.id, workspace_url) for m in raw]
        threads = [
            m for m in raw if int(m.get("reply_count") or 0) > 0 and m.get("thread_ts", m["ts"]) == m["ts"]
        ]

        def replies(parent: dict[str, Any]) -> list[ChatMessage]:
            return [
                self._message(m, channel.id, workspace_url)
                for page in self._pages(
                    self._client.conversations_replies,
                    key="messages",
                    action=f"read a thread in #{name}",
                    where=name,
                    tolerate={"thread_not_found"},  # the parent was deleted since the history page
                    channel=channel.id,
                    ts=parent["ts"],
                    **window,
                )
                for m in page
                if m["ts"] != parent["ts"]
            ]

        # Threads are independent: a few are read at once (each request still honours 429s), so a busy
        # channel costs a few round trips per thread batch rather than one per thread.
        with ThreadPoolExecutor(max_workers=THREAD_READERS, thread_name_prefix="slack-thread") as pool:
            for thread_messages in pool.map(replies, threads):
                messages.extend(thread_messages)
        if threads:
            self._progress("slack", f"{len(messages)} messages read, {len(threads)} threads")

        return self.describe(channel=channel, messages=messages)

    # -- for sources that hold messages already (live capture, bot/sources/captured.py) ----------------
    def workspace_url(self) -> str | None:
        """The workspace's address (https://acme.slack.com/), for permalinks; asked once (auth.test)."""
        return self._whoami()[0]

    def describe(self, *, channel: Channel, messages: Sequence[ChatMessage]) -> ChatHistory:
        """A ChatHistory of these messages, ordered, with the names of every author and mention looked up
        (each once per source object) — what `get_history` returns for the messages it read."""
        bot_user_id = self._whoami()[1]
        name = channel.name or channel.id
        user_ids: set[str] = {m.user_id for m in messages if m.user_id}
        channel_ids: set[str] = set()
        for message in messages:
            users, channels = slack_mapping.referenced_ids(message.text)
            user_ids |= users
            channel_ids |= channels
        channel_names = {channel.id: name}
        for channel_id in sorted(channel_ids - {channel.id}):
            mentioned = self._channel_name(channel_id)
            if mentioned:
                channel_names[channel_id] = mentioned
        return ChatHistory(
            channel=channel
            if channel.url
            else channel.model_copy(update={"url": self._channel_url(channel.id)}),
            messages=tuple(sorted(messages, key=lambda m: (float(m.ts), m.ts))),
            users={user_id: self._user_name(user_id) for user_id in sorted(user_ids)},
            channels=channel_names,
            bot_user_id=bot_user_id,
        )

    # -- lookups, each made once ----------------------------------------------------------------
    def _whoami(self) -> tuple[str | None, str | None]:
        if self._auth is None:
            with slack_errors(action="check the bot's token (auth.test)"):
                response = self._client.auth_test()
            self._auth = (response.get("url"), response.get("user_id"))
        return self._auth

    def _channel_url(self, channel_id: str) -> str | None:
        workspace_url = self._whoami()[0]
        return f"{workspace_url.rstrip('/')}/archives/{channel_id}" if workspace_url else None

    def _user_name(self, user_id: str) -> str:
        if user_id not in self._users:
            try:
                user = self._client.users_info(user=user_id)["user"]
                self._users[user_id] = slack_mapping.user_name_from_json(user)
            except SlackApiError as exc:
                if exc.response.get("error") != "user_not_found":
                    raise slack_error(exc, action=f"look up Slack user {user_id}") from exc
                self._users[user_id] = slack_mapping.UNKNOWN_USER
            except (SlackClientError, OSError) as exc:
                raise slack_error(exc, action=f"look up Slack user {user_id}") from exc
        return self._users[user_id]

    def _channel_name(self, channel_id: str) -> str | None:
        """A mentioned channel's name; None for one the bot cannot see (private, deleted)."""
        if channel_id not in self._channel_names:
            try:
                info = self._client.conversations_info(channel=channel_id)["channel"]
                self._channel_names[channel_id] = info.get("name")
                self._archived[channel_id] = bool(info.get("is_archived"))
            except SlackApiError as exc:
                if exc.response.get("error") != "channel_not_found":
                    raise slack_error(exc, action=f"look up channel {channel_id}") from exc
                self._channel_names[channel_id] = None
            except (SlackClientError, OSError) as exc:
                raise slack_error(exc, action=f"look up channel {channel_id}") from exc
        return self._channel_names[channel_id]

    def _is_archived(self, channel_id: str) -> bool:
        """Asked only when reading failed, to say why: a failed look-up just means "not known to be"."""
        if channel_id not in self._archived:
            try:
                self._channel_name(channel_id)
            except PostmortemError:
                return False
        return self._archived.get(channel_id, False)

    # -- pagination -----------------------------------------------------------------------------
    def _pages(
        self,
        method: Callable[..., Any],
        *,
        key: str,
        action: str,
        where: str | None = None,
        tolerate: frozenset[str] | set[str] = frozenset(),
        **params: Any,
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page's `key` list, following next_cursor to the end. An error in `tolerate` ends it quietly."""
        cursor: str | None = None
        while True:
            try:
                response = method(limit=self._page_size, cursor=cursor, **params)
            except SlackApiError as exc:
                if exc.response.get("error") in tolerate:
                    return
                raise slack_error(exc, action=action, channel=where) from exc
            except (SlackClientError, OSError) as exc:
                raise slack_error(exc, action=action, channel=where) from exc
            yield list(response.get(key) or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return

    @staticmethod
    def _message(message: dict[str, Any], channel_id: str, workspace_url: str | None) -> ChatMessage:
        return slack_mapping.message_from_json(message, channel_id=channel_id, workspace_url=workspace_url)
