"""The capture jobs: retention purges after CAPTURE_RETENTION_DAYS, and the app's wiring of capture."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.config import load_settings
from bot.deps import CAPTURE_HEARTBEAT_SECONDS, capture_jobs, with_capture
from bot.jobs.capture_retention import RETENTION_INTERVAL_SECONDS, purge_once
from bot.samples import DEFAULT_SAMPLE
from bot.slack.capture import LiveCapture
from bot.sources.captured import CapturedChatSource
from bot.sources.gather import Sources
from bot.sources.replay import ReplaySource
from bot.sources.slack_history import SlackHistorySource
from bot.store.capture import CaptureRepository
from bot.store.repository import Repository
from bot.timeline.models import ChatMessage, datetime_to_slack_ts

T0 = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)
CHANNEL = "C07INC9876"


def published_channel(engine: Engine, *, at: datetime) -> CaptureRepository:
    """A channel with one captured message and a postmortem published at `at`."""
    capture = CaptureRepository(engine)
    capture.record_message(
        message=ChatMessage(ts=datetime_to_slack_ts(T0), channel_id=CHANNEL, user_id="U01ANA", text="hi"),
        version=datetime_to_slack_ts(T0),
        now=T0,
    )
    repo = Repository(engine)
    repo.start_draft(draft_id="Q1", incident_key="PD-1", channel_id=CHANNEL, requested_by=None, now=at)
    repo.finish_publish(
        draft_id="Q1", page_id="1", page_url="u", page_version=1, user_id="U1", body_version=1, now=at
    )
    return capture


def held(capture: CaptureRepository) -> int:
    return len(capture.messages(channel_id=CHANNEL, oldest=T0, latest=T0 + timedelta(days=1)))


class TestPurgeOnce:
    def test_purges_after_the_retention_and_logs(
        self, engine: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A day short of the retention nothing goes; past it the channel's messages go, with a log line."""
        capture = published_channel(engine, at=T0 + timedelta(hours=3))
        caplog.set_level(logging.INFO, logger="bot.jobs.capture_retention")
        early = purge_once(capture=capture, older_than=timedelta(days=30), now=T0 + timedelta(days=29))
        assert (early.messages, held(capture)) == (0, 1)
        late = purge_once(capture=capture, older_than=timedelta(days=30), now=T0 + timedelta(days=31))
        assert (late.channels, late.messages, held(capture)) == (1, 1, 0)
        assert [r.getMessage() for r in caplog.records] == ["captured messages past their retention deleted"]


class TestCaptureWiring:
    def test_jobs_follow_the_settings(self, engine: Engine) -> None:
        """The heartbeat runs every minute; the retention job purges after CAPTURE_RETENTION_DAYS."""
        capture = published_channel(engine, at=T0)
        settings = load_settings(_env_file=None, capture_retention_days=7)
        live = LiveCapture(store=capture, replica="r1", clock=lambda: T0)
        jobs = capture_jobs(settings, live=live, capture=capture, clock=lambda: T0 + timedelta(days=8))
        assert [(name, interval) for name, _, interval in jobs] == [
            ("capture-heartbeat", CAPTURE_HEARTBEAT_SECONDS),
            ("capture-retention", RETENTION_INTERVAL_SECONDS),
        ]
        jobs[1][1]()
        assert held(capture) == 0

    def test_the_app_reads_slack_through_capture(self, engine: Engine) -> None:
        """The app's chat source becomes the captured source over the history source; a replay stays as is."""
        live = SlackHistorySource(client=None)  # type: ignore[arg-type] - only wrapped, never called here
        replay = ReplaySource(DEFAULT_SAMPLE)
        sources = with_capture(
            Sources(incidents=replay, deploys=None, chat=live), capture=CaptureRepository(engine)
        )
        assert isinstance(sources.chat, CapturedChatSource)
        replayed = Sources(incidents=replay, deploys=replay, chat=replay)
        assert with_capture(replayed, capture=CaptureRepository(engine)) is replayed
