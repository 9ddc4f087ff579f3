"""The incident channel's history from live capture, with the history API asked only for what was missed.

While the bot is in a channel, its message events are recorded as they happen (bot/store/capture.py).
At draft time `CapturedChatSource.get_history` takes the captured messages for the stretches capture
covered and asks the history API only for the rest — before the bot joined, while every replica was
down — one `get_history` per uncovered stretch. A long incident's draft then costs a few calls instead of
one per page and thread.

Within a stretch it read, the history API's answer is the truth (it is read now, captured copies may be
stale or deleted since): captured copies of what it can list there are dropped. It cannot list a reply
posted in a stretch to a thread whose parent lies outside it: such a reply is kept when captured and
otherwise missing. Threads are not re-read for every stretch on purpose — one call per thread per stretch
is the very cost capture saves (1 call a minute for apps outside the Marketplace).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from bot.sources import slack_mapping
from bot.sources.base import ChatHistory, ChatSource
from bot.timeline.models import Channel, ChatMessage, Incident, slack_ts_to_datetime

Interval = tuple[datetime, datetime]


class CapturedMessages(Protocol):
    """What this source reads of the capture store (`bot.store.capture.CaptureRepository`)."""

    def coverage(
        self, *, channel_id: str, oldest: datetime, latest: datetime, now: datetime
    ) -> Sequence[Interval]: ...

    def messages(self, *, channel_id: str, oldest: datetime, latest: datetime) -> Sequence[ChatMessage]: ...


class LiveChat(ChatSource, Protocol):
    """The history API source (`SlackHistorySource`), with what it offers for messages held elsewhere."""

    def workspace_url(self) -> str | None: ...

    def describe(self, *, channel: Channel, messages: Sequence[ChatMessage]) -> ChatHistory: ...


def uncovered(oldest: datetime, latest: datetime, covered: Sequence[Interval]) -> list[Interval]:
    """[oldest, latest] minus the covered intervals (sorted, merged), as closed stretches."""
    gaps: list[Interval] = []
    cursor = oldest
    for start, end in covered:
        if end < cursor:
            continue
        if start > latest:
            break
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < latest:
        gaps.append((cursor, latest))
    return gaps


class CapturedChatSource:
    """`ChatSource` over live capture, falling back to `live` for the stretches capture missed."""

    def __init__(self, *, live: LiveChat, capture: CapturedMessages, clock: Callable[[], datetime]) -> None:
        self._live = live
        self._capture = capture
        self._clock = clock

    def find_incident_channel(self, incident: Incident) -> Channel | None:
        return self._live.find_incident_channel(incident)

    def get_channel(self, channel_id: str) -> Channel:
        return self._live.get_channel(channel_id)

    def get_history(self, *, channel: Channel, oldest: datetime, latest: datetime) -> ChatHistory:
        # Nothing is posted after now: a window reaching into the future ends here.
        end = min(latest, self._clock())
        covered = self._capture.coverage(channel_id=channel.id, oldest=oldest, latest=end, now=end)
        gaps = uncovered(oldest, end, covered)
        read: dict[str, ChatMessage] = {}
        for gap_start, gap_end in gaps:
            for message in self._live.get_history(channel=channel, oldest=gap_start, latest=gap_end).messages:
                read[message.ts] = message
        workspace_url = self._live.workspace_url()
        merged = dict(read)
        for message in self._capture.messages(channel_id=channel.id, oldest=oldest, latest=end):
            if message.ts in read or _listed_by(message, gaps):
                continue
            merged[message.ts] = _with_permalink(message, workspace_url)
        return self._live.describe(channel=channel, messages=list(merged.values()))


def _listed_by(message: ChatMessage, gaps: Sequence[Interval]) -> bool:
    """Whether the history API's read of some gap would have listed this message (so its answer wins):
    a top-level message posted in the gap, or a reply posted in it to a parent posted in it."""
    at = message.at
    # A reply also sent to the channel is listed with the top-level messages.
    in_thread = message.is_reply and message.subtype != "thread_broadcast"
    parent_at = slack_ts_to_datetime(message.thread_ts or message.ts) if in_thread else at
    return any(start <= at <= end and start <= parent_at <= end for start, end in gaps)


def _with_permalink(message: ChatMessage, workspace_url: str | None) -> ChatMessage:
    if message.permalink or not workspace_url:
        return message
    link = slack_mapping.permalink(
        workspace_url=workspace_url, channel_id=message.channel_id, ts=message.ts, thread_ts=message.thread_ts
    )
    return message.model_copy(update={"permalink": link})
