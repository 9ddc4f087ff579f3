"""The captured chat source: drafts from live capture equal drafts from the history API, which is asked
only for the stretches capture missed (the real slack_sdk client against the local Slack fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.analysis.models import Draft, DraftOptions
from bot.postmortem import draft_incident
from bot.samples import DEFAULT_SAMPLE
from bot.slack.capture import record_event
from bot.sources.captured import CapturedChatSource, uncovered
from bot.sources.gather import GatherOptions, Sources
from bot.sources.replay import ReplaySource
from bot.sources.slack_client import build_web_client
from bot.sources.slack_history import SlackHistorySource
from bot.store.capture import CaptureRepository
from bot.timeline.models import datetime_to_slack_ts, slack_ts_to_datetime
from tests.fakes.slack_events import BOT_USER, CHANNEL, channel_events, message_event, sample_channel
from tests.fakes.slack_web import BOT_TOKEN, SlackWebFake

SAMPLE = json.loads((DEFAULT_SAMPLE / "sample.json").read_text())
NOW = datetime(2024, 7, 20, 13, 30, tzinfo=UTC)
WINDOW_START = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)  # created 10:30 minus the 30-minute lead-in
GRACE = timedelta(minutes=3)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2024, 7, 20, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[SlackWebFake]:
    with SlackWebFake() as running:
        yield running


@pytest.fixture
def fake(server: SlackWebFake) -> SlackWebFake:
    server.reset()
    return server


@pytest.fixture
def capture(engine: Engine) -> CaptureRepository:
    return CaptureRepository(engine, grace=GRACE)


def live_source(fake: SlackWebFake) -> SlackHistorySource:
    return SlackHistorySource(
        client=build_web_client(token=BOT_TOKEN, base_url=fake.api_url, timeout=5, max_retries=1)
    )


def draft_with(chat: Any, *, now: datetime = NOW) -> Draft:  # noqa: ANN401 - any ChatSource
    replay = ReplaySource(DEFAULT_SAMPLE)
    return draft_incident(
        ref="PD-9876",
        channel_id=None,
        sources=Sources(incidents=replay, deploys=replay, chat=chat),
        gather_options=GatherOptions(repo_for_service=SAMPLE["service_repos"].get),
        draft_options=DraftOptions(),
        now=now,
    )


def comparable(draft: Draft) -> dict:
    return draft.model_dump(mode="json", exclude={"generated_at"})


def history_draft(fake: SlackWebFake, *, now: datetime = NOW) -> dict:
    """The reference: the same draft read from the history API alone; the fake's records then start afresh."""
    draft = comparable(draft_with(live_source(fake), now=now))
    with fake._lock:
        fake.requests.clear()
    return draft


def cover(capture: CaptureRepository, start: datetime, end: datetime, *, replica: str) -> None:
    """A replica connected from `start` (the bot joined then) to `end`, touching every two minutes."""
    capture.record_membership(
        channel_id=CHANNEL, member=True, version=datetime_to_slack_ts(start), replica=replica, now=start
    )
    moment = start
    while moment < end:
        moment = min(moment + timedelta(minutes=2), end)
        capture.touch(channel_id=CHANNEL, replica=replica, now=moment)


def event_time(event: dict[str, Any]) -> datetime:
    return slack_ts_to_datetime(event.get("event_ts") or event["ts"])


def deliver(
    capture: CaptureRepository, *, during: list[tuple[datetime, datetime]], replica: str = "r1"
) -> None:
    """The sample channel's events that happened while some replica was connected (the rest were missed)."""
    for event in channel_events():
        if any(start <= event_time(event) <= end for start, end in during):
            record_event(capture, event, bot_user_id=BOT_USER, replica=replica, now=NOW)


def captured_source(
    fake: SlackWebFake, capture: CaptureRepository, *, now: datetime = NOW
) -> CapturedChatSource:
    return CapturedChatSource(live=live_source(fake), capture=capture, clock=lambda: now)


def windows(fake: SlackWebFake, method: str) -> list[tuple[str | None, ...]]:
    return [
        (r.arg("ts"), r.arg("oldest"), r.arg("latest"))
        if method == "conversations.replies"
        else (r.arg("oldest"), r.arg("latest"))
        for r in fake.requests_to(rf"/api/{method}$")
    ]


def ts(moment: datetime) -> str:
    return datetime_to_slack_ts(moment)


class TestUncovered:
    def test_gaps_around_and_between_covered_stretches(self) -> None:
        """The window minus covered stretches: before the first, between two, after the last."""
        covered = [(at(10, 10), at(10, 20)), (at(10, 30), at(10, 40))]
        assert uncovered(at(10, 0), at(11, 0), covered) == [
            (at(10, 0), at(10, 10)),
            (at(10, 20), at(10, 30)),
            (at(10, 40), at(11, 0)),
        ]

    def test_fully_covered_window_has_no_gap(self) -> None:
        """Coverage reaching past both ends leaves nothing to read."""
        assert uncovered(at(10, 0), at(11, 0), [(at(9, 0), at(12, 0))]) == []

    def test_no_coverage_is_one_gap(self) -> None:
        """Without capture the whole window is read."""
        assert uncovered(at(10, 0), at(11, 0), []) == [(at(10, 0), at(11, 0))]


class TestCapturedChatSource:
    def test_fully_captured_channel_needs_no_history_call(
        self, fake: SlackWebFake, capture: CaptureRepository
    ) -> None:
        """Captured from before the window to now, the draft equals the history draft and neither
        conversations.history nor conversations.replies is called; each author is looked up once."""
        expected = history_draft(fake)
        cover(capture, at(9, 55), NOW, replica="r1")
        deliver(capture, during=[(at(9, 55), NOW)])
        assert comparable(draft_with(captured_source(fake, capture))) == expected
        assert windows(fake, "conversations.history") == []
        assert windows(fake, "conversations.replies") == []
        looked_up = [r.arg("user") for r in fake.requests_to(r"/api/users\.info$")]
        assert sorted(looked_up) == sorted(set(looked_up))

    def test_history_is_asked_only_before_the_bot_joined(
        self, fake: SlackWebFake, capture: CaptureRepository
    ) -> None:
        """The bot joined at 10:52: history is read for [10:00, 10:52] only (and that stretch's one thread);
        replies posted after the join to a thread started before it come from capture."""
        expected = history_draft(fake)
        cover(capture, at(10, 52), NOW, replica="r1")
        deliver(capture, during=[(at(10, 52), NOW)])
        assert comparable(draft_with(captured_source(fake, capture))) == expected
        assert windows(fake, "conversations.history") == [(ts(WINDOW_START), ts(at(10, 52)))]
        assert windows(fake, "conversations.replies") == [
            ("1721472600.000400", ts(WINDOW_START), ts(at(10, 52)))
        ]

    def test_history_is_asked_only_while_every_replica_was_down(
        self, fake: SlackWebFake, capture: CaptureRepository
    ) -> None:
        """One replica died at 11:20, the next connected at 11:45: one history call for exactly that stretch,
        whose answer wins over a stale captured copy (an edit made there was missed)."""
        expected = history_draft(fake)
        cover(capture, at(9, 55), at(11, 20), replica="r1")
        cover(capture, at(11, 45), NOW, replica="r2")
        deliver(capture, during=[(at(9, 55), at(11, 20)), (at(11, 45), NOW)])
        carlos = next(m for m in sample_channel().top if "edited" in m)
        stale = {k: v for k, v in carlos.items() if k != "edited"} | {"text": "stale wording"}
        record_event(capture, message_event(stale), bot_user_id=BOT_USER, replica="r2", now=NOW)
        assert comparable(draft_with(captured_source(fake, capture))) == expected
        assert windows(fake, "conversations.history") == [(ts(at(11, 20)), ts(at(11, 45)))]
        assert windows(fake, "conversations.replies") == []

    def test_without_capture_the_whole_window_is_read(
        self, fake: SlackWebFake, capture: CaptureRepository
    ) -> None:
        """A channel never captured is read from the history API exactly as the history source reads it."""
        expected = history_draft(fake)
        assert comparable(draft_with(captured_source(fake, capture))) == expected
        assert windows(fake, "conversations.history") == [(ts(WINDOW_START), ts(at(13, 15)))]

    def test_window_reaching_past_now_ends_now(self, fake: SlackWebFake, capture: CaptureRepository) -> None:
        """Drafted at 12:20, the window's tail (to 13:15) has not happened: a live span covers up to now
        and nothing is read."""
        now = at(12, 20)
        expected = history_draft(fake, now=now)
        cover(capture, at(9, 55), now, replica="r1")
        deliver(capture, during=[(at(9, 55), now)])
        assert comparable(draft_with(captured_source(fake, capture, now=now), now=now)) == expected
        assert windows(fake, "conversations.history") == []

    def test_deleted_message_stays_out_of_the_draft(
        self, fake: SlackWebFake, capture: CaptureRepository
    ) -> None:
        """A message posted and deleted while captured is in neither the store's read nor the draft."""
        cover(capture, at(9, 55), NOW, replica="r1")
        deliver(capture, during=[(at(9, 55), NOW)])
        history = captured_source(fake, capture).get_history(
            channel=live_source(fake).get_channel(CHANNEL), oldest=WINDOW_START, latest=at(13, 15)
        )
        assert all("wrong channel" not in m.text for m in history.messages)
        assert len(history.messages) == len(sample_channel().top) + sum(
            len(r) for r in sample_channel().replies.values()
        )
