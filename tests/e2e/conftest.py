"""End to end: the real `python -m bot` process against every local fake.

The fakes (Socket Mode, Slack Web API, PagerDuty over TLS, GitHub, Confluence over TLS) start once per
module and are reset before each test. Each test starts its own bot processes (`start_bot`) with every
setting pointing at the fakes, on a fresh database (`database_url`: SQLite file or PostgreSQL) and a
Confluence flavour (`flavour`: Cloud REST v2 or Data Center REST v1). `Workspace` plays Slack: it
delivers envelopes to one bot's connection and reads what the bot did from the fakes' records.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.samples import DEFAULT_SAMPLE
from tests.e2e.bot_process import BotProcess, clean_env, start_together
from tests.fakes import slack_payloads
from tests.fakes.confluence import ConfluenceFake, FakePage
from tests.fakes.github import DEFAULT_TOKEN as GITHUB_TOKEN
from tests.fakes.github import GitHubFake
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN, SlackWebFake
from tests.fakes.socket_mode import Ack, SocketModeFake
from tests.fakes.tls import server_context, write_ca_bundle
from tests.fakes.wait import DEADLINE

SAMPLE = json.loads((DEFAULT_SAMPLE / "sample.json").read_text(encoding="utf-8"))
INCIDENT_ID = "Q1R2S3T4U5V6W7"
CHANNEL, CHANNEL_NAME = "C07INC9876", "inc-9876-api-latency"
ANA = "U01ANA"
PD_FROM_EMAIL = "ana.lima@acme.example"  # a PagerDuty user the fake knows: notes are written as her
SPACE = "PM"


@dataclass(frozen=True)
class Fakes:
    socket: SocketModeFake
    slack: SlackWebFake
    pagerduty: PagerDutyFake
    github: GitHubFake
    confluence: ConfluenceFake
    ca_bundle: Path

    def reset(self) -> None:
        """Every fake fresh (records, faults, data); Slack still hands out the Socket Mode URL."""
        self.slack.reset()
        self.slack.socket_mode_url = self.socket.url
        self.pagerduty.reset()
        self.github.reset()
        self.confluence.reset()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    with (
        SocketModeFake() as socket,
        SlackWebFake() as slack,
        PagerDutyFake() as pagerduty,
        GitHubFake() as github,
        ConfluenceFake(tls=server_context()) as confluence,
    ):
        yield Fakes(
            socket=socket,
            slack=slack,
            pagerduty=pagerduty,
            github=github,
            confluence=confluence,
            ca_bundle=write_ca_bundle(tmp_path_factory.mktemp("ca")),
        )


@dataclass(frozen=True)
class Sent:
    """One delivered envelope: enough to redeliver it and to read its ack and response_url answers."""

    envelope_id: str
    envelope_type: str
    payload: dict[str, Any]
    response_name: str | None = None
    connection: int | None = None


@dataclass
class Workspace:
    """Slack's side of the conversation, driven by the test."""

    fakes: Fakes
    parent: FakePage
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # -- delivering -----------------------------------------------------------------------------
    def _deliver(
        self, bot: BotProcess, envelope_type: str, payload: dict[str, Any], name: str | None
    ) -> Sent:
        envelope_id = self.fakes.socket.deliver(envelope_type, payload, connection=bot.connection)
        return Sent(envelope_id, envelope_type, payload, name, bot.connection)

    def _response_url(self) -> tuple[str, str]:
        name = f"r{next(self._names)}"
        return name, self.fakes.slack.response_url(name)

    def command(
        self,
        bot: BotProcess,
        text: str,
        *,
        user_id: str = ANA,
        channel_id: str = CHANNEL,
        channel_name: str = CHANNEL_NAME,
    ) -> Sent:
        name, url = self._response_url()
        payload = slack_payloads.slash_command(
            text=text,
            channel_id=channel_id,
            channel_name=channel_name,
            user_id=user_id,
            response_url=url,
        )
        return self._deliver(bot, "slash_commands", payload, name)

    def message(self, bot: BotProcess, *, channel_id: str, text: str, user_id: str = ANA) -> Sent:
        """A person's new top-level message in a channel, as the Events API delivers it."""
        payload = slack_payloads.event_callback(
            slack_payloads.message_event(channel=channel_id, text=text, user=user_id)
        )
        return self._deliver(bot, "events_api", payload, None)

    def click(self, bot: BotProcess, message: dict[str, Any], action_id: str, *, user_id: str = ANA) -> Sent:
        name, url = self._response_url()
        payload = slack_payloads.block_action(
            message=message,
            action_id=action_id,
            channel_id=CHANNEL,
            channel_name=CHANNEL_NAME,
            user_id=user_id,
            response_url=url,
        )
        return self._deliver(bot, "interactive", payload, name)

    def submit(
        self, bot: BotProcess, view: dict[str, Any], changes: dict[str, str], *, user_id: str = ANA
    ) -> Sent:
        payload = slack_payloads.view_submission(view=view, user_id=user_id, changes=changes)
        return self._deliver(bot, "interactive", payload, None)

    def redeliver(self, sent: Sent, *, to: BotProcess | None = None) -> None:
        """The same envelope (same id, same payload) once more, as Slack does when it doubts the ack: on the
        same connection, or on another bot's (`to`), since Slack may pick any open connection."""
        connection = to.connection if to is not None else sent.connection
        self.fakes.socket.deliver(
            sent.envelope_type, sent.payload, envelope_id=sent.envelope_id, connection=connection
        )

    # -- reading --------------------------------------------------------------------------------
    def ack(self, sent: Sent) -> Ack:
        return self.fakes.socket.wait_for_ack(sent.envelope_id, timeout=DEADLINE)

    def acks_of(self, sent: Sent) -> list[Ack]:
        return [a for a in list(self.fakes.socket.acks) if a.envelope_id == sent.envelope_id]

    def delivered_at(self, sent: Sent) -> float:
        return self.fakes.socket.deliveries[sent.envelope_id].at

    def responses(self, *sent: Sent) -> list[dict[str, Any]]:
        """What the bot posted to these envelopes' response_urls."""
        return [r for s in sent if s.response_name for r in self.fakes.slack.responses_to(s.response_name)]

    def posted(self) -> list[dict[str, Any]]:
        """chat.postMessage records in the incident channel, oldest first."""
        return [p for p in list(self.fakes.slack.posted) if p["channel"] == CHANNEL]

    def updates(self, ts: str) -> list[dict[str, Any]]:
        """chat.update records of one message, oldest first, each the whole message after the update."""
        return [
            {k: v for k, v in u.items() if k != "channel"}
            for u in list(self.fakes.slack.updated)
            if u["channel"] == CHANNEL and u["ts"] == ts
        ]

    def latest(self, ts: str) -> dict[str, Any] | None:
        updates = self.updates(ts)
        return updates[-1] if updates else None

    def opened_views(self) -> list[dict[str, Any]]:
        return [v for v in list(self.fakes.slack.views) if v["method"] == "views.open"]

    def pages(self) -> list[FakePage]:
        """Confluence pages bar the parent."""
        with self.fakes.confluence._store:
            return [p for p in self.fakes.confluence.pages.values() if p.id != self.parent.id]


@pytest.fixture
def workspace(fakes: Fakes) -> Workspace:
    assert not fakes.socket.live_connections(), "a bot of an earlier test is still connected"
    fakes.reset()
    parent = fakes.confluence.add_page(
        space_key=SPACE, title="Postmortems", body="<p>All our postmortems.</p>"
    )
    return Workspace(fakes=fakes, parent=parent)


@pytest.fixture(params=["cloud", "datacenter"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which Confluence the bot publishes to: Cloud (REST v2 under /wiki) or Data Center (REST v1)."""
    return request.param


def bot_settings(fakes: Fakes, *, parent_id: str, database_url: str, cloud: bool) -> dict[str, str]:
    """Every setting `python -m bot run` needs, pointing at the fakes, as an operator would export them."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": fakes.slack.api_url,
        "PAGERDUTY_API_TOKEN": fakes.pagerduty.token,
        "PAGERDUTY_API_URL": fakes.pagerduty.url,
        "PAGERDUTY_FROM_EMAIL": PD_FROM_EMAIL,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_API_URL": fakes.github.url,
        "GITHUB_WEB_URL": "https://github.com",
        "SERVICE_REPOS": ",".join(f"{s}={r}" for s, r in SAMPLE["service_repos"].items()),
        "CONFLUENCE_URL": fakes.confluence.cloud_url if cloud else fakes.confluence.dc_url,
        "CONFLUENCE_USERNAME": fakes.confluence.username,
        "CONFLUENCE_API_TOKEN": fakes.confluence.api_token,
        "CONFLUENCE_SPACE_KEY": SPACE,
        "CONFLUENCE_PARENT_PAGE_ID": parent_id,
        "CONFLUENCE_CLOUD": "true" if cloud else "false",
        "CA_BUNDLE": str(fakes.ca_bundle),
        "DATABASE_URL": database_url,
        "TIMEZONE": SAMPLE["timezone"],
        "WATCH_ENABLED": "false",
        "LOG_LEVEL": "INFO",
        "HTTP_TIMEOUT_SECONDS": "10",
        "HTTP_MAX_RETRIES": "2",
    }


@pytest.fixture
def bot_env(workspace: Workspace, database_url: str, flavour: str) -> dict[str, str]:
    """The bot's whole environment: a clean one plus `bot_settings` for this database and flavour."""
    settings = bot_settings(
        workspace.fakes, parent_id=workspace.parent.id, database_url=database_url, cloud=flavour == "cloud"
    )
    return clean_env(settings)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test item, so a fixture can tell that its test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


class BotStarter:
    """start_bot(*args, settings={...}) -> a connected `python -m bot [args]` (with `settings` over the
    bot's environment); start_bot.together(n, settings={...}) -> n processes started at the same moment."""

    def __init__(self, *, env: dict[str, str], cwd: Path, socket: SocketModeFake) -> None:
        self._env, self._cwd, self._socket = env, cwd, socket
        self.started: list[BotProcess] = []

    def _new(self, args: tuple[str, ...], settings: dict[str, str] | None) -> BotProcess:
        bot = BotProcess(
            env={**self._env, **(settings or {})},
            cwd=self._cwd,
            socket=self._socket,
            name=f"bot{len(self.started) + 1}",
            args=args,
        )
        self.started.append(bot)
        return bot

    def __call__(self, *args: str, settings: dict[str, str] | None = None) -> BotProcess:
        return self._new(args, settings).start()

    def together(self, count: int, *, settings: dict[str, str] | None = None) -> list[BotProcess]:
        bots = [self._new((), settings) for _ in range(count)]
        start_together(bots, socket=self._socket)
        return bots


@pytest.fixture
def start_bot(
    request: pytest.FixtureRequest, bot_env: dict[str, str], workspace: Workspace, tmp_path: Path
) -> Iterator[BotStarter]:
    """Starts bot processes (see `BotStarter`); every process still running at the end is stopped (SIGTERM,
    then SIGKILL). When the test failed, each one's threads and log are printed."""
    starter = BotStarter(env=bot_env, cwd=tmp_path, socket=workspace.fakes.socket)
    yield starter
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    for bot in starter.started:
        if failed:
            bot.dump_threads()
            print(f"--- {bot.stderr_path.name} ---\n{bot.stderr[-30_000:]}")
        if bot.running():
            bot.stop()
        if bot.connection is not None:
            bot.wait_for_disconnect()
