"""The bot's Bolt app, built as `python -m bot run` builds it, driven by Slack payloads without a socket.

`app.dispatch(BoltRequest(..., mode="socket_mode"))` is what Bolt's Socket Mode adapter calls for each
envelope; listeners then run on the app's executor, which `deliver` swaps for a fresh one and drains, so
a test continues once everything the payload started has finished. Sources are live (PagerDuty over TLS,
GitHub, Slack history) against the fakes; Confluence is its fake; the store is a SQLite file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltRequest

from bot.app import create_app
from bot.config import Settings
from bot.deps import build_services, build_web_client_from, slack_options
from bot.slack.context import BotContext
from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository, StoredDraft
from tests.fakes import slack_payloads
from tests.fakes.confluence import ConfluenceFake
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN
from tests.reliability.pipeline import CHANNEL, INCIDENT_ID, SERVICE_REPOS, Fakes, live_sources

CHANNEL_NAME = "inc-9876-api-latency"
PD_FROM_EMAIL = "ana.lima@acme.example"


@dataclass
class SlackApp:
    app: App
    fakes: Fakes
    confluence: ConfluenceFake
    repo: Repository
    _names = itertools.count(1)

    def deliver(self, body: dict[str, Any]) -> int:
        """Hand one payload to the app; return the ack's status once every listener has finished."""
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="listener")
        self.app.listener_runner.listener_executor = executor
        try:
            response = self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        finally:
            executor.shutdown(wait=True)
        return response.status

    def command(self, text: str, *, user_id: str = "U01ANA") -> str:
        """Run `/postmortem <text>` in the incident channel; returns the name of its response_url."""
        name = f"reply{next(self._names)}"
        self.deliver(
            slack_payloads.slash_command(
                text=text,
                channel_id=CHANNEL,
                channel_name=CHANNEL_NAME,
                user_id=user_id,
                response_url=self.fakes.slack.response_url(name),
            )
        )
        return name

    def click(self, action_id: str, *, user_id: str = "U01ANA") -> str:
        """Click a button of the preview message, as `user_id`; returns the name of its response_url."""
        name = f"reply{next(self._names)}"
        self.deliver(
            slack_payloads.block_action(
                message=self.preview(),
                action_id=action_id,
                channel_id=CHANNEL,
                channel_name=CHANNEL_NAME,
                user_id=user_id,
                response_url=self.fakes.slack.response_url(name),
            )
        )
        return name

    def stored(self) -> StoredDraft | None:
        return self.repo.get(INCIDENT_ID)

    def preview(self) -> dict[str, Any]:
        stored = self.stored()
        assert stored is not None and stored.preview_ts, "no preview posted"
        found = self.fakes.slack.channels[CHANNEL].find(stored.preview_ts)
        assert found is not None
        return dict(found)


@contextmanager
def slack_app(fakes: Fakes, confluence: ConfluenceFake, workdir: Path) -> Iterator[SlackApp]:
    parent = confluence.add_page(space_key="PM", title=f"Postmortems {workdir.name}")
    settings = Settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fakes.slack.api_url,
        pagerduty_api_token=fakes.pagerduty.token,
        pagerduty_from_email=PD_FROM_EMAIL,
        confluence_url=confluence.cloud_url,
        confluence_username=confluence.username,
        confluence_api_token=confluence.api_token,
        confluence_space_key="PM",
        confluence_parent_page_id=parent.id,
        confluence_cloud=True,
        service_repos=SERVICE_REPOS,
        database_url=f"sqlite:///{workdir / 'bot.sqlite3'}",
        http_timeout_seconds=10,
        http_max_retries=1,
    )
    engine = create_store_engine(settings.database_url)
    migrate(engine)
    repo = Repository(engine)
    try:
        with live_sources(fakes, from_email=PD_FROM_EMAIL) as sources:
            services = build_services(settings, repo=repo, sources=sources)
            app = create_app(
                settings=settings,
                ctx=BotContext(services=services, options=slack_options(settings)),
                client=build_web_client_from(settings),
            )
            yield SlackApp(app=app, fakes=fakes, confluence=confluence, repo=repo)
    finally:
        engine.dispose()
