"""The bot process killed mid-step, end to end: SIGKILL while drafting and while publishing, then a new
process on the same database (SQLite and PostgreSQL).

A fault makes the step slow (a GitHub read or a Confluence label write held past the client's timeout) so
the kill lands inside it; the store shows the step under way before the kill. The new process's recovery
job (at start, then every minute) finds the work older than STALE_WORK_SECONDS=2 and turns it into a visible
failure with Retry in the channel message; Retry then finishes the work, with exactly one page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.ids import ActionId
from bot.store.models import DraftStatus
from bot.store.repository import STOPPED_DRAFTING, STOPPED_PUBLISHING, StoredDraft
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import (
    Workspace,
    fakes,  # noqa: F401 - the module's fakes, a fixture
    workspace,  # noqa: F401 - a fresh workspace per case, a fixture
)
from tests.fakes.http import Fault
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll
from tests.reliability.faults import (
    PROGRESS_TEXT,
    acked_in_time,
    as_slack_keeps,
    bot_env,
    channel_message,
    drafted,
    published_once,
    status_line,
    stored,
    wait_for_preview,
)

STALE = 2  # STALE_WORK_SECONDS: a step unfinished this long is taken to be cut off by a dead process


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:  # noqa: F811
    """The e2e workspace: fakes reset, a Confluence parent page, no bot connected."""
    return workspace


@pytest.fixture
def start(ws: Workspace, database_url: str, tmp_path: Path) -> Iterator[Callable[[], BotProcess]]:
    """start() -> a connected bot on this case's database; every one still running is stopped at the end."""
    env = bot_env(
        ws.fakes,
        parent=ws.parent,
        database_url=database_url,
        flavour="cloud",
        settings={"STALE_WORK_SECONDS": str(STALE)},
    )
    started: list[BotProcess] = []

    def launch() -> BotProcess:
        bot = BotProcess(env=env, cwd=tmp_path, socket=ws.fakes.socket, name=f"bot{len(started) + 1}")
        started.append(bot)
        return bot.start()

    yield launch
    for bot in started:
        if bot.running():
            bot.stop()
        if bot.connection is not None:
            bot.wait_for_disconnect()


def row(database_url: str) -> StoredDraft:
    found = stored(database_url)
    assert found is not None, "no draft row"
    return found


def kill_when(bot: BotProcess, ready: Callable[[], Any], *, what: str) -> None:
    """SIGKILL the process as soon as `ready()` holds (it must hold while the step is still running)."""
    poll(ready, what=what)
    assert bot.running(), "the step ended before the kill"
    bot.kill()
    bot.wait_for_disconnect()


def wait_until_stale(database_url: str) -> None:
    """The cut-off step is older than STALE_WORK_SECONDS by the store's clock, so recovery at start takes it."""
    started = row(database_url).updated_at
    poll(
        lambda: datetime.now(UTC) - started > timedelta(seconds=STALE, milliseconds=200),
        what="the step to turn stale",
        timeout=STALE + 5,
    )


class TestKilledMidStep:
    """Process killed mid-step, then restarted"""

    @pytest.mark.case("killed while drafting")
    def test_a_draft_cut_off_by_a_kill_is_shown_failed_and_retry_drafts_it(
        self,
        ws: Workspace,
        start: Callable[[], BotProcess],
        database_url: str,
        figures,
    ) -> None:
        """SIGKILL while GitHub is being read: the channel shows "Drafting…" and the store "drafting"; the next
        process shows "Could not draft … the bot stopped" with Retry in that message, and Retry drafts the
        preview in place; approving it publishes one page."""
        first = start()
        ws.fakes.github.faults.add(Fault("hang", times=None, path=r"^/repos/", seconds=5))
        acked_in_time(ws, ws.command(first, "PD-9876"))
        kill_when(
            first,
            # The progress message posted and recorded (the cut before it is recorded: tests/slack/test_announcer.py).
            lambda: ws.posted() and row(database_url).preview_ts is not None,
            what="drafting under way, its progress message recorded",
        )
        progress = channel_message(ws)
        assert progress["text"] == PROGRESS_TEXT and row(database_url).preview_ts == progress["ts"]
        ws.fakes.github.faults.clear()
        wait_until_stale(database_url)

        second = start()
        failed = poll(
            lambda: (m := ws.latest(progress["ts"])) and ActionId.START_DRAFT in action_ids(m) and m,
            what="the failure with Retry in the progress message",
        )
        assert failed["blocks"][0]["text"]["text"] == f"Could not draft PD-9876: {STOPPED_DRAFTING}", failed
        assert (row(database_url).status, row(database_url).error) == (DraftStatus.FAILED, STOPPED_DRAFTING)

        acked_in_time(ws, ws.click(second, as_slack_keeps(failed), ActionId.START_DRAFT))
        preview = wait_for_preview(ws, progress["ts"])
        assert len(ws.posted()) == 1, "the draft reuses its message"
        acked_in_time(ws, ws.click(second, preview, ActionId.APPROVE))
        published_once(ws, progress["ts"])
        figures["processes"] = 2
        figures["pages"] = len(ws.pages())

    @pytest.mark.case("killed while publishing")
    def test_a_publication_cut_off_by_a_kill_is_shown_failed_and_retry_finishes_it(
        self,
        ws: Workspace,
        start: Callable[[], BotProcess],
        database_url: str,
        figures,
    ) -> None:
        """SIGKILL after the page was created but before its labels and chart: the preview says "Publishing…"
        and the store "publishing"; the next process shows "Publishing failed: the bot stopped" with Retry,
        and Retry finds the page by its title and finishes it: one page, one link, one PagerDuty note."""
        first = start()
        _, preview = drafted(ws, first)
        ws.fakes.confluence.faults.add(Fault("hang", times=None, path=r"/label$", seconds=8))
        acked_in_time(ws, ws.click(first, preview, ActionId.APPROVE))
        kill_when(
            first,
            lambda: ws.pages() and row(database_url).status is DraftStatus.PUBLISHING,
            what="the page created, publishing under way",
        )
        publishing = ws.latest(preview["ts"])
        assert publishing is not None and status_line(publishing).startswith(
            ":hourglass_flowing_sand: Publishing"
        )
        assert action_ids(publishing) == [], "no button while publishing"
        [half] = ws.pages()
        assert half.labels == [] and half.attachments == {}, "the kill landed before the labels"
        ws.fakes.confluence.faults.clear()
        wait_until_stale(database_url)

        second = start()
        failed = wait_for_preview(ws, preview["ts"], status=":x: Publishing failed: ")
        assert STOPPED_PUBLISHING.split(".")[0] in status_line(failed), status_line(failed)
        assert action_ids(failed)[0] == ActionId.RETRY_PUBLISH
        assert row(database_url).status is DraftStatus.FAILED

        acked_in_time(ws, ws.click(second, failed, ActionId.RETRY_PUBLISH))
        page = published_once(ws, preview["ts"])
        assert page.id == half.id, "Retry finished the page it had made, not a second one"
        figures["processes"] = 2
        figures["pages"] = len(ws.pages())
