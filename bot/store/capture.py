"""Live capture in the store: an incident channel's messages as their events arrive, and when capture ran.

Events come in any order and more than once (Slack retries, several replicas), so every write is an
upsert keyed by (channel, ts) that compares the Slack ts of the event that set each part of the row
(content, pin, each person's reaction) and keeps the newest. An edit, pin or reaction seen before its
message leaves a placeholder the message later fills; a deletion leaves a content-free tombstone that no
late copy can bring back. Text is redacted before it is written.

Coverage: while a replica is connected and the bot is a member, it extends a *span* of the channel
(every event it handles touches it, and a heartbeat job touches every channel the bot is in). A span
whose replica died goes stale, and one the bot left is closed; what lies between spans is the stretch a
draft must read from the history API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.analysis.redaction import redact_text
from bot.errors import StoreError
from bot.store.db import transaction
from bot.store.models import (
    CaptureChannelRow,
    CapturedMessageRow,
    CaptureSpanRow,
    DraftRow,
    DraftStatus,
)
from bot.timeline.models import ChatMessage, datetime_to_slack_ts, slack_ts_to_datetime

Interval = tuple[datetime, datetime]
_T = TypeVar("_T")
_FINAL = (DraftStatus.PUBLISHED, DraftStatus.DISCARDED)


def ts_key(ts: str) -> tuple[int, int]:
    """A Slack ts as (seconds, microseconds): exact ordering, which floats are not at this precision."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int((fraction + "000000")[:6])


def _newer(version: str, than: str | None) -> bool:
    """Whether an event at `version` may overwrite a part last set at `than` (ties apply: idempotent)."""
    return than is None or ts_key(version) >= ts_key(than)


@dataclass(frozen=True)
class PurgeResult:
    channels: int
    messages: int


class CaptureRepository:
    """The capture tables (see bot/store/models.py), on the same engine as `Repository`.

    `grace`: how long a span may go untouched and still be extended (or count as live up to now);
    longer than the heartbeat interval, so a quiet channel stays covered while its replica is up.
    """

    def __init__(self, engine: Engine, *, grace: timedelta = timedelta(minutes=3)) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.grace = grace

    def _session(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    # -- messages: every method is idempotent and may run before or after the others ------------------
    def record_message(
        self,
        *,
        message: ChatMessage,
        version: str,
        now: datetime,
        pinned: bool | None = None,
        reactions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """The message as of the event at `version` (its ts when posted, the change's ts when edited).

        `pinned` and `reactions` (name -> users) only when the event's copy says so: absent, they say nothing.
        """
        redacted = redact_text(message.text)

        def apply(row: CapturedMessageRow) -> None:
            if _newer(version, row.content_version):
                row.content_version = version
                row.user_id, row.bot_id, row.subtype = message.user_id, message.bot_id, message.subtype
                row.thread_ts, row.reply_count = message.thread_ts, message.reply_count
                row.text, row.redactions = redacted.text, json.dumps(redacted.counts, sort_keys=True)
                row.edited = message.edited
            if pinned is not None:
                _set_pin(row, pinned=pinned, version=version)
            if reactions is not None:
                row.reactions = json.dumps(_snapshot_reactions(_reactions(row), reactions, version))

        self._change(channel_id=message.channel_id, ts=message.ts, now=now, apply=apply)

    def record_deletion(self, *, channel_id: str, ts: str, now: datetime) -> None:
        """The message is gone: its content leaves the store; a tombstone keeps late copies out."""

        def apply(row: CapturedMessageRow) -> None:
            row.user_id = row.bot_id = row.subtype = row.thread_ts = None
            row.text, row.redactions, row.reactions, row.reply_count = "", "{}", "{}", 0
            row.edited = row.pinned = False

        self._change(channel_id=channel_id, ts=ts, now=now, apply=apply, delete=True)

    def record_pin(self, *, channel_id: str, ts: str, pinned: bool, version: str, now: datetime) -> None:
        self._change(
            channel_id=channel_id,
            ts=ts,
            now=now,
            apply=lambda row: _set_pin(row, pinned=pinned, version=version),
        )

    def record_reaction(
        self, *, channel_id: str, ts: str, name: str, user_id: str, present: bool, version: str, now: datetime
    ) -> None:
        def apply(row: CapturedMessageRow) -> None:
            reactions = _reactions(row)
            seen = reactions.setdefault(name, {}).get(user_id)
            if seen is None or _newer(version, seen[1]):
                reactions[name][user_id] = [present, version]
                row.reactions = json.dumps(reactions)

        self._change(channel_id=channel_id, ts=ts, now=now, apply=apply)

    def _change(
        self,
        *,
        channel_id: str,
        ts: str,
        now: datetime,
        apply: Callable[[CapturedMessageRow], None],
        delete: bool = False,
    ) -> None:
        """Lock the row (or create a placeholder) and apply; a tombstone takes nothing more."""

        def change(session: Session) -> None:
            row = session.get(CapturedMessageRow, (channel_id, ts), with_for_update=True)
            if row is None:
                row = _placeholder(channel_id=channel_id, ts=ts, now=now)
                session.add(row)
            if row.deleted:
                return
            apply(row)
            if delete:
                row.deleted, row.content_version, row.pin_version = True, None, None
            row.captured_at = now

        self._retrying(change, what=f"message {ts} of {channel_id}")

    # -- reading ----------------------------------------------------------------------------------------
    def messages(self, *, channel_id: str, oldest: datetime, latest: datetime) -> list[ChatMessage]:
        """The captured messages posted in [oldest, latest]: top-level ones, and the replies of threads
        whose parent was posted in it, as conversations.history and .replies would list them."""
        with self._session() as session:
            in_window = list(
                session.scalars(
                    select(CapturedMessageRow).where(
                        CapturedMessageRow.channel_id == channel_id,
                        CapturedMessageRow.posted_at >= oldest,
                        CapturedMessageRow.posted_at <= latest,
                        CapturedMessageRow.content_version.is_not(None),
                    )
                )
            )
            parents = [r.ts for r in in_window if not _is_reply(r)]
            # Every reply of those threads, whenever posted: a parent counts them all (thread_ts, reply_count).
            replies_of: dict[str, int] = {}
            for chunk in _chunks(parents, 500):
                for thread_ts, ts in session.execute(
                    select(CapturedMessageRow.thread_ts, CapturedMessageRow.ts).where(
                        CapturedMessageRow.channel_id == channel_id,
                        CapturedMessageRow.thread_ts.in_(chunk),
                        CapturedMessageRow.content_version.is_not(None),
                    )
                ):
                    if ts != thread_ts:
                        replies_of[thread_ts] = replies_of.get(thread_ts, 0) + 1
        window = (ts_key(datetime_to_slack_ts(oldest)), ts_key(datetime_to_slack_ts(latest)))
        result = []
        for row in in_window:
            parent_inside = window[0] <= ts_key(row.thread_ts or "") <= window[1]
            if _is_reply(row) and not parent_inside and row.subtype != "thread_broadcast":
                continue  # its parent is outside the window: history would not list it either
            replies = replies_of.get(row.ts, 0)
            result.append(_message(row, replies=replies))
        return sorted(result, key=lambda m: ts_key(m.ts))

    # -- membership and coverage ------------------------------------------------------------------------
    def record_membership(
        self, *, channel_id: str, member: bool, version: str, replica: str, now: datetime
    ) -> None:
        """The bot joined (this replica's span opens) or left (every span of the channel closes), as of
        the event's ts `version`. A join or leave older than the last one known changes nothing."""

        def change(session: Session) -> None:
            if not _set_member(session, channel_id=channel_id, member=member, version=version, now=now):
                return
            if member:
                self._extend(session, channel_id=channel_id, replica=replica, now=now)
            else:
                session.execute(
                    update(CaptureSpanRow)
                    .where(CaptureSpanRow.channel_id == channel_id, CaptureSpanRow.closed.is_(False))
                    .values(closed=True)
                )

        self._retrying(change, what=f"membership of {channel_id}")

    def touch(self, *, channel_id: str, replica: str, now: datetime, version: str | None = None) -> bool:
        """This replica is connected now and the bot is in the channel: extend (or open) its span.

        `version`: the ts of an event of the channel that just arrived, which proves membership then
        (Slack sends a channel's events only to members). Without it, only a known member is touched.
        False when the bot is not (or no longer) a member."""

        def change(session: Session) -> bool:
            if version is not None:
                _set_member(session, channel_id=channel_id, member=True, version=version, now=now)
            channel = session.get(CaptureChannelRow, channel_id)
            if channel is None or not channel.member:
                return False
            self._extend(session, channel_id=channel_id, replica=replica, now=now)
            return True

        return self._retrying(change, what=f"coverage of {channel_id}")

    def heartbeat(self, *, replica: str, now: datetime) -> int:
        """This replica is connected: extend its span of every channel the bot is in. Returns how many."""
        with self._session() as session:
            channels = list(
                session.scalars(
                    select(CaptureChannelRow.channel_id).where(CaptureChannelRow.member.is_(True))
                )
            )
        return sum(self.touch(channel_id=channel_id, replica=replica, now=now) for channel_id in channels)

    def coverage(
        self, *, channel_id: str, oldest: datetime, latest: datetime, now: datetime
    ) -> list[Interval]:
        """The stretches of [oldest, latest] during which some replica captured the channel, merged.
        A span still live (open, touched within `grace`) covers up to `now`."""
        live_since = now - self.grace
        with self._session() as session:
            spans = list(
                session.scalars(
                    select(CaptureSpanRow).where(
                        CaptureSpanRow.channel_id == channel_id,
                        CaptureSpanRow.started_at <= latest,
                        or_(
                            CaptureSpanRow.last_seen_at >= oldest,
                            and_(CaptureSpanRow.closed.is_(False), CaptureSpanRow.last_seen_at >= live_since),
                        ),
                    )
                )
            )
        intervals = []
        for span in spans:
            live = not span.closed and span.last_seen_at >= live_since
            start = max(span.started_at, oldest)
            end = min(max(span.last_seen_at, now) if live else span.last_seen_at, latest)
            if start <= end:
                intervals.append((start, end))
        return merge_intervals(intervals)

    def _extend(self, session: Session, *, channel_id: str, replica: str, now: datetime) -> None:
        span = session.scalars(
            select(CaptureSpanRow)
            .where(
                CaptureSpanRow.channel_id == channel_id,
                CaptureSpanRow.replica == replica,
                CaptureSpanRow.closed.is_(False),
            )
            .order_by(CaptureSpanRow.last_seen_at.desc())
            .limit(1)
            .with_for_update()
        ).first()
        if span is not None and span.started_at <= now and span.last_seen_at >= now - self.grace:
            span.last_seen_at = max(span.last_seen_at, now)
        else:  # first touch, or this replica was away longer than `grace`: a gap, then a new span
            session.add(
                CaptureSpanRow(
                    channel_id=channel_id, replica=replica, started_at=now, last_seen_at=now, closed=False
                )
            )

    def _retrying(self, change: Callable[[Session], _T], *, what: str) -> _T:
        """Run `change` in one transaction; a concurrent insert of the same key makes it run again."""
        for attempt in range(3):
            try:
                with self._session() as session:
                    return change(session)
            except IntegrityError:
                if attempt == 2:
                    raise StoreError(f"Could not record the {what}") from None
        raise AssertionError("unreachable")

    # -- retention --------------------------------------------------------------------------------------
    def purge_captured(self, *, now: datetime, older_than: timedelta) -> PurgeResult:
        """Forget what was captured `older_than` ago and is no evidence of a postmortem still kept.

        A channel with a draft under review keeps everything. A channel whose drafts all ended more than
        `older_than` ago, or that never had one, loses what was posted more than `older_than` ago. A channel
        with a draft that ended more recently keeps that draft's evidence until its own retention runs out:
        it loses only what was posted before an older draft's end. The coverage of a purged stretch goes
        too, so a later draft reads it back from the history API instead of finding it missing."""
        cutoff = now - older_than
        with self._session() as session:
            drafts = session.execute(
                select(DraftRow.channel_id, DraftRow.status, DraftRow.updated_at).where(
                    DraftRow.channel_id.is_not(None)
                )
            ).all()
            captured = set(session.scalars(select(CapturedMessageRow.channel_id).distinct())) | set(
                session.scalars(select(CaptureSpanRow.channel_id).distinct())
            )
        ends: dict[str, list[datetime]] = {}
        open_channels = set()
        for channel_id, status, updated_at in drafts:
            if status in _FINAL:
                ends.setdefault(channel_id, []).append(updated_at)
            else:
                open_channels.add(channel_id)
        until: dict[str, datetime] = {}
        for channel_id in captured - open_channels:
            ended = ends.get(channel_id, [])
            if all(end <= cutoff for end in ended):
                until[channel_id] = cutoff
            elif old := [end for end in ended if end <= cutoff]:
                until[channel_id] = max(old)
        purged = 0
        channels = 0
        for channel_id, end in sorted(until.items()):
            with self._session() as session:
                gone = session.execute(
                    delete(CapturedMessageRow).where(
                        CapturedMessageRow.channel_id == channel_id, CapturedMessageRow.posted_at <= end
                    )
                ).rowcount
                session.execute(
                    delete(CaptureSpanRow).where(
                        CaptureSpanRow.channel_id == channel_id, CaptureSpanRow.last_seen_at <= end
                    )
                )
                # A span reaching past the purge keeps only its later part: the rest is no longer held.
                session.execute(
                    update(CaptureSpanRow)
                    .where(CaptureSpanRow.channel_id == channel_id, CaptureSpanRow.started_at < end)
                    .values(started_at=end)
                )
            purged += gone
            channels += 1 if gone else 0
        return PurgeResult(channels=channels, messages=purged)


def _set_member(session: Session, *, channel_id: str, member: bool, version: str, now: datetime) -> bool:
    """Record membership as of `version` unless a newer join or leave is known; True when the channel's
    state is now this one (recorded, or the same event seen again)."""
    row = session.get(CaptureChannelRow, channel_id, with_for_update=True)
    if row is None:
        session.add(CaptureChannelRow(channel_id=channel_id, member=member, version=version, updated_at=now))
        session.flush()  # a concurrent first event of the channel fails here, and the caller runs again
        return True
    if row.version == version:
        return row.member == member
    if not _newer(version, row.version):
        return False
    row.member, row.version, row.updated_at = member, version, now
    return True


def merge_intervals(intervals: Sequence[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# -- rows ------------------------------------------------------------------------------------------------


def _placeholder(*, channel_id: str, ts: str, now: datetime) -> CapturedMessageRow:
    return CapturedMessageRow(
        channel_id=channel_id, ts=ts, posted_at=slack_ts_to_datetime(ts), thread_ts=None, user_id=None,
        bot_id=None, subtype=None, text="", redactions="{}", reply_count=0, edited=False, content_version=None,
        pinned=False, pin_version=None, reactions="{}", deleted=False, captured_at=now,
    )  # fmt: skip


def _set_pin(row: CapturedMessageRow, *, pinned: bool, version: str) -> None:
    if _newer(version, row.pin_version):
        row.pinned, row.pin_version = pinned, version


def _reactions(row: CapturedMessageRow) -> dict[str, dict[str, list]]:
    return json.loads(row.reactions or "{}")


def _snapshot_reactions(
    known: dict[str, dict[str, list]], snapshot: Mapping[str, Sequence[str]], version: str
) -> dict[str, dict[str, list]]:
    """A message copy lists every reaction as of `version`: who it names has reacted, anyone else known
    from an older event has not."""
    for name, users in snapshot.items():
        for user_id in users:
            seen = known.setdefault(name, {}).get(user_id)
            if seen is None or _newer(version, seen[1]):
                known[name][user_id] = [True, version]
    for name, users in known.items():
        for user_id, (present, seen_version) in users.items():
            if present and user_id not in snapshot.get(name, ()) and ts_key(seen_version) < ts_key(version):
                users[user_id] = [False, version]
    return known


def _reaction_names(row: CapturedMessageRow) -> tuple[str, ...]:
    """Names with at least one person still reacting, in the order they were first added."""
    firsts = []
    for name, users in _reactions(row).items():
        present = [ts_key(version) for on, version in users.values() if on]
        if present:
            firsts.append((min(present), name))
    return tuple(name for _, name in sorted(firsts))


def _is_reply(row: CapturedMessageRow) -> bool:
    return row.thread_ts is not None and row.thread_ts != row.ts


def _message(row: CapturedMessageRow, *, replies: int) -> ChatMessage:
    thread_ts = row.thread_ts or (row.ts if replies else None)
    return ChatMessage(
        ts=row.ts,
        channel_id=row.channel_id,
        user_id=row.user_id,
        bot_id=row.bot_id,
        subtype=row.subtype,
        text=row.text,
        thread_ts=thread_ts,
        reply_count=max(row.reply_count, replies),
        edited=row.edited,
        pinned=row.pinned,
        reactions=_reaction_names(row),
        redactions=json.loads(row.redactions or "{}"),
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
