"""The database unavailable for a while, end to end: PostgreSQL behind a TCP proxy the case can cut.

One `python -m bot` process serves the cases; its DATABASE_URL points at `tests/fakes/tcp_proxy.py` in
front of the local PostgreSQL, so a case can cut every pooled connection at once (a PostgreSQL restart) or
refuse connections (the server down) and then let them through again. The test reads the store directly,
not through the proxy. The bot is never restarted: the same process must report the outage clearly and
carry on once the database is back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.ids import ActionId
from bot.store.models import DraftStatus
from tests.e2e.conftest import (
    Fakes,
    Workspace,
    fakes,  # noqa: F401 - the module's fakes, a fixture
)
from tests.fakes.slack_payloads import action_ids
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.wait import poll
from tests.reliability.faults import (
    Shared,
    acked_in_time,
    drafted,
    fresh_workspace,
    published_once,
    start_shared,
    status_line,
    stored,
    told,
)

UNAVAILABLE = "The database is unavailable"


@pytest.fixture(scope="module")
def database(postgres_server: str) -> Iterator[str]:
    """A new PostgreSQL database for the module, reached directly (the test's own reads)."""
    name = f"pmbot_faults_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_server.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def proxy(database: str) -> Iterator[TcpProxy]:
    server = urlsplit(database)
    with TcpProxy(upstream=(server.hostname or "127.0.0.1", server.port or 5432)) as running:
        yield running


@pytest.fixture(scope="module")
def shared(
    fakes: Fakes,  # noqa: F811
    proxy: TcpProxy,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    """The module's bot, its database reached through the proxy."""
    tmp = tmp_path_factory.mktemp("database")
    with start_shared(fakes, tmp, name="database", database_url=proxy.url_for(database)) as bot:
        yield bot


@pytest.fixture
def ws(fakes: Fakes, shared: Shared, proxy: TcpProxy) -> Iterator[Workspace]:  # noqa: F811
    proxy.restore()
    yield fresh_workspace(fakes, shared)
    proxy.restore()  # a failed case must not leave the next one without its database


class TestDatabaseUnavailable:
    """Database unavailable"""

    @pytest.mark.case("connections refused, then back")
    def test_a_click_during_the_outage_is_told_and_the_next_one_works(
        self, ws: Workspace, shared: Shared, proxy: TcpProxy, database: str, figures
    ) -> None:
        """PostgreSQL refusing connections (every pooled one cut): Approve is acked and the clicker is told
        "The database is unavailable…", nothing is published and the draft row is untouched; once PostgreSQL
        is back, the next Approve, on the same process, publishes once."""
        bot = shared.bot
        _, preview = drafted(ws, bot)
        before = stored(database)
        assert before is not None and before.status is DraftStatus.DRAFT
        proxy.refuse()  # every open link is cut too

        sent = ws.click(bot, preview, ActionId.APPROVE)
        acked_in_time(ws, sent)
        said = told(ws, sent, starts=UNAVAILABLE)
        assert "Traceback" not in said
        assert ws.pages() == [] and ws.fakes.pagerduty.posted_notes == []
        assert status_line(ws.latest(preview["ts"]) or preview).startswith(":memo: Draft")
        assert stored(database) == before, "the outage changed the draft row"

        proxy.restore()
        pid = bot.pid
        acked_in_time(ws, ws.click(bot, preview, ActionId.APPROVE))
        published_once(ws, preview["ts"])
        assert bot.running() and bot.pid == pid, "the bot was restarted"
        assert stored(database).status is DraftStatus.PUBLISHED
        figures["pages"] = len(ws.pages())

    @pytest.mark.case("PostgreSQL restarted: every pooled connection cut")
    def test_dead_pooled_connections_are_replaced_unseen(
        self, ws: Workspace, shared: Shared, proxy: TcpProxy, figures
    ) -> None:
        """Every connection in the bot's pool is cut, as a PostgreSQL restart does: the next click opens
        new ones (pool_pre_ping) and works, with nothing said to the person who clicked."""
        bot = shared.bot
        _, preview = drafted(ws, bot)
        opened = proxy.accepted
        assert proxy.cut() > 0, "the bot held no connection to cut"
        sent = ws.click(bot, preview, ActionId.APPROVE)
        acked_in_time(ws, sent)
        published_once(ws, preview["ts"])
        assert ws.responses(sent) == [], ws.responses(sent)
        assert proxy.accepted > opened, "no new connection was opened"
        figures["pages"] = len(ws.pages())

    @pytest.mark.case("/postmortem while connections are refused")
    def test_a_command_during_the_outage_is_told_and_works_after(
        self, ws: Workspace, shared: Shared, proxy: TcpProxy, database: str
    ) -> None:
        """/postmortem while PostgreSQL refuses connections: the asker is told "The database is
        unavailable…", nothing is posted in the channel or stored; once it is back, /postmortem drafts the
        preview."""
        bot = shared.bot
        proxy.refuse()
        sent = ws.command(bot, "PD-9876")
        acked_in_time(ws, sent)
        told(ws, sent, starts=UNAVAILABLE)
        assert ws.posted() == [] and stored(database) is None

        proxy.restore()
        _, preview = drafted(ws, bot)
        assert action_ids(preview)[0] == ActionId.APPROVE
        poll(lambda: stored(database) is not None, what="the draft row")
