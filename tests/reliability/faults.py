"""The fault suite's harness: one real `python -m bot` process shared by a module's cases, and what a
person would check after each fault.

Each tests/reliability/test_faults_*.py module starts the e2e fakes once (`tests.e2e.conftest.fakes`) and,
where its cases allow, one bot process (`start_shared`) with short network settings (`FAST`). Before each
case `fresh_workspace` empties the store and resets every fake, so the running process meets each case as
a new incident; it keeps no state of its own between envelopes. `drafted` and `published_once` are the
happy ends a case returns to after its fault.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.ids import ActionId, BlockId
from bot.store.db import create_store_engine
from bot.store.models import Base
from bot.store.repository import Repository, StoredDraft
from tests.e2e.bot_process import BotProcess, clean_env
from tests.e2e.conftest import ANA, INCIDENT_ID, SPACE, Fakes, Sent, Workspace, bot_settings
from tests.e2e.test_review_flow import SLACK_ACK_LIMIT, TITLE, status_line, text_of
from tests.fakes.confluence import FakePage
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll

# A client gives up on a request after 1 s and retries twice: faults play out in seconds, not minutes.
FAST = {"HTTP_TIMEOUT_SECONDS": "1", "HTTP_MAX_RETRIES": "2"}
PROGRESS_TEXT = "Drafting the postmortem for PD-9876…"


@dataclass(frozen=True)
class Shared:
    """A module's bot process, the Confluence parent page it publishes under, and its database."""

    bot: BotProcess
    parent: FakePage
    database_url: str
    flavour: str


def add_parent(fakes: Fakes) -> FakePage:
    return fakes.confluence.add_page(space_key=SPACE, title="Postmortems", body="<p>All our postmortems.</p>")


def bot_env(
    fakes: Fakes,
    *,
    parent: FakePage,
    database_url: str,
    flavour: str,
    settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The e2e settings pointing at the fakes, with `FAST` and `settings` over them."""
    base = bot_settings(fakes, parent_id=parent.id, database_url=database_url, cloud=flavour == "cloud")
    return clean_env({**base, **FAST, **(settings or {})})


@contextmanager
def start_shared(
    fakes: Fakes,
    tmp: Path,
    *,
    name: str,
    database_url: str | None = None,
    flavour: str = "cloud",
    settings: Mapping[str, str] | None = None,
) -> Iterator[Shared]:
    """One connected bot for a module (SQLite unless `database_url`); stopped cleanly (SIGTERM, exit 0) at the end."""
    parent = add_parent(fakes)
    database_url = database_url or f"sqlite:///{tmp / 'bot.sqlite3'}"
    fakes.slack.socket_mode_url = fakes.socket.url
    env = bot_env(fakes, parent=parent, database_url=database_url, flavour=flavour, settings=settings)
    bot = BotProcess(env=env, cwd=tmp, socket=fakes.socket, name=name).start()
    try:
        yield Shared(bot=bot, parent=parent, database_url=database_url, flavour=flavour)
    finally:
        code = bot.stop()
        if bot.connection is not None:
            bot.wait_for_disconnect()
        errors = [r for r in bot.logs() if r["level"] == "critical"]
        assert code == 0 and not errors, bot.stderr[-10_000:]


def reset_store(database_url: str) -> None:
    """Every row of the bot's tables deleted, the schema kept."""
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()


def fresh_workspace(fakes: Fakes, shared: Shared) -> Workspace:
    """Before a case: an empty store and every fake fresh (records, faults, data), the bot still connected;
    Slack still hands out the Socket Mode URL and Confluence keeps the parent page."""
    assert shared.bot.running(), shared.bot.stderr[-10_000:]
    fakes.reset()
    with fakes.confluence._store:
        fakes.confluence.pages[shared.parent.id] = shared.parent
    reset_store(shared.database_url)
    return Workspace(fakes=fakes, parent=shared.parent)


# -- what a person sees ---------------------------------------------------------------------------
def acked_in_time(ws: Workspace, sent: Sent) -> None:
    ack = ws.ack(sent)
    latency = ack.at - ws.delivered_at(sent)
    assert latency < SLACK_ACK_LIMIT, f"acked after {latency:.2f}s"


def channel_message(ws: Workspace, index: int = 0) -> dict[str, Any]:
    """The bot's `index`-th message in the incident channel as it reads now (after every chat.update)."""
    posted = poll(
        lambda: len(ws.posted()) > index and ws.posted(), what=f"message {index + 1} in the channel"
    )
    ts = posted[index]["ts"]
    return ws.latest(ts) or posted[index]


def wait_for_preview(ws: Workspace, ts: str, *, status: str = ":memo: Draft", timeout: float = 30.0) -> dict:
    """The message `ts` once it is a preview whose status line starts with `status`."""
    return poll(
        lambda: (
            (m := ws.latest(ts))
            and any(b.get("block_id") == BlockId.STATUS for b in m.get("blocks", []))
            and status_line(m).startswith(status)
            and m
        ),
        what=f"the preview showing {status!r}",
        timeout=timeout,
    )


def drafted(ws: Workspace, bot: BotProcess, *, timeout: float = 30.0) -> tuple[Sent, dict[str, Any]]:
    """/postmortem PD-9876 acked in time; the progress message it posts becomes the preview."""
    sent = ws.command(bot, "PD-9876")
    acked_in_time(ws, sent)
    progress = poll(lambda: ws.posted(), what="the progress message")[0]
    assert progress["text"] == PROGRESS_TEXT
    preview = wait_for_preview(ws, progress["ts"], timeout=timeout)
    assert action_ids(preview)[0] == ActionId.APPROVE
    return sent, preview


def as_slack_keeps(message: dict[str, Any]) -> dict[str, Any]:
    """The message with a block_id on every block: Slack gives a block posted without one an id of its own
    (the Slack fake keeps blocks as posted), and a click on its button carries that id."""
    blocks = [{"block_id": f"b{n}", **block} for n, block in enumerate(message.get("blocks", []))]
    return {**message, "blocks": blocks}


def notes_of(preview: dict[str, Any]) -> str:
    """The preview's source notes ("GitHub was unreachable: …"), empty when every source answered."""
    return "\n".join(
        text_of({"blocks": [b]}) for b in preview["blocks"] if b.get("block_id") == BlockId.NOTES
    )


def published_once(ws: Workspace, preview_ts: str, *, by: str = ANA) -> FakePage:
    """One publication and no more: one page (labels and chart on it), its link posted once, one PagerDuty
    note, and the preview saying who published it."""
    poll(lambda: ws.fakes.pagerduty.posted_notes, what="the PagerDuty note")
    final = wait_for_preview(ws, preview_ts, status=f":white_check_mark: Published by <@{by}>")
    pages = ws.pages()
    assert [p.title for p in pages] == [TITLE], [p.title for p in pages]
    page = pages[0]
    assert "postmortem" in page.labels and list(page.attachments) == ["PD-9876-timeline.png"]
    links = [p for p in ws.posted() if page.id in p.get("text", "")]
    assert len(links) == 1, links
    notes = ws.fakes.pagerduty.posted_notes
    assert len(notes) == 1 and notes[0]["incident_id"] == INCIDENT_ID, notes
    assert final["blocks"][-1]["elements"][0]["url"].endswith(page.id)
    return page


def told(ws: Workspace, sent: Sent, *, starts: str, timeout: float = 30.0) -> str:
    """The ephemeral answer to `sent` (through its response_url) that starts with `starts`."""
    found = poll(
        lambda: [r for r in ws.responses(sent) if r["text"].startswith(starts)],
        what=f"an answer starting {starts!r}",
        timeout=timeout,
    )
    assert found[0]["response_type"] == "ephemeral", found[0]
    return found[0]["text"]


def stored(database_url: str) -> StoredDraft | None:
    """The incident's draft row as the bot's own store reads it."""
    engine = create_store_engine(database_url)
    try:
        return Repository(engine).get(INCIDENT_ID)
    finally:
        engine.dispose()
