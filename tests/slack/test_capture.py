"""Capture of Slack events into the store (bot/slack/capture.py): event shapes, membership, refused writes
kept for another try, and the heartbeat that runs only while connected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.errors import StoreError
from bot.slack.capture import LiveCapture, record_event
from bot.store.capture import CaptureRepository
from bot.timeline.models import ChatMessage, datetime_to_slack_ts
from tests.fakes.slack_events import BOT_USER, CHANNEL, member_event, message_event, pin_event, reaction_event

T0 = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)
GRACE = timedelta(minutes=3)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def one(moment: datetime, text: str = "hello", **fields) -> dict:  # noqa: ANN003 - message fields
    return {"user": "U01ANA", "type": "message", "ts": datetime_to_slack_ts(moment), "text": text} | fields


@pytest.fixture
def capture(engine: Engine) -> CaptureRepository:
    return CaptureRepository(engine, grace=GRACE)


class FlakyStore:
    """The real capture store behind a switch: while `down`, every call fails as an unreachable database."""

    def __init__(self, store: CaptureRepository) -> None:
        self.store = store
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("The database is unavailable: connection refused")

    def record_message(
        self,
        *,
        message: ChatMessage,
        version: str,
        now: datetime,
        pinned: bool | None = None,
        reactions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._check()
        self.store.record_message(
            message=message, version=version, now=now, pinned=pinned, reactions=reactions
        )

    def record_deletion(self, *, channel_id: str, ts: str, now: datetime) -> None:
        self._check()
        self.store.record_deletion(channel_id=channel_id, ts=ts, now=now)

    def record_pin(self, *, channel_id: str, ts: str, pinned: bool, version: str, now: datetime) -> None:
        self._check()
        self.store.record_pin(channel_id=channel_id, ts=ts, pinned=pinned, version=version, now=now)

    def record_reaction(self, **kwargs) -> None:  # noqa: ANN003 - CaptureRepository.record_reaction's
        self._check()
        self.store.record_reaction(**kwargs)

    def record_membership(self, **kwargs) -> None:  # noqa: ANN003 - CaptureRepository.record_membership's
        self._check()
        self.store.record_membership(**kwargs)

    def touch(self, **kwargs) -> bool:  # noqa: ANN003 - CaptureRepository.touch's
        self._check()
        return self.store.touch(**kwargs)

    def heartbeat(self, *, replica: str, now: datetime) -> int:
        self._check()
        return self.store.heartbeat(replica=replica, now=now)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def covered(capture: CaptureRepository, *, now: datetime) -> list[tuple[datetime, datetime]]:
    return capture.coverage(channel_id=CHANNEL, oldest=at(-60), latest=at(600), now=now)


def held(capture: CaptureRepository) -> list[str]:
    return [m.text for m in capture.messages(channel_id=CHANNEL, oldest=at(-60), latest=at(600))]


class TestRecordEvent:
    def test_bot_join_opens_coverage_and_leave_closes_it(self, capture: CaptureRepository) -> None:
        """member_joined_channel for the bot opens a span; member_left_channel closes it."""
        join = member_event(kind="member_joined_channel", user=BOT_USER, at=datetime_to_slack_ts(at(0)))
        leave = member_event(kind="member_left_channel", user=BOT_USER, at=datetime_to_slack_ts(at(5)))
        assert record_event(capture, join, bot_user_id=BOT_USER, replica="r1", now=at(0))
        assert record_event(capture, leave, bot_user_id=BOT_USER, replica="r1", now=at(5))
        assert not capture.touch(channel_id=CHANNEL, replica="r1", now=at(6))
        assert covered(capture, now=at(6)) == [(at(0), at(0))]

    def test_someone_else_joining_proves_membership(self, capture: CaptureRepository) -> None:
        """Another member's join reaches only members: the bot is in, and this replica's span opens."""
        join = member_event(kind="member_joined_channel", user="U04DEE", at=datetime_to_slack_ts(at(1)))
        assert record_event(capture, join, bot_user_id=BOT_USER, replica="r1", now=at(1))
        assert covered(capture, now=at(2)) == [(at(1), at(2))]

    def test_file_reactions_and_other_events_are_ignored(self, capture: CaptureRepository) -> None:
        """A reaction to a file, an event without a channel, and unrelated types store nothing."""
        file_reaction = {"type": "reaction_added", "user": "U01ANA", "reaction": "eyes",
                         "item": {"type": "file", "file": "F0123"}, "event_ts": "1721469700.000100"}  # fmt: skip
        for event in (file_reaction, {"type": "message", "text": "no channel"}, {"type": "app_home_opened"}):
            assert not record_event(capture, event, bot_user_id=BOT_USER, replica="r1", now=at(0))
        assert covered(capture, now=at(0)) == [] and held(capture) == []

    def test_pin_with_the_message_copy_fills_an_unseen_message(self, capture: CaptureRepository) -> None:
        """pin_added carries the pinned message: a message the bot never saw posted is captured pinned."""
        message = one(at(1), "root cause: pool size", pinned_to=[CHANNEL])
        pin = pin_event(kind="pin_added", message=message, user="U01ANA", at=datetime_to_slack_ts(at(2)))
        record_event(capture, pin, bot_user_id=BOT_USER, replica="r1", now=at(2))
        (stored,) = capture.messages(channel_id=CHANNEL, oldest=at(0), latest=at(9))
        assert (stored.text, stored.pinned) == ("root cause: pool size", True)

    def test_reaction_before_its_message_waits_in_a_placeholder(self, capture: CaptureRepository) -> None:
        """A reaction to a message not yet seen is kept; the message, when it comes, shows it."""
        message = one(at(1))
        reaction = reaction_event(
            kind="reaction_added", message=message, name="eyes", user="U02BEN", at=datetime_to_slack_ts(at(2))
        )
        record_event(capture, reaction, bot_user_id=BOT_USER, replica="r1", now=at(2))
        assert held(capture) == []  # a placeholder is not a message
        record_event(capture, message_event(message), bot_user_id=BOT_USER, replica="r1", now=at(2))
        assert [m.reactions for m in capture.messages(channel_id=CHANNEL, oldest=at(0), latest=at(9))] == [
            ("eyes",)
        ]


class TestLiveCapture:
    def test_refused_events_are_kept_and_stored_later(self, capture: CaptureRepository) -> None:
        """While the database refuses, events wait and coverage does not grow; the next event stores them
        all, then extends coverage."""
        flaky, clock = FlakyStore(capture), Clock(at(0))
        live = LiveCapture(store=flaky, replica="r1", clock=clock)
        live.handle(message_event(one(at(0), "first")), bot_user_id=BOT_USER)
        flaky.down, clock.now = True, at(1)
        live.handle(message_event(one(at(1), "second")), bot_user_id=BOT_USER)
        assert live.pending == 1
        flaky.down, clock.now = False, at(2)
        live.handle(message_event(one(at(2), "third")), bot_user_id=BOT_USER)
        assert live.pending == 0
        assert held(capture) == ["first", "second", "third"]
        assert covered(capture, now=at(2)) == [(at(0), at(2))]

    def test_heartbeat_runs_only_while_connected(self, capture: CaptureRepository) -> None:
        """No connection check attached, or the link down: no heartbeat. Connected: member channels extend."""
        clock = Clock(at(0))
        live = LiveCapture(store=capture, replica="r1", clock=clock)
        live.handle(message_event(one(at(0))), bot_user_id=BOT_USER)
        clock.now = at(2)
        assert live.heartbeat() == 0
        connected = [False]
        live.watch_connection(lambda: connected[0])
        assert live.heartbeat() == 0
        connected[0] = True
        assert live.heartbeat() == 1
        assert covered(capture, now=at(30)) == [(at(0), at(2))]

    def test_heartbeat_stores_refused_events_first(self, capture: CaptureRepository) -> None:
        """A heartbeat stores the waiting events before it extends coverage, and extends nothing while it
        cannot."""
        flaky, clock = FlakyStore(capture), Clock(at(0))
        live = LiveCapture(store=flaky, replica="r1", clock=clock)
        live.watch_connection(lambda: True)
        live.handle(message_event(one(at(0))), bot_user_id=BOT_USER)
        flaky.down = True
        live.handle(message_event(one(at(1), "waiting")), bot_user_id=BOT_USER)
        clock.now = at(2)
        assert live.heartbeat() == 0 and live.pending == 1
        flaky.down = False
        assert live.heartbeat() == 1 and live.pending == 0
        assert "waiting" in held(capture)
        assert covered(capture, now=at(30)) == [(at(0), at(2))]

    def test_too_many_waiting_events_drop_the_oldest(self, capture: CaptureRepository, caplog) -> None:  # noqa: ANN001
        """Past `max_pending`, the oldest waiting event is dropped, with an error in the log."""
        flaky = FlakyStore(capture)
        live = LiveCapture(store=flaky, replica="r1", clock=Clock(at(0)), max_pending=2)
        flaky.down = True
        for minute in range(3):
            live.handle(message_event(one(at(minute), f"m{minute}")), bot_user_id=BOT_USER)
        assert live.pending == 2
        assert any("dropped" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        flaky.down = False
        live.handle(message_event(one(at(3), "m3")), bot_user_id=BOT_USER)
        assert held(capture) == ["m1", "m2", "m3"]
