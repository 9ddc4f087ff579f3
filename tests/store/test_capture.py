"""Live capture in the store, on SQLite and PostgreSQL: events in any order, coverage, retention."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from bot.slack.capture import record_event
from bot.store.capture import CaptureRepository, merge_intervals
from bot.store.models import CapturedMessageRow, DraftStatus
from bot.store.repository import Repository
from bot.timeline.models import ChatMessage, datetime_to_slack_ts
from tests.fakes.slack_events import (
    BOT_USER,
    CHANNEL,
    changed_event,
    channel_events,
    deleted_event,
    history_as_captured,
    message_event,
    pin_event,
    reaction_event,
)

NOW = datetime(2024, 7, 20, 13, 30, tzinfo=UTC)
OLDEST = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)
LATEST = datetime(2024, 7, 20, 13, 15, tzinfo=UTC)
GRACE = timedelta(minutes=3)
T0 = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)
PARENT = "1721472600.000400"  # Ben's thread at 10:50, three replies


@pytest.fixture
def capture(engine: Engine) -> CaptureRepository:
    return CaptureRepository(engine, grace=GRACE)


def apply(capture: CaptureRepository, events, *, replica: str = "r1", now: datetime = NOW) -> None:  # noqa: ANN001
    for event in events:
        record_event(capture, event, bot_user_id=BOT_USER, replica=replica, now=now)


def read(capture: CaptureRepository) -> list[ChatMessage]:
    return capture.messages(channel_id=CHANNEL, oldest=OLDEST, latest=LATEST)


def one(ts: str, text: str = "hello", **fields) -> dict:  # noqa: ANN003 - message fields
    return {"user": "U01ANA", "type": "message", "ts": ts, "text": text, "team": "T07ACME00"} | fields


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class TestEventOrder:
    def test_sample_events_in_order_give_the_history(self, capture: CaptureRepository) -> None:
        """Every event of the sample channel, applied as they happened, leaves exactly the history's messages."""
        apply(capture, channel_events())
        assert [m.model_dump() for m in read(capture)] == history_as_captured()

    @pytest.mark.parametrize("seed", [1, 2, 3, "reversed"])
    def test_any_order_gives_the_same_messages(self, capture: CaptureRepository, seed: int | str) -> None:
        """Shuffled or reversed, the same events leave the same messages (edits, pins, reactions, threads)."""
        events = channel_events()
        if seed == "reversed":
            events.reverse()
        else:
            random.Random(seed).shuffle(events)
        apply(capture, events)
        assert [m.model_dump() for m in read(capture)] == history_as_captured()

    def test_redelivered_events_change_nothing(self, capture: CaptureRepository) -> None:
        """Every event delivered twice (Slack retries, two replicas) gives the same rows as once."""
        events = channel_events()
        apply(capture, events + events)
        assert [m.model_dump() for m in read(capture)] == history_as_captured()

    def test_edit_before_its_message_keeps_the_edit(self, capture: CaptureRepository) -> None:
        """A message_changed arriving first leaves the edited text; the late original does not overwrite it."""
        posted = one("1721474000.000100", "first wording")
        edited = one(
            "1721474000.000100", "second wording", edited={"user": "U01ANA", "ts": "1721474060.000000"}
        )
        apply(
            capture, [changed_event(edited, previous=posted, at="1721474060.000000"), message_event(posted)]
        )
        (message,) = read(capture)
        assert (message.text, message.edited) == ("second wording", True)

    def test_delete_before_its_message_keeps_it_deleted(self, capture: CaptureRepository) -> None:
        """A message_deleted arriving first leaves a tombstone the late message cannot bring back."""
        posted = one("1721474000.000100")
        apply(capture, [deleted_event(posted, at="1721474100.000000"), message_event(posted)])
        assert read(capture) == []

    def test_reply_before_its_parent_is_attached(self, capture: CaptureRepository) -> None:
        """A reply stored before its parent counts in the parent's thread once the parent arrives."""
        parent = one(PARENT, "p99 latency")
        reply = one("1721472660.000500", "on it", user="U02BEN", thread_ts=PARENT, parent_user_id="U01ANA")
        apply(capture, [message_event(reply)])
        # Kept: its parent may be read from the history API.
        assert [m.ts for m in read(capture)] == ["1721472660.000500"]
        apply(capture, [message_event(parent)])
        parent_read, reply_read = read(capture)
        assert (parent_read.thread_ts, parent_read.reply_count) == (PARENT, 1)
        assert (reply_read.ts, reply_read.thread_ts, reply_read.is_reply) == (
            "1721472660.000500",
            PARENT,
            True,
        )

    def test_unpin_then_older_pin_stays_unpinned(self, capture: CaptureRepository) -> None:
        """A pin older than the unpin already applied is ignored."""
        posted = one("1721474000.000100")
        apply(capture, [message_event(posted)])
        apply(capture, [pin_event(kind="pin_removed", message=posted, user="U01ANA", at="1721474200.000000")])
        apply(capture, [pin_event(kind="pin_added", message=posted, user="U01ANA", at="1721474100.000000")])
        assert read(capture)[0].pinned is False

    def test_reaction_removed_before_added_stays_removed(self, capture: CaptureRepository) -> None:
        """A reaction's removal overtaking its addition leaves no reaction; others' reactions stay."""
        posted = one("1721474000.000100")
        added = reaction_event(
            kind="reaction_added", message=posted, name="eyes", user="U02BEN", at="1721474100.0"
        )
        removed = reaction_event(
            kind="reaction_removed", message=posted, name="eyes", user="U02BEN", at="1721474200.0"
        )
        other = reaction_event(
            kind="reaction_added", message=posted, name="eyes", user="U03CAR", at="1721474150.0"
        )
        apply(capture, [removed, message_event(posted), other, added])
        assert read(capture)[0].reactions == ("eyes",)
        apply(
            capture,
            [
                reaction_event(
                    kind="reaction_removed", message=posted, name="eyes", user="U03CAR", at="1721474300.0"
                )
            ],
        )
        assert read(capture)[0].reactions == ()

    def test_parallel_writers_of_one_message_leave_one_row(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """Replicas recording the same message, its edit and reactions at once leave one consistent row."""
        posted = one("1721474000.000100", "first")
        edited = one("1721474000.000100", "second", edited={"user": "U01ANA", "ts": "1721474060.000000"})
        events = [
            message_event(posted),
            changed_event(edited, previous=posted, at="1721474060.000000"),
        ] * 4 + [
            reaction_event(
                kind="reaction_added", message=posted, name=f"emoji{i}", user=f"U0{i}X", at=f"172147410{i}.0"
            )
            for i in range(6)
        ]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(
                pool.map(lambda pair: apply(capture, [pair[1]], replica=f"r{pair[0] % 3}"), enumerate(events))
            )
        (message,) = read(capture)
        # Six read-modify-writes of one row at once: none may lose another's reaction.
        assert (message.text, message.edited) == ("second", True)
        assert message.reactions == tuple(f"emoji{i}" for i in range(6))
        with engine.connect() as conn:
            assert len(conn.execute(select(CapturedMessageRow.ts)).all()) == 1


class TestStoredText:
    def test_text_is_stored_redacted_with_its_counts(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """A pasted token never reaches the table; the count of what was removed is kept for the draft."""
        token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
        apply(capture, [message_event(one("1721474000.000100", f"use {token} to test"))])
        with engine.connect() as conn:
            stored = conn.execute(select(CapturedMessageRow.text)).scalar_one()
        assert token not in stored and "[REDACTED:github_token]" in stored
        assert read(capture)[0].redactions == {"github_token": 1}

    def test_deleted_message_leaves_no_content(self, capture: CaptureRepository, engine: Engine) -> None:
        """After message_deleted the row holds no text, author or reactions: only the tombstone's key."""
        posted = one("1721474000.000100", "password: hunter2 oops")
        apply(capture, [message_event(posted)])
        apply(
            capture,
            [
                reaction_event(
                    kind="reaction_added", message=posted, name="x", user="U02BEN", at="1721474010.0"
                )
            ],
        )
        apply(capture, [deleted_event(posted, at="1721474100.000000")])
        with engine.connect() as conn:
            row = conn.execute(select(CapturedMessageRow)).one()
        assert (row.deleted, row.text, row.user_id, row.reactions, row.content_version) == (
            True,
            "",
            None,
            "{}",
            None,
        )


class TestCoverage:
    def test_join_then_touches_cover_until_the_last_one(self, capture: CaptureRepository) -> None:
        """The bot's join opens a span; events and heartbeats extend it; a replica gone stale ends it."""
        join_ts = datetime_to_slack_ts(at(5))
        capture.record_membership(channel_id=CHANNEL, member=True, version=join_ts, replica="r1", now=at(5))
        for minute in range(6, 40, 2):
            assert capture.touch(channel_id=CHANNEL, replica="r1", now=at(minute))
        covered = capture.coverage(channel_id=CHANNEL, oldest=at(0), latest=at(120), now=at(100))
        assert covered == [(at(5), at(38))]

    def test_live_span_covers_up_to_now(self, capture: CaptureRepository) -> None:
        """A span touched within the grace counts as covering until now."""
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        for minute in (2, 4, 6, 8, 10):
            capture.touch(channel_id=CHANNEL, replica="r1", now=at(minute))
        covered = capture.coverage(channel_id=CHANNEL, oldest=at(-10), latest=at(60), now=at(12))
        assert covered == [(at(0), at(12))]

    def test_silence_longer_than_the_grace_leaves_a_gap(self, capture: CaptureRepository) -> None:
        """A replica away longer than the grace starts a new span: the time between is uncovered."""
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(2))
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(30))
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(32))
        covered = capture.coverage(channel_id=CHANNEL, oldest=at(0), latest=at(60), now=at(100))
        assert covered == [(at(0), at(2)), (at(30), at(32))]

    def test_replicas_cover_together(self, capture: CaptureRepository) -> None:
        """Spans of two replicas merge: one's gap is covered by the other."""
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(2))
        for minute in (1, 3, 5):
            capture.touch(channel_id=CHANNEL, replica="r2", now=at(minute))
        assert capture.coverage(channel_id=CHANNEL, oldest=at(0), latest=at(60), now=at(100)) == [
            (at(0), at(5))
        ]

    def test_leave_closes_and_an_older_event_does_not_reopen(self, capture: CaptureRepository) -> None:
        """After the bot leaves, nothing extends its spans; a late event from before the leave changes nothing,
        an event after a new invitation opens a new span."""
        capture.touch(channel_id=CHANNEL, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        capture.record_membership(
            channel_id=CHANNEL, member=False, version=datetime_to_slack_ts(at(1)), replica="r1", now=at(1)
        )
        assert not capture.touch(
            channel_id=CHANNEL, replica="r1", now=at(2), version=datetime_to_slack_ts(at(0.5))
        )
        assert capture.heartbeat(replica="r1", now=at(2)) == 0
        assert capture.coverage(channel_id=CHANNEL, oldest=at(0), latest=at(60), now=at(2)) == [
            (at(0), at(0))
        ]
        assert capture.touch(
            channel_id=CHANNEL, replica="r1", now=at(20), version=datetime_to_slack_ts(at(19))
        )
        covered = capture.coverage(channel_id=CHANNEL, oldest=at(0), latest=at(60), now=at(21))
        assert covered == [(at(0), at(0)), (at(20), at(21))]

    def test_heartbeat_touches_every_channel_the_bot_is_in(self, capture: CaptureRepository) -> None:
        """The heartbeat extends this replica's spans of member channels only."""
        for channel in ("C1", "C2", "C3"):
            capture.touch(channel_id=channel, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        capture.record_membership(
            channel_id="C3", member=False, version=datetime_to_slack_ts(at(1)), replica="r1", now=at(1)
        )
        assert capture.heartbeat(replica="r1", now=at(2)) == 2
        assert capture.coverage(channel_id="C1", oldest=at(0), latest=at(9), now=at(60)) == [(at(0), at(2))]
        assert capture.coverage(channel_id="C3", oldest=at(0), latest=at(9), now=at(60)) == [(at(0), at(0))]

    def test_intervals_merge(self) -> None:
        """Overlapping and touching intervals merge; disjoint ones stay apart, sorted."""
        merged = merge_intervals([(at(5), at(9)), (at(0), at(2)), (at(2), at(3)), (at(8), at(12))])
        assert merged == [(at(0), at(3)), (at(5), at(12))]


class TestRetention:
    def _draft(
        self, repo: Repository, *, draft_id: str, channel: str, status: DraftStatus, when: datetime
    ) -> None:
        repo.start_draft(
            draft_id=draft_id, incident_key=f"PD-{draft_id}", channel_id=channel, requested_by=None, now=when
        )
        if status is DraftStatus.DISCARDED:
            repo.fail(draft_id=draft_id, error="x", now=when)
            assert repo.discard(draft_id=draft_id, now=when)
        elif status is DraftStatus.PUBLISHED:
            repo.finish_publish(
                draft_id=draft_id,
                page_id="1",
                page_url="u",
                page_version=1,
                user_id="U1",
                body_version=1,
                now=when,
            )

    def _fill(self, capture: CaptureRepository, channel: str) -> None:
        capture.touch(channel_id=channel, replica="r1", now=at(0), version=datetime_to_slack_ts(at(0)))
        capture.touch(channel_id=channel, replica="r1", now=at(2))
        apply(capture, [message_event(one("1721469700.000100"), channel=channel)], now=at(2))  # 10:01:40

    def test_published_and_discarded_channels_are_purged_after_the_retention(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """Messages and coverage of channels whose drafts ended more than the retention ago are deleted;
        recent ones and channels under review keep theirs."""
        repo = Repository(engine)
        cases = {
            "C0PUBOLD": (DraftStatus.PUBLISHED, at(60)),
            "C0DISOLD": (DraftStatus.DISCARDED, at(60)),
            "C0PUBNEW": (DraftStatus.PUBLISHED, at(60) + timedelta(days=29)),
            "C0REVIEW": (DraftStatus.DRAFTING, at(60)),
        }
        for index, (channel, (status, when)) in enumerate(cases.items()):
            self._fill(capture, channel)
            self._draft(repo, draft_id=f"Q{index}", channel=channel, status=status, when=when)
        now = at(60) + timedelta(days=30, minutes=1)
        result = capture.purge_captured(now=now, older_than=timedelta(days=30))
        assert (result.channels, result.messages) == (2, 2)

        def held(channel: str) -> int:
            return len(capture.messages(channel_id=channel, oldest=at(0), latest=at(10)))

        assert {channel: held(channel) for channel in cases} == {
            "C0PUBOLD": 0, "C0DISOLD": 0, "C0PUBNEW": 1, "C0REVIEW": 1,
        }  # fmt: skip
        assert capture.coverage(channel_id="C0PUBOLD", oldest=at(0), latest=at(10), now=now) == []
        assert capture.coverage(channel_id="C0PUBNEW", oldest=at(0), latest=at(10), now=now) == [
            (at(0), at(2))
        ]
        assert capture.purge_captured(now=now, older_than=timedelta(days=30)).messages == 0

    def test_messages_after_the_postmortem_stay_until_their_own_retention(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """A reused channel: what was posted after the postmortem ended stays until it is itself older than
        the retention, then goes too."""
        repo = Repository(engine)
        self._fill(capture, "C0REUSED")
        self._draft(repo, draft_id="Q9", channel="C0REUSED", status=DraftStatus.DISCARDED, when=at(30))
        posted_at = at(30) + timedelta(days=2)
        later = one(datetime_to_slack_ts(posted_at))
        capture.touch(channel_id="C0REUSED", replica="r1", now=posted_at, version=later["ts"])
        apply(capture, [message_event(later, channel="C0REUSED")], now=posted_at)

        def held(now: datetime) -> list[str]:
            capture.purge_captured(now=now, older_than=timedelta(days=30))
            return [m.ts for m in capture.messages(channel_id="C0REUSED", oldest=at(0), latest=posted_at)]

        assert held(at(30) + timedelta(days=31)) == [later["ts"]]
        covered = capture.coverage(
            channel_id="C0REUSED", oldest=at(0), latest=posted_at, now=at(30) + timedelta(days=31)
        )
        assert covered and covered[0][0] >= at(30), covered
        assert held(posted_at + timedelta(days=30, minutes=1)) == []

    def test_a_channel_never_drafted_keeps_only_the_retention(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """A channel the bot watches without a postmortem: messages older than the retention are deleted with
        their coverage, so a later draft reads that stretch from the history API; newer ones stay."""
        self._fill(capture, "C0NODRAFT")
        recent_at = at(0) + timedelta(days=20)
        recent = one(datetime_to_slack_ts(recent_at))
        capture.touch(channel_id="C0NODRAFT", replica="r1", now=recent_at)
        apply(capture, [message_event(recent, channel="C0NODRAFT")], now=recent_at)
        now = at(0) + timedelta(days=31)
        result = capture.purge_captured(now=now, older_than=timedelta(days=30))
        assert (result.channels, result.messages) == (1, 1)
        held = capture.messages(channel_id="C0NODRAFT", oldest=at(0), latest=now)
        assert [m.ts for m in held] == [recent["ts"]]
        assert capture.coverage(channel_id="C0NODRAFT", oldest=at(0), latest=recent_at, now=now) == [
            (recent_at, recent_at)
        ], "the purged stretch is no longer covered"

    def test_a_recent_postmortem_keeps_its_evidence_past_the_age(
        self, capture: CaptureRepository, engine: Engine
    ) -> None:
        """A postmortem published yesterday of messages posted 60 days ago: its evidence stays for the
        retention after the publication, even though the messages themselves are older."""
        repo = Repository(engine)
        self._fill(capture, "C0LONG")
        published = at(0) + timedelta(days=60)
        self._draft(repo, draft_id="Q8", channel="C0LONG", status=DraftStatus.PUBLISHED, when=published)
        result = capture.purge_captured(now=published + timedelta(days=1), older_than=timedelta(days=30))
        assert result.messages == 0
        assert len(capture.messages(channel_id="C0LONG", oldest=at(0), latest=at(10))) == 1
