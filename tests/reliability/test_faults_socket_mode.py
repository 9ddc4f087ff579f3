"""Socket Mode faults, end to end: the real `python -m bot` process loses its connection mid-session.

One bot process serves every case of this module (SQLite, Confluence Cloud); each case starts from an
empty store and fresh fakes. Slack's side is the Socket Mode fake: `drop()` closes the socket with no
goodbye, `disconnect()` sends Slack's `{"type": "disconnect"}`, and an envelope whose ack may have been
lost is delivered again with the same envelope_id on the new connection, as Slack does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from bot.ids import ActionId
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import (
    Fakes,
    Sent,
    Workspace,
    fakes,  # noqa: F401 - the module's fakes, a fixture
)
from tests.fakes.wait import poll
from tests.reliability.faults import (
    Shared,
    acked_in_time,
    channel_message,
    drafted,
    fresh_workspace,
    published_once,
    start_shared,
    wait_for_preview,
)

HEALTH_CHECK = 10.0  # seconds between the Socket Mode client's own checks of its connection (ping_interval)


@pytest.fixture(scope="module")
def shared(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:  # noqa: F811
    with start_shared(fakes, tmp_path_factory.mktemp("socket-mode"), name="socket-mode") as bot:
        yield bot


@pytest.fixture
def ws(fakes: Fakes, shared: Shared) -> Workspace:  # noqa: F811
    return fresh_workspace(fakes, shared)


def connections_opened(ws: Workspace) -> int:
    return len(ws.fakes.slack.requests_to(r"/api/apps\.connections\.open$"))


def lose_connection(ws: Workspace, bot: BotProcess, how: Callable[[], None]) -> float:
    """Slack ends the bot's connection (`how`); the bot opens a new one through apps.connections.open.
    Returns the seconds it went without one."""
    old, opened = bot.connection, connections_opened(ws)
    began = time.monotonic()
    how()
    assert bot.reconnected() != old
    without = time.monotonic() - began
    assert connections_opened(ws) == opened + 1
    return without


def deliver_then_drop(ws: Workspace, bot: BotProcess, send: Callable[[], Sent]) -> Sent:
    """Deliver an envelope and close the socket at once, so its ack may never reach Slack; Slack then
    delivers it again, same envelope_id, on the connection the bot opens next, and gets that ack."""
    sent = send()
    lose_connection(ws, bot, ws.fakes.socket.drop)
    ws.fakes.socket.deliver(
        sent.envelope_type, sent.payload, envelope_id=sent.envelope_id, connection=bot.connection
    )
    poll(
        lambda: any(a.connection == bot.connection for a in ws.acks_of(sent)),
        what="the redelivered envelope's ack on the new connection",
    )
    return sent


class TestConnectionLost:
    """Socket Mode: the connection lost mid-session"""

    @pytest.mark.case("the socket closed without a goodbye (drop)")
    def test_a_dropped_connection_is_reopened_at_once(self, ws: Workspace, shared: Shared) -> None:
        """With a preview in review, Slack closes the socket without a goodbye: the bot opens a new
        connection at once (not at its next health check) and the next click, Approve, publishes once."""
        bot = shared.bot
        _, preview = drafted(ws, bot)
        without = lose_connection(ws, bot, ws.fakes.socket.drop)
        assert without < HEALTH_CHECK / 2, f"reconnected only after {without:.1f}s"
        acked_in_time(ws, ws.click(bot, preview, ActionId.APPROVE))
        published_once(ws, preview["ts"])

    @pytest.mark.case("Slack's disconnect message")
    def test_a_disconnect_message_is_followed(self, ws: Workspace, shared: Shared) -> None:
        """Slack says `disconnect` (refresh_requested) and keeps the old socket open a while: the bot opens a
        new connection, and the next /postmortem there is acked in time (not held up while the old
        connection closes) and drafts the preview as usual."""
        bot = shared.bot
        lose_connection(ws, bot, ws.fakes.socket.disconnect)
        sent, preview = drafted(ws, bot)
        assert ws.responses(sent) == []
        assert len(ws.posted()) == 1


class TestRedelivery:
    """Socket Mode: an envelope redelivered after a lost connection"""

    @pytest.mark.case("a /postmortem whose ack may be lost")
    def test_a_redelivered_command_drafts_once(self, ws: Workspace, shared: Shared, figures) -> None:
        """/postmortem delivered, the socket dropped, the same envelope delivered again: one progress
        message becomes one preview; a delivery that finds the draft under way is told so, not drafted twice."""
        bot = shared.bot
        sent = deliver_then_drop(ws, bot, lambda: ws.command(bot, "PD-9876"))
        preview = wait_for_preview(ws, channel_message(ws)["ts"])
        acked_in_time(ws, ws.click(bot, preview, ActionId.APPROVE))
        published_once(ws, preview["ts"])  # seconds later: every delivery has long been handled
        assert len(ws.posted()) == 2, "the channel holds the preview and the page's link, nothing else"
        # Each delivery the bot handled looked the incident up once; all but the one that drafted were told.
        handled = len(ws.fakes.pagerduty.requests_to(r"^/incidents/9876$"))
        answers = ws.responses(sent)
        assert handled == 1 + len(answers), (handled, answers)
        for answer in answers:
            assert answer["text"].startswith("A postmortem draft for PD-9876 already exists"), answer
        figures["messages in the channel"] = len(ws.posted())
        figures["pages"] = len(ws.pages())

    @pytest.mark.case("an Approve whose ack may be lost")
    def test_a_redelivered_approve_publishes_once(self, ws: Workspace, shared: Shared, figures) -> None:
        """Approve delivered, the socket dropped, the same envelope delivered again: one page, one link,
        one PagerDuty note; a delivery that finds it done is told there is nothing to publish."""
        bot = shared.bot
        _, preview = drafted(ws, bot)
        sent = deliver_then_drop(ws, bot, lambda: ws.click(bot, preview, ActionId.APPROVE))
        page = published_once(ws, preview["ts"])
        assert page.version == 1, "the page was written twice"
        for response in ws.responses(sent):
            assert response["text"].startswith("Nothing to publish for PD-9876: "), response
        figures["pages"] = len(ws.pages())
        figures["PagerDuty notes"] = len(ws.fakes.pagerduty.posted_notes)
