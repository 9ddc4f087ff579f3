"""Live capture through the real Bolt app on a real Socket Mode connection: the channel's events, delivered as
Slack delivers them, end up in the capture store, and the resolved prompt still works beside it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import create_app
from bot.config import Settings
from bot.deps import build_replay_sources, build_services, build_stores, build_web_client_from, slack_options
from bot.ids import ActionId
from bot.samples import DEFAULT_SAMPLE
from bot.slack.capture import LiveCapture
from bot.slack.context import BotContext
from bot.store.capture import CaptureRepository
from bot.timeline.models import datetime_to_slack_ts
from tests.fakes.slack_events import BOT_USER, CHANNEL, channel_events, history_as_captured, member_event
from tests.fakes.slack_payloads import action_ids, event_callback, message_event
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN, SlackWebFake
from tests.fakes.socket_mode import SocketModeFake
from tests.fakes.wait import poll
from tests.slack.conftest import TrackingExecutor

NOW = datetime(2024, 7, 20, 13, 30, tzinfo=UTC)
WINDOW = (datetime(2024, 7, 20, 9, 0, tzinfo=UTC), datetime(2024, 7, 20, 14, 0, tzinfo=UTC))


@dataclass
class CaptureHarness:
    slack: SlackWebFake
    socket: SocketModeFake
    capture: CaptureRepository
    executor: TrackingExecutor

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Send each event in its own envelope and wait until all are acked and every listener finished."""
        sent = [self.socket.deliver("events_api", event_callback(event)) for event in events]
        for envelope_id in sent:
            self.socket.wait_for_ack(envelope_id)
        poll(self.executor.idle, what="listeners finished")

    def held(self) -> list[dict[str, Any]]:
        return [
            m.model_dump()
            for m in self.capture.messages(channel_id=CHANNEL, oldest=WINDOW[0], latest=WINDOW[1])
        ]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CaptureHarness]:
    # The Socket Mode client tunnels through any proxy in the environment and ignores NO_PROXY.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SlackWebFake() as slack, SocketModeFake() as socket:
        slack.socket_mode_url = socket.url
        settings = Settings(
            _env_file=None,
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            http_timeout_seconds=5,
            http_max_retries=1,
        )
        client = build_web_client_from(settings)
        repo, capture = build_stores(settings)
        live = LiveCapture(store=capture, replica="r1", clock=lambda: NOW)
        ctx = BotContext(
            services=build_services(settings, repo=repo, sources=build_replay_sources(DEFAULT_SAMPLE)),
            options=slack_options(settings),
            capture=live,
        )
        app = create_app(settings=settings, ctx=ctx, client=client)
        executor = TrackingExecutor()
        app.listener_runner.listener_executor = executor
        handler = SocketModeHandler(app, app_token=APP_TOKEN)
        handler.connect()
        try:
            socket.wait_for_connections(1)
            yield CaptureHarness(slack=slack, socket=socket, capture=capture, executor=executor)
        finally:
            handler.client.auto_reconnect_enabled = False
            socket.drop()
            handler.close()
            executor.shutdown(wait=True)


class TestCaptureListener:
    def test_channel_events_in_any_order_are_captured(self, harness: CaptureHarness) -> None:
        """Every message, edit, deletion, reply, pin and reaction event of the sample channel, shuffled and
        handled concurrently, leaves the channel's history in the store — without the bot's own post, which
        Bolt keeps from every listener (its own events)."""
        events = channel_events()
        random.Random(7).shuffle(events)
        harness.deliver(events)
        expected = [m for m in history_as_captured() if m["user_id"] != BOT_USER]
        assert harness.held() == expected

    def test_bot_join_and_leave_open_and_close_coverage(self, harness: CaptureHarness) -> None:
        """member_joined_channel for the bot opens this replica's coverage; member_left_channel ends it."""
        joined = datetime_to_slack_ts(NOW - timedelta(minutes=1))
        harness.deliver([member_event(kind="member_joined_channel", user=BOT_USER, at=joined)])
        assert harness.capture.coverage(channel_id=CHANNEL, oldest=WINDOW[0], latest=WINDOW[1], now=NOW) == [
            (NOW, NOW)
        ]
        harness.deliver(
            [member_event(kind="member_left_channel", user=BOT_USER, at=datetime_to_slack_ts(NOW))]
        )
        assert not harness.capture.touch(channel_id=CHANNEL, replica="r1", now=NOW)

    def test_resolved_message_is_captured_and_prompts(self, harness: CaptureHarness) -> None:
        """The message listener captures first and still offers the postmortem."""
        resolved = message_event(
            channel=CHANNEL, text="Incident is resolved, all clear", ts="1721477760.002500"
        )
        harness.deliver([resolved])
        assert [m["text"] for m in harness.held()] == ["Incident is resolved, all clear"]
        prompts = [p for p in harness.slack.posted if ActionId.START_DRAFT in action_ids(p)]
        assert len(prompts) == 1
