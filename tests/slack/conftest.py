"""A real Bolt App on a real Socket Mode connection, against the local Slack, Confluence and PagerDuty fakes.

`create_app` builds the app as `python -m bot run` does; slack_bolt's `SocketModeHandler` connects to
`SocketModeFake` (found through the Slack fake's `apps.connections.open`); the WebClient and every
`response_url` point at `SlackWebFake`; the store is a fresh SQLite file; Confluence is `ConfluenceFake`.
Tests deliver envelopes as Slack does and wait (polling, with deadlines) for acks and for the listeners
to finish: the app's listener executor is swapped for one that knows when it is idle.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import create_app
from bot.config import Settings
from bot.deps import (
    build_replay_sources,
    build_services,
    build_stores,
    build_web_client_from,
    slack_options,
)
from bot.postmortem import Services
from bot.samples import DEFAULT_SAMPLE
from bot.slack.context import BotContext
from bot.sources.gather import Sources
from bot.sources.pagerduty import PagerDutySource
from bot.sources.slack_history import SlackHistorySource
from bot.store.repository import Repository, StoredDraft
from tests.fakes import slack_payloads
from tests.fakes.confluence import ConfluenceFake, FakePage
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN, SlackWebFake
from tests.fakes.socket_mode import Ack, SocketModeFake
from tests.fakes.tls import write_ca_bundle
from tests.fakes.wait import poll

INCIDENT_ID = "Q1R2S3T4U5V6W7"
CHANNEL, CHANNEL_NAME = "C07INC9876", "inc-9876-api-latency"
GENERAL, GENERAL_NAME = "C01GENERAL", "general"
OTHER_INCIDENT, OTHER_INCIDENT_NAME = "C06INC9800", "inc-9800-login-errors"
ANA, BEN, DEE = "U01ANA", "U02BEN", "U04DEE"
OUTSIDER = "U05EVE"  # in the workspace, not in the incident channel (but in #general and #inc-9800)
REVIEWERS = "S07REVIEW"  # a user group: Ben and Eve
SERVICE_REPOS = {"customer-api": "acme/customer-api", "auth-service": "acme/auth-service"}
PD_FROM_EMAIL = "ana.lima@acme.example"


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, counting the listeners still running so a test can wait for quiet."""

    def __init__(self) -> None:
        super().__init__(max_workers=10, thread_name_prefix="listener")
        self._pending = 0
        self._count = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> Future:  # noqa: ANN001 - Executor's signature
        with self._count:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future) -> None:
        with self._count:
            self._pending -= 1

    def idle(self) -> bool:
        with self._count:
            return self._pending == 0


@dataclass(frozen=True)
class Sent:
    envelope_id: str
    response_id: str | None = None  # the name of its response_url on the Slack fake


@dataclass
class Harness:
    slack: SlackWebFake
    socket: SocketModeFake
    confluence: ConfluenceFake
    parent: FakePage
    repo: Repository
    services: Services
    app: App
    executor: TrackingExecutor
    ctx: BotContext
    pagerduty: PagerDutyFake | None = None

    _names = itertools.count(1)

    # -- delivering -----------------------------------------------------------------------------
    def _response_name(self) -> str:
        return f"r{next(self._names)}"

    def command(
        self, text: str, *, channel_id: str = CHANNEL, channel_name: str = CHANNEL_NAME, user_id: str = ANA
    ) -> Sent:
        name = self._response_name()
        payload = slack_payloads.slash_command(
            text=text,
            channel_id=channel_id,
            channel_name=channel_name,
            user_id=user_id,
            response_url=self.slack.response_url(name),
        )
        return Sent(self.socket.deliver("slash_commands", payload), name)

    def event(self, event: dict[str, Any], **delivery: Any) -> Sent:
        return Sent(self.socket.deliver("events_api", slack_payloads.event_callback(event), **delivery))

    def click(
        self,
        action_id: str,
        *,
        message: dict[str, Any],
        user_id: str = ANA,
        channel_id: str = CHANNEL,
        channel_name: str = CHANNEL_NAME,
        value: str | None = None,
    ) -> Sent:
        """Click the button `action_id` of `message` (its own value unless `value` forges one)."""
        name = self._response_name()
        payload = slack_payloads.block_action(
            message=message,
            action_id=action_id,
            channel_id=channel_id,
            channel_name=channel_name,
            user_id=user_id,
            response_url=self.slack.response_url(name),
            value=value,
        )
        return Sent(self.socket.deliver("interactive", payload), name)

    def submit(
        self, view: dict[str, Any], *, user_id: str = ANA, changes: dict[str, str] | None = None
    ) -> Sent:
        payload = slack_payloads.view_submission(view=view, user_id=user_id, changes=changes or {})
        return Sent(self.socket.deliver("interactive", payload))

    def redeliver(self, sent: Sent) -> Sent:
        """Slack sending the same envelope again (its ack was lost)."""
        envelope = self.socket.deliveries[sent.envelope_id].envelope
        extra = {"retry_attempt": 1, "retry_reason": "timeout"} if envelope["type"] == "events_api" else {}
        self.socket.deliver(envelope["type"], envelope["payload"], envelope_id=sent.envelope_id, **extra)
        return sent

    # -- waiting --------------------------------------------------------------------------------
    def settle(self, sent: Sent, *, acks: int = 1) -> Ack:
        """The envelope's `acks`-th ack, once every listener it started has finished."""

        def acked() -> list[Ack]:
            found = [a for a in list(self.socket.acks) if a.envelope_id == sent.envelope_id]
            return found if len(found) >= acks else []

        ack = poll(acked, what=f"ack {acks} of {sent.envelope_id}")[acks - 1]
        poll(self.executor.idle, what="listeners finished")
        return ack

    def responses(self, sent: Sent) -> list[dict[str, Any]]:
        assert sent.response_id is not None
        return self.slack.responses_to(sent.response_id)

    # -- reading state --------------------------------------------------------------------------
    def stored(self) -> StoredDraft:
        stored = self.repo.get(INCIDENT_ID)
        assert stored is not None, "no draft stored"
        return stored

    def message(self, ts: str, channel_id: str = CHANNEL) -> dict[str, Any]:
        found = self.slack.message(channel_id, ts)
        assert found is not None, f"no message {ts} in {channel_id}"
        return found

    def preview(self) -> dict[str, Any]:
        stored = self.stored()
        assert stored.preview_ts is not None
        return self.message(stored.preview_ts, stored.channel_id or CHANNEL)

    def posted_in(self, channel_id: str = CHANNEL) -> list[dict[str, Any]]:
        return [p for p in self.slack.posted if p["channel"] == channel_id]

    def drafted(self) -> dict[str, Any]:
        """Run /postmortem PD-9876 in the incident channel and return the finished preview."""
        self.settle(self.command("PD-9876"))
        assert self.stored().status.value == "draft", self.stored().error
        return self.preview()


def block_text(message: dict[str, Any], block_id: str) -> str:
    for block in message.get("blocks", []):
        if block.get("block_id") == block_id:
            if block.get("type") == "context":
                return " ".join(e.get("text", "") for e in block.get("elements", []))
            return (block.get("text") or {}).get("text", "")
    raise AssertionError(f"no block {block_id}")


def all_text(message: dict[str, Any]) -> str:
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        parts.append((block.get("text") or {}).get("text", ""))
        parts.extend(e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(parts)


def _settings(
    tmp_path: Path, slack: SlackWebFake, confluence: ConfluenceFake, parent: FakePage, **extra: Any
) -> Settings:
    return Settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        confluence_url=confluence.cloud_url,
        confluence_username=confluence.username,
        confluence_api_token=confluence.api_token,
        confluence_space_key="PM",
        confluence_parent_page_id=parent.id,
        confluence_cloud=True,
        service_repos=SERVICE_REPOS,
        database_url=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        http_timeout_seconds=5,
        http_max_retries=1,
        **extra,
    )


def _start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    pagerduty: PagerDutyFake | None = None,
    **settings_extra: Any,
) -> Iterator[Harness]:
    # The Socket Mode client tunnels through any proxy in the environment and ignores NO_PROXY.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SlackWebFake() as slack, SocketModeFake() as socket, ConfluenceFake() as confluence:
        slack.socket_mode_url = socket.url
        # A workspace member outside the incident channel, in two other channels.
        slack.add_user(
            {"id": OUTSIDER, "name": "eve", "real_name": "Eve Tran", "profile": {"display_name": "Eve"}}
        )
        for channel_id in (GENERAL, OTHER_INCIDENT):
            slack.channels[channel_id].members.extend([OUTSIDER, "U09PMBOT"])
        slack.add_usergroup(REVIEWERS, [BEN, OUTSIDER])
        parent = confluence.add_page(space_key="PM", title="Postmortems", body="<p>All our postmortems.</p>")
        if pagerduty:
            settings_extra["pagerduty_from_email"] = PD_FROM_EMAIL
        settings = _settings(tmp_path, slack, confluence, parent, **settings_extra)
        client = build_web_client_from(settings)
        repo, _capture = build_stores(settings)
        if pagerduty is None:
            sources = build_replay_sources(DEFAULT_SAMPLE)
        else:
            replay = build_replay_sources(DEFAULT_SAMPLE)
            incidents = PagerDutySource(
                token=pagerduty.token,
                base_url=pagerduty.url,
                ca_bundle=write_ca_bundle(tmp_path),
                timeout=5,
                max_retries=1,
                from_email=PD_FROM_EMAIL,
                backoff=0.01,
            )
            sources = Sources(
                incidents=incidents, deploys=replay.deploys, chat=SlackHistorySource(client=client)
            )
        services = build_services(settings, repo=repo, sources=sources)
        ctx = BotContext(services=services, options=slack_options(settings))
        app = create_app(settings=settings, ctx=ctx, client=client)
        executor = TrackingExecutor()
        app.listener_runner.listener_executor = executor
        handler = SocketModeHandler(app, app_token=APP_TOKEN)
        handler.connect()
        try:
            socket.wait_for_connections(1)
            yield Harness(
                slack=slack,
                socket=socket,
                confluence=confluence,
                parent=parent,
                repo=repo,
                services=services,
                app=app,
                executor=executor,
                ctx=ctx,
                pagerduty=pagerduty,
            )
        finally:
            # Hang up from the server's side first: the client's blocking read then returns at once
            # instead of at its 3 s socket timeout, and it must not dial again.
            handler.client.auto_reconnect_enabled = False
            socket.drop()
            handler.close()
            executor.shutdown(wait=True)
            if isinstance(sources.incidents, PagerDutySource):
                sources.incidents.close()


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Sources: the replay of the bundled sample PD-9876."""
    yield from _start(tmp_path, monkeypatch)


@pytest.fixture
def live_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Sources: PagerDuty (the TLS fake, notes written), Slack history from the Slack fake, GitHub replayed."""
    with PagerDutyFake() as pagerduty:
        yield from _start(tmp_path, monkeypatch, pagerduty=pagerduty)


@pytest.fixture
def reviewers_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """APPROVER_USERGROUP set: Ben and Eve (who is not in the incident channel) review; Ana does not."""
    yield from _start(tmp_path, monkeypatch, approver_usergroup=REVIEWERS)
