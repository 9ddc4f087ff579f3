"""Live capture: every message, edit, deletion, pin, reaction and membership event of a channel the bot is
in goes to the capture store (bot/store/capture.py) as it arrives, so a draft reads little history.

`record_event` maps one Events API event (the `event` object of the callback) to the store;
`LiveCapture.handle` calls it for the listeners — the `message` listener in listeners/events.py (Bolt
runs only the first listener matching an event, so capture shares that one) and those registered in
listeners/capture.py for pins, reactions and memberships.

Events carry the Slack ts they happened at (`event_ts`; a new message's own `ts`): that is the version the
store compares, so redeliveries and events overtaking each other leave the same rows.
Bolt drops the bot's own events before any listener (`IgnoringSelfEvents`) except its joins and leaves:
the bot's own posts are not captured — they are noise in a timeline anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bot.errors import StoreError
from bot.sources import slack_mapping
from bot.timeline.models import ChatMessage, datetime_to_slack_ts

log = logging.getLogger(__name__)

# message subtypes whose `message` is the changed message's new copy
_CHANGED = frozenset({"message_changed", "message_replied"})
CAPTURED_EVENTS = (
    "pin_added",
    "pin_removed",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
    "member_left_channel",
)


class CaptureStore(Protocol):
    """The writing half of `bot.store.capture.CaptureRepository`."""

    def record_message(
        self,
        *,
        message: ChatMessage,
        version: str,
        now: datetime,
        pinned: bool | None = None,
        reactions: Mapping[str, Sequence[str]] | None = None,
    ) -> None: ...

    def record_deletion(self, *, channel_id: str, ts: str, now: datetime) -> None: ...

    def record_pin(self, *, channel_id: str, ts: str, pinned: bool, version: str, now: datetime) -> None: ...

    def record_reaction(
        self, *, channel_id: str, ts: str, name: str, user_id: str, present: bool, version: str, now: datetime
    ) -> None: ...

    def record_membership(
        self, *, channel_id: str, member: bool, version: str, replica: str, now: datetime
    ) -> None: ...

    def touch(self, *, channel_id: str, replica: str, now: datetime, version: str | None = None) -> bool: ...


class LiveStore(CaptureStore, Protocol):
    def heartbeat(self, *, replica: str, now: datetime) -> int: ...


def record_event(
    store: CaptureStore, event: Mapping[str, Any], *, bot_user_id: str | None, replica: str, now: datetime
) -> bool:
    """Apply one event to the store; False for an event that says nothing capture keeps."""
    kind = event.get("type")
    version = str(event.get("event_ts") or event.get("ts") or datetime_to_slack_ts(now))
    if kind == "message":
        channel_id = event.get("channel")
        if not channel_id or not _message(store, event, channel_id=channel_id, version=version, now=now):
            return False
    elif kind in ("pin_added", "pin_removed"):
        channel_id = event.get("channel_id") or (event.get("item") or {}).get("channel")
        if not channel_id or not _pin(store, event, channel_id=channel_id, version=version, now=now):
            return False
    elif kind in ("reaction_added", "reaction_removed"):
        item = event.get("item") or {}
        channel_id = item.get("channel")
        if item.get("type") != "message" or not channel_id or not item.get("ts") or not event.get("reaction"):
            return False  # files and file comments: not channel messages
        store.record_reaction(
            channel_id=channel_id, ts=item["ts"], name=event["reaction"], user_id=event.get("user") or "",
            present=kind == "reaction_added", version=version, now=now,
        )  # fmt: skip
    elif kind in ("member_joined_channel", "member_left_channel"):
        channel_id = event.get("channel")
        if not channel_id:
            return False
        if bot_user_id is not None and event.get("user") == bot_user_id:
            joined = kind == "member_joined_channel"
            store.record_membership(
                channel_id=channel_id, member=joined, version=version, replica=replica, now=now
            )
            return True
    else:
        return False
    # Slack sends a channel's events only to its members: this one proves the bot is in, and connected.
    store.touch(channel_id=channel_id, replica=replica, now=now, version=version)
    return True


def _message(
    store: CaptureStore, event: Mapping[str, Any], *, channel_id: str, version: str, now: datetime
) -> bool:
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        if not event.get("deleted_ts"):
            return False
        store.record_deletion(channel_id=channel_id, ts=event["deleted_ts"], now=now)
        return True
    if subtype in _CHANGED:
        copy = event.get("message") or {}
        if not copy.get("ts"):
            return False
        _record_copy(store, copy, channel_id=channel_id, version=version, now=now)
        return True
    if not event.get("ts"):
        return False
    # A new message: its own ts is its version (an edit's event ts is always later).
    _record_copy(store, event, channel_id=channel_id, version=event["ts"], now=now)
    return True


def _pin(
    store: CaptureStore, event: Mapping[str, Any], *, channel_id: str, version: str, now: datetime
) -> bool:
    item = event.get("item") or {}
    copy = item.get("message") or {}
    ts = copy.get("ts") or item.get("ts")
    if item.get("type", "message") != "message" or not ts:
        return False
    pinned = event.get("type") == "pin_added"
    if copy:  # the pinned message as it is now: fills a message captured before or never seen
        _record_copy(store, copy, channel_id=channel_id, version=version, now=now, with_pin=False)
    store.record_pin(channel_id=channel_id, ts=ts, pinned=pinned, version=version, now=now)
    return True


def _record_copy(
    store: CaptureStore,
    copy: Mapping[str, Any],
    *,
    channel_id: str,
    version: str,
    now: datetime,
    with_pin: bool = True,
) -> None:
    """A message object as of `version`. Its pins and reactions count only when the copy lists them."""
    message = slack_mapping.message_from_json(dict(copy), channel_id=channel_id, workspace_url=None)
    pinned = channel_id in (copy.get("pinned_to") or ()) if with_pin and "pinned_to" in copy else None
    reactions = (
        {r["name"]: list(r.get("users") or ()) for r in copy.get("reactions") or () if r.get("name")}
        if "reactions" in copy
        else None
    )
    store.record_message(message=message, version=version, now=now, pinned=pinned, reactions=reactions)


class LiveCapture:
    """This replica's capture: applies events, keeps the ones the store refused for another try, and
    extends the coverage of every channel the bot is in while the Socket Mode link is up.

    A channel is touched (its coverage extended) only once every event of it that reached this replica is
    stored: events the database refused wait here (they apply in any order) and go first on the next event
    or heartbeat. Only a replica that dies holding some loses them — coverage may then claim a message the
    store lacks; everything else leaves a gap that the history API fills.
    """

    def __init__(
        self,
        *,
        store: LiveStore,
        replica: str,
        clock: Callable[[], datetime],
        max_pending: int = 50_000,
    ) -> None:
        self.store = store
        self.replica = replica
        self._clock = clock
        self._max_pending = max_pending
        self._pending: deque[tuple[Mapping[str, Any], str | None, datetime]] = deque()
        self._lock = threading.Lock()
        self._connected: Callable[[], bool] | None = None

    def watch_connection(self, is_connected: Callable[[], bool]) -> None:
        """Heartbeats run only while `is_connected()` (the Socket Mode client's); until this is called,
        coverage grows with events alone and a quiet stretch longer than the grace becomes a gap."""
        self._connected = is_connected

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def handle(self, event: Mapping[str, Any], *, bot_user_id: str | None) -> None:
        """Capture one event; a store failure is logged and the event kept for the next try, never raised
        into the listener (its own work — the resolved prompt — goes on)."""
        now = self._clock()
        if not self._flush():
            self._keep(event, bot_user_id, now)
            return
        try:
            record_event(self.store, event, bot_user_id=bot_user_id, replica=self.replica, now=now)
        except StoreError as exc:
            log.warning("capture failed; kept for another try", extra=_log_fields(event, exc))
            self._keep(event, bot_user_id, now)

    def heartbeat(self) -> int:
        """Extend this replica's coverage of every channel the bot is in: only while connected and once
        no refused event is waiting. Returns how many channels were touched."""
        if self._connected is None or not self._connected() or not self._flush():
            return 0
        return self.store.heartbeat(replica=self.replica, now=self._clock())

    def _keep(self, event: Mapping[str, Any], bot_user_id: str | None, now: datetime) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                dropped, _, _ = self._pending.popleft()
                log.error("capture dropped an event: too many waiting", extra=_log_fields(dropped, None))
            self._pending.append((event, bot_user_id, now))

    def _flush(self) -> bool:
        """Store the waiting events; True when none is left."""
        with self._lock:
            waiting, self._pending = list(self._pending), deque()
        if not waiting:
            return True
        for index, (event, bot_user_id, at) in enumerate(waiting):
            try:
                record_event(self.store, event, bot_user_id=bot_user_id, replica=self.replica, now=at)
            except StoreError:
                with self._lock:
                    self._pending.extendleft(reversed(waiting[index:]))
                return False
        log.info("capture caught up", extra={"events": len(waiting)})
        return True


def _log_fields(event: Mapping[str, Any], error: Exception | None) -> dict[str, Any]:
    item = event.get("item") or {}
    channel = event.get("channel") or event.get("channel_id") or item.get("channel")
    fields = {"channel": channel, "type": event.get("type"), "subtype": event.get("subtype")}
    return fields | ({"error": str(error)} if error else {})
