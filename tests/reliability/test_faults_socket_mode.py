"""Socket Mode faults, end to end: the real `python -m bot` process loses its connection mid-session.

One bot process serves every case of this module (on SQLite, publishing to Confluence Cloud); each case
starts from an empty store and fresh fakes. Slack's side is played by the Socket Mode fake: `drop()`
closes the socket without a word, `disconnect()` sends Slack's goodbye, and an envelope whose ack may
have been lost is delivered again with the same envelope_id, as Slack does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.ids import ActionId
from tests.e2e.bot_process import BotProcess, clean_env, reset_fakes, reset_store
from tests.e2e.conftest import (
    ANA,
    CHANNEL,
    INCIDENT_ID,
    SPACE,
    Fakes,
    Sent,
    Workspace,
    bot_settings,
    fakes,  # noqa: F401 - the module's fakes, a fixture
    poll,
)
from tests.e2e.envelopes import action_ids
from tests.e2e.test_review_flow import TITLE, draft, status_line
from tests.fakes.confluence import FakePage

FAST = {"HTTP_TIMEOUT_SECONDS": "1", "HTTP_MAX_RETRIES": "2"}


@dataclass(frozen=True)
class Shared:
    bot: BotProcess
    parent: FakePage
    database_url: str


@pytest.fixture(scope="module")
def shared(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:  # noqa: F811
    """One bot for the module, connected to the module's fakes."""
    tmp: Path = tmp_path_factory.mktemp("socket-mode")
    parent = fakes.confluence.add_page(
        space_key=SPACE, title="Postmortems", body="<p>All our postmortems.</p>"
    )
    database_url = f"sqlite:///{tmp / 'bot.sqlite3'}"
    fakes.slack.socket_mode_url = fakes.socket.url
    settings = bot_settings(fakes, parent_id=parent.id, database_url=database_url, cloud=True)
    bot = BotProcess(env=clean_env({**settings, **FAST}), cwd=tmp, socket=fakes.socket, name="socket-mode")
    bot.start()
    yield Shared(bot=bot, parent=parent, database_url=database_url)
    assert bot.stop() == 0, bot.stderr[-5000:]


@pytest.fixture
def ws(fakes: Fakes, shared: Shared) -> Workspace:  # noqa: F811
    """A fresh workspace for the case: empty store, fresh fakes, the module's bot still connected."""
    assert shared.bot.running(), shared.bot.stderr[-5000:]
    reset_fakes(fakes, parent=shared.parent)
    reset_store(shared.database_url)
    return Workspace(fakes=fakes, parent=shared.parent)


def connections_opened(ws: Workspace) -> int:
    return len(ws.fakes.slack.requests_to(r"/api/apps\.connections\.open$"))


def published_once(ws: Workspace, preview_ts: str) -> FakePage:
    """The end state of one publication: one page, its link posted once, one PagerDuty note, the preview
    saying "Published"."""
    poll(lambda: ws.fakes.pagerduty.posted_notes, what="the PagerDuty note")
    pages = ws.pages()
    assert [p.title for p in pages] == [TITLE]
    links = [p for p in ws.posted() if pages[0].id in p.get("text", "")]
    assert len(links) == 1, links
    assert len(ws.fakes.pagerduty.posted_notes) == 1
    final = poll(
        lambda: (m := ws.latest(preview_ts)) and status_line(m).startswith(":white_check_mark:") and m,
        what="the published preview",
    )
    assert status_line(final).startswith(f":white_check_mark: Published by <@{ANA}>")
    return pages[0]


class TestConnectionLost:
    """Socket Mode: the connection lost mid-session"""

    @pytest.mark.case("the socket closed without a word (drop)")
    def test_a_dropped_connection_is_reopened(self, ws: Workspace, shared: Shared, record_property) -> None:
        """With a preview in review, Slack's socket closes without a word: the bot opens a new connection
        (apps.connections.open again) and the next click, Approve, publishes once."""
        bot = shared.bot
        preview = draft(ws, bot, record_property)
        old, opened = bot.connection, connections_opened(ws)
        ws.fakes.socket.drop()
        assert bot.reconnected() != old
        assert connections_opened(ws) == opened + 1
        ws.ack(ws.click(bot, preview, ActionId.APPROVE))
        published_once(ws, preview["ts"])

    @pytest.mark.case("Slack's disconnect message")
    def test_a_disconnect_message_is_followed(self, ws: Workspace, shared: Shared, record_property) -> None:
        """Slack says `disconnect` (refresh_requested): the bot opens a new connection and the next
        /postmortem there drafts the preview as usual."""
        bot = shared.bot
        old, opened = bot.connection, connections_opened(ws)
        ws.fakes.socket.disconnect()
        assert bot.reconnected() != old
        assert connections_opened(ws) == opened + 1
        preview = draft(ws, bot, record_property)
        assert action_ids(preview)[0] == ActionId.APPROVE


class TestRedelivery:
    """Socket Mode: an envelope redelivered after a lost connection"""

    @staticmethod
    def deliver_then_drop(ws: Workspace, bot: BotProcess, send: Any) -> Sent:
        """Deliver an envelope and close the socket at once, so its ack may never reach Slack; then Slack
        delivers it again, same envelope_id, on the connection the bot opens next."""
        sent: Sent = send()
        ws.fakes.socket.drop()
        bot.reconnected()
        ws.fakes.socket.deliver(
            sent.envelope_type, sent.payload, envelope_id=sent.envelope_id, connection=bot.connection
        )
        acked_on = poll(
            lambda: [a.connection for a in ws.acks_of(sent) if a.connection == bot.connection],
            what="the ack of the redelivered envelope on the new connection",
        )
        assert acked_on
        return sent

    @pytest.mark.case("a /postmortem whose ack was lost")
    def test_a_redelivered_command_drafts_once(self, ws: Workspace, shared: Shared) -> None:
        """/postmortem delivered, the socket dropped, the same envelope delivered again: one progress
        message becomes one preview; a second delivery that reached the bot is told the draft exists."""
        bot = shared.bot
        sent = self.deliver_then_drop(ws, bot, lambda: ws.command(bot, "PD-9876"))
        preview = poll(
            lambda: (
                (p := ws.posted())
                and (m := ws.latest(p[0]["ts"]))
                and ActionId.APPROVE in action_ids(m)
                and m
            ),
            what="the preview",
        )
        assert len(ws.posted()) == 1, "one message in the channel: the progress, then the preview"
        assert status_line(preview).startswith(":memo: Draft")
        for response in ws.responses(sent):
            assert response["text"].startswith("A postmortem draft for PD-9876 already exists"), response
        ws.ack(ws.click(bot, preview, ActionId.APPROVE))
        published_once(ws, preview["ts"])

    @pytest.mark.case("an Approve whose ack was lost")
    def test_a_redelivered_approve_publishes_once(
        self, ws: Workspace, shared: Shared, record_property
    ) -> None:
        """Approve delivered, the socket dropped, the same envelope delivered again: one page, one link,
        one PagerDuty note; a delivery that found it done is told there is nothing to publish."""
        bot = shared.bot
        preview = draft(ws, bot, record_property)
        sent = self.deliver_then_drop(ws, bot, lambda: ws.click(bot, preview, ActionId.APPROVE))
        page = published_once(ws, preview["ts"])
        assert page.version == 1
        for response in ws.responses(sent):
            assert response["text"].startswith("Nothing to publish for PD-9876: "), response
        assert [p["channel"] for p in ws.fakes.slack.posted] == [CHANNEL, CHANNEL]
        assert ws.fakes.pagerduty.posted_notes[0]["incident_id"] == INCIDENT_ID
