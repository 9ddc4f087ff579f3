"""Several replicas: two `python -m bot` processes on one PostgreSQL behave as one bot.

Both connect to the one Socket Mode fake, which (like Slack) may hand any envelope to either connection.
A preview drafted on one replica is edited and approved on the other; the same Approve envelope delivered
to both publishes once. Both run the PagerDuty watcher: each resolved incident is prompted once, also when
people prompted it first ("resolved" message, /postmortem), and also after the lease holder is killed and
the other replica takes the watch over.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bot.ids import ActionId
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import ANA, BotStarter, Workspace
from tests.e2e.test_review_flow import assert_published_once, assert_stopped_cleanly, draft, edit_summary
from tests.fakes.pagerduty import generated_incident
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll

# Replicas need one database they all reach: PostgreSQL (a SQLite file is one machine's).
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

WATCH = {"WATCH_ENABLED": "true", "WATCH_INTERVAL_SECONDS": "5"}  # the shortest interval the settings allow
LEASE = "pagerduty-watcher"  # the watcher's lease row (bot/jobs/watcher.py CURSOR)


def two_replicas(
    ws: Workspace, start_bot: BotStarter, settings: dict[str, str] | None = None
) -> list[BotProcess]:
    """Two bot processes started at the same moment on a fresh database (their migrations race), each holding
    its own live Socket Mode connection to the one fake."""
    bots = start_bot.together(2, settings=settings)
    live = sorted(c.number for c in ws.fakes.socket.live_connections())
    assert live == sorted(bot.connection for bot in bots), live
    assert len({bot.connection for bot in bots}) == 2 and len({bot.pid for bot in bots}) == 2
    return bots


def events(bot: BotProcess, incident: str | None = None) -> list[str]:
    """The log events of one process, optionally only those about one incident."""
    return [r["event"] for r in bot.logs() if incident is None or r.get("incident") == incident]


class TestReplicasReview:
    def test_a_preview_drafted_on_one_replica_is_edited_and_approved_on_the_other(
        self, workspace: Workspace, start_bot: BotStarter, flavour: str, record_property
    ) -> None:
        """/postmortem on A, Edit and Approve on B, the Approve envelope again on A: one page, link, note."""
        ws = workspace
        a, b = two_replicas(ws, start_bot)
        preview = draft(ws, a, record_property)
        assert "drafting" in events(a) and "drafting" not in events(b), (
            "a process handled an envelope delivered to the other"
        )

        edit_summary(ws, b, preview)  # the Edit click and the modal's submission go to B
        assert "edited" in events(b) and "edited" not in events(a)

        # One Approve click delivered to B, and the same envelope (same id) to A, as after a lost ack.
        clicked = ws.click(b, preview, ActionId.APPROVE)
        ws.redeliver(clicked, to=a)
        acks = poll(
            lambda: len(x := ws.acks_of(clicked)) == 2 and x, what="both acks of the Approve envelope"
        )
        assert {ack.connection for ack in acks} == {a.connection, b.connection}
        poll(lambda: "published" in events(a) + events(b), what="the publication's log line")
        refusal = poll(lambda: ws.responses(clicked), what="the other replica's 'nothing to publish'")
        assert len(refusal) == 1 and refusal[0]["text"].startswith("Nothing to publish for PD-9876: "), (
            refusal
        )
        assert "publishing" in events(a) and "publishing" in events(b), "each replica handled the envelope"
        assert [events(bot).count("published") for bot in (a, b)] in ([1, 0], [0, 1])

        assert_published_once(ws, preview["ts"], flavour)
        assert_stopped_cleanly(a)
        assert_stopped_cleanly(b)


# -- the watcher ----------------------------------------------------------------------------------------
NUMBERS = (5001, 5002, 5003, 5004, 5005)


def channel_of(number: int) -> tuple[str, str]:
    return f"C07INC{number}", f"inc-{number}-checkout-errors"


def add_incident(ws: Workspace, number: int, *, resolved_at: datetime | None, now: datetime) -> str:
    """A PagerDuty incident created 40 minutes ago: resolved at `resolved_at`, else still acknowledged.
    Adding it again replaces it, as PagerDuty's own record changes when someone resolves it."""
    generated = generated_incident(
        number, log_entries=4, created_at=now - timedelta(minutes=40), resolved_at=resolved_at or now
    )
    incident, entries = generated.incident, generated.log_entries
    if resolved_at is None:
        acknowledged = incident["created_at"]
        incident |= {"status": "acknowledged", "resolved_at": None, "last_status_change_at": acknowledged}
        incident["updated_at"] = acknowledged
        entries = entries[1:]  # newest first: no resolve entry yet
    ws.fakes.pagerduty.add_incident(incident, entries, generated.alerts, generated.notes)
    return incident["id"]


def prompts(ws: Workspace, number: int) -> list[dict[str, Any]]:
    """The "draft its postmortem?" prompts posted in the incident's channel."""
    channel_id, _ = channel_of(number)
    text = f"PD-{number} looks resolved. Draft its postmortem?"
    return [p for p in list(ws.fakes.slack.posted) if p["channel"] == channel_id and p.get("text") == text]


def prompt_counts(ws: Workspace) -> dict[int, int]:
    return {number: len(prompts(ws, number)) for number in NUMBERS}


def watcher_runs_after(ws: Workspace, at: float) -> int:
    """PagerDuty incident listings (one per watcher run, by the lease holder) that arrived after `at`."""
    return sum(1 for r in ws.fakes.pagerduty.requests_to(r"^/incidents$", "GET") if r.received_at > at)


def two_more_runs(ws: Workspace, what: str) -> None:
    """Wait until a watcher run has started and finished after now (a second run starts only after it)."""
    since = time.monotonic()
    poll(lambda: watcher_runs_after(ws, since) >= 2, what=what)


def query(database_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def expire_lease(database_url: str) -> None:
    """The watcher's lease lapses now, as it would once its TTL ran out."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        sql = "UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = %s"
        assert conn.execute(sql, (LEASE,)).rowcount == 1


def lease_pid(database_url: str) -> int | None:
    """The process holding the watcher's lease: its holder reads "host:pid:random"."""
    rows = query(database_url, "SELECT holder FROM leases WHERE name = %s", LEASE)
    return int(rows[0][0].rsplit(":", 2)[1]) if rows else None


def prompt_triggers(database_url: str, ids: dict[int, str]) -> dict[int, str]:
    by_id = dict(query(database_url, "SELECT incident_id, trigger FROM prompts"))
    return {number: by_id[incident_id] for number, incident_id in ids.items() if incident_id in by_id}


class TestReplicasWatch:
    @pytest.mark.parametrize("flavour", ["cloud"], indirect=True)  # nothing is published here
    def test_both_watchers_prompt_each_resolved_incident_once(
        self, workspace: Workspace, start_bot: BotStarter, database_url: str, record_property
    ) -> None:
        """Two watchers, incidents resolved before and while they run, two prompted by people first, then the
        lease holder killed: one prompt per incident, never a second one."""
        ws = workspace
        begun = time.monotonic()
        now = datetime.now(UTC)
        for number in NUMBERS:
            channel_id, name = channel_of(number)
            ws.fakes.slack.add_channel({"id": channel_id, "name": name}, members=[ANA, "U09PMBOT"])
        ids = {
            5001: add_incident(ws, 5001, resolved_at=now - timedelta(minutes=3), now=now),
            5004: add_incident(ws, 5004, resolved_at=now - timedelta(minutes=1), now=now),
            5002: add_incident(ws, 5002, resolved_at=None, now=now),  # people say "resolved" first
            5003: add_incident(ws, 5003, resolved_at=None, now=now),  # someone runs /postmortem first
        }
        a, b = two_replicas(ws, start_bot, WATCH)
        poll(lambda: prompts(ws, 5001) and prompts(ws, 5004), what="the watcher's prompts")

        # Before PagerDuty resolves them: a "resolved" message prompts 5002, /postmortem drafts 5003.
        ws.message(b, channel_id=channel_of(5002)[0], text="Incident is resolved, all clear. Thanks all!")
        poll(lambda: prompts(ws, 5002), what="the prompt of the 'resolved' message")
        channel_id, name = channel_of(5003)
        ws.command(a, "PD-5003", channel_id=channel_id, channel_name=name)
        progress = poll(
            lambda: [p for p in list(ws.fakes.slack.posted) if p["channel"] == channel_id],
            what="the progress message of /postmortem PD-5003",
        )[0]
        poll(
            lambda: ActionId.APPROVE in action_ids(ws.fakes.slack.message(channel_id, progress["ts"]) or {}),
            what="the preview of PD-5003",
        )
        for number in (5002, 5003):
            add_incident(ws, number, resolved_at=datetime.now(UTC), now=now)
        two_more_runs(ws, "a watcher run after PagerDuty resolved 5002 and 5003")
        assert prompt_counts(ws) == {5001: 1, 5002: 1, 5003: 0, 5004: 1, 5005: 0}
        assert prompt_triggers(database_url, ids) == {
            5001: "watcher",
            5002: "message",
            5003: "command",
            5004: "watcher",
        }

        # One replica holds the lease and does the watching; the other stays idle.
        holder_pid = lease_pid(database_url)
        assert holder_pid in (a.pid, b.pid), holder_pid
        holder, survivor = (a, b) if holder_pid == a.pid else (b, a)
        for key in ("PD-5001", "PD-5004"):
            assert events(holder, key).count("offered a postmortem") == 1
            assert "offered a postmortem" not in events(survivor, key)

        # The holder is killed (SIGKILL: no goodbye). Its lease would lapse after its TTL (2 minutes at the
        # least): move the expiry to now instead of waiting. The survivor's next run takes the watch over and
        # re-reads the last 10 minutes behind the cursor (the overlap): 5001-5004 again, and 5005, new.
        holder.kill()
        holder.wait_for_disconnect()
        ids[5005] = add_incident(ws, 5005, resolved_at=datetime.now(UTC), now=now)
        expire_lease(database_url)
        poll(lambda: lease_pid(database_url) == survivor.pid, what="the survivor taking the lease")
        poll(lambda: prompts(ws, 5005), what="the survivor's prompt of PD-5005")
        two_more_runs(ws, "another run of the survivor's watcher")
        assert prompt_counts(ws) == {5001: 1, 5002: 1, 5003: 0, 5004: 1, 5005: 1}
        assert prompt_triggers(database_url, ids)[5005] == "watcher"
        assert events(survivor, "PD-5005").count("offered a postmortem") == 1
        record_property("watch_test_s", round(time.monotonic() - begun, 1))
        assert_stopped_cleanly(survivor)
