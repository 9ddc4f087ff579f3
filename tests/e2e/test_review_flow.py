"""The review flow end to end: `python -m bot` as a process, Slack envelopes in, every fake's records out.

/postmortem PD-9876 → ack → progress → preview → Edit → the edited summary saved → Approve clicked twice
and redelivered → exactly one Confluence page with the edit, one link in the channel, one PagerDuty note.
Run on SQLite and PostgreSQL (`database_url`) against Confluence Cloud and Data Center (`flavour`).
"""

from __future__ import annotations

from typing import Any

from bot.ids import ActionId, BlockId, CallbackId
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import ANA, INCIDENT_ID, PD_FROM_EMAIL, SPACE, Workspace
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll

TITLE = "Postmortem: PD-9876 — High severity API latency spikes in production"
CHART = "PD-9876-timeline.png"
SUMMARY_BLOCK = f"{BlockId.EDIT_PREFIX}summary"
EDITED_SUMMARY = (
    "Edited in review: the DB pool shrank from 50 to 5 in deploy 1003, so customer-api answered slowly "
    "for about an hour until the rollback"
)
PREVIEW_BUTTONS = [ActionId.APPROVE, ActionId.EDIT, ActionId.REGENERATE, ActionId.DISCARD]
SLACK_ACK_LIMIT = 3.0  # Slack shows the user an error when an envelope is not acked within 3 seconds


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        parts.append((block.get("text") or {}).get("text", ""))
        parts.extend(e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(parts)


def status_line(message: dict[str, Any]) -> str:
    block = next(b for b in message["blocks"] if b.get("block_id") == BlockId.STATUS)
    return " ".join(e.get("text", "") for e in block["elements"])


def draft(ws: Workspace, bot: BotProcess, record_property: Any) -> dict[str, Any]:
    """/postmortem PD-9876: acked at once (not after the draft), a progress message, then the preview in its place."""
    sent = ws.command(bot, "PD-9876")
    ack = ws.ack(sent)
    progress = poll(lambda: ws.posted(), what="the progress message")[0]
    latency = ack.at - ws.delivered_at(sent)
    record_property("command_ack_ms", round(latency * 1000, 1))
    print(f"/postmortem ack latency: {latency * 1000:.1f} ms")
    assert latency < SLACK_ACK_LIMIT
    assert ack.payload is None  # a bare ack: the answer comes as messages, not as the ack's payload

    assert progress["text"] == "Drafting the postmortem for PD-9876…"
    ts = progress["ts"]
    preview = poll(
        lambda: (m := ws.latest(ts)) and ActionId.APPROVE in action_ids(m) and m, what="the preview"
    )
    # The ack does not wait for the work: it arrived before the sources were read and the preview shown.
    # (Not "before the first post": Bolt sends the ack from a 10 ms polling loop while the listener goes on.)
    preview_shown = ws.fakes.slack.requests_to(r"/api/chat\.update$")[-1]
    assert ack.at < preview_shown.received_at, "the command was acked only after the draft was made"
    steps = ws.updates(ts)[:-1]
    assert steps and all(s["text"] == "Drafting the postmortem for PD-9876…" for s in steps), (
        "the progress message was not updated while the sources were read"
    )
    assert action_ids(preview) == PREVIEW_BUTTONS
    assert all(b.get("value") == INCIDENT_ID for b in preview["blocks"][-1]["elements"])
    assert "Draft: nothing is published" in status_line(preview)
    assert [p["ts"] for p in ws.posted()] == [ts], "the preview replaces the progress message"
    assert ws.responses(sent) == [], "the person who asked was told of a problem"
    return preview


def edit_summary(ws: Workspace, bot: BotProcess, preview: dict[str, Any]) -> dict[str, Any]:
    """Edit opens the modal the bot renders; submitting it with a new summary updates the preview."""
    clicked = ws.click(bot, preview, ActionId.EDIT)
    ws.ack(clicked)
    opened = poll(lambda: ws.opened_views(), what="the Edit modal")
    assert len(opened) == 1
    assert opened[0]["trigger_id"] == clicked.payload["trigger_id"]
    view = opened[0]["view"]
    assert view["callback_id"] == CallbackId.EDIT_MODAL
    assert view["private_metadata"] == INCIDENT_ID
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert SUMMARY_BLOCK in inputs and len(inputs) > 1

    submitted = ws.submit(bot, view, {SUMMARY_BLOCK: EDITED_SUMMARY})
    ack = ws.ack(submitted)
    assert ack.payload is None, f"the modal was refused: {ack.payload}"
    ts = preview["ts"]
    updated = poll(
        lambda: (m := ws.latest(ts)) and EDITED_SUMMARY in text_of(m) and m, what="the edited preview"
    )
    assert "*Summary* _(edited)_" in text_of(updated)
    assert action_ids(updated) == PREVIEW_BUTTONS
    return updated


def approve_twice(ws: Workspace, bot: BotProcess, preview: dict[str, Any], record_property: Any) -> None:
    """Two Approve clicks back to back and the first envelope redelivered: all acked, two told 'nothing to do'."""
    first = ws.click(bot, preview, ActionId.APPROVE)
    second = ws.click(bot, preview, ActionId.APPROVE)
    ws.redeliver(first)
    assert first.envelope_id != second.envelope_id
    latencies = [ws.ack(sent).at - ws.delivered_at(sent) for sent in (first, second)]
    record_property("approve_ack_ms", [round(s * 1000, 1) for s in latencies])
    print("Approve ack latencies: " + ", ".join(f"{s * 1000:.1f} ms" for s in latencies))
    assert max(latencies) < SLACK_ACK_LIMIT
    poll(lambda: len(ws.acks_of(first)) == 2, what="the ack of the redelivered envelope")

    refusals = poll(lambda: len(r := ws.responses(first, second)) >= 2 and r, what="two 'nothing to publish'")
    assert len(refusals) == 2
    for refusal in refusals:
        assert refusal["text"].startswith("Nothing to publish for PD-9876: "), refusal["text"]
        assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    # The winner's last step is the PagerDuty note, then its log line: after it nothing is left running.
    poll(lambda: any(r.get("event") == "published" for r in bot.logs()), what="the publication's log line")


def assert_published_once(ws: Workspace, preview_ts: str, flavour: str) -> None:
    """One page with the edit, labels and chart; its link posted once; one PagerDuty note; preview says so."""
    confluence = ws.fakes.confluence
    pages = ws.pages()
    assert len(pages) == 1, [p.title for p in pages]
    page = pages[0]
    assert (page.title, page.space_key, page.parent_id) == (TITLE, SPACE, ws.parent.id)
    assert page.version == 1, "the page was written more than once"
    assert EDITED_SUMMARY in page.body
    assert f'ri:filename="{CHART}"' in page.body
    assert sorted(page.labels) == sorted(["postmortem", "sev-1", "customer-api", "auth-service"])
    assert list(page.attachments) == [CHART]
    assert page.attachments[CHART].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert page.attachments[CHART].mime == "image/png"

    creates = [r.path for r in confluence.requests if r.method == "POST" and r.status == 200]
    if flavour == "cloud":
        url = f"{confluence.cloud_url}/spaces/{SPACE}/pages/{page.id}"
        assert creates.count("/wiki/api/v2/pages") == 1
        assert not any(p.startswith(confluence.context_path) for p in creates)
    else:
        url = f"{confluence.dc_url}/pages/viewpage.action?pageId={page.id}"
        assert creates.count(f"{confluence.context_path}/rest/api/content") == 1
        assert not any(p.startswith("/wiki/") for p in creates)

    links = [p for p in ws.posted() if url in p.get("text", "")]
    assert len(links) == 1, links
    assert links[0]["text"] == f"The postmortem of PD-9876 was published by <@{ANA}>: {url}"
    assert len(ws.posted()) == 2, "only the preview and the link are posted in the channel"

    assert ws.fakes.pagerduty.posted_notes == [
        {"incident_id": INCIDENT_ID, "from": PD_FROM_EMAIL, "content": f"Postmortem published: {url}"}
    ]

    final = ws.latest(preview_ts)
    assert final is not None
    assert status_line(final).startswith(f":white_check_mark: Published by <@{ANA}>")
    assert action_ids(final) == [ActionId.OPEN_PAGE, ActionId.EDIT, ActionId.APPROVE]
    assert final["blocks"][-1]["elements"][0]["url"] == url
    assert EDITED_SUMMARY in text_of(final)


def assert_stopped_cleanly(bot: BotProcess) -> None:
    """SIGTERM ends the process with 0; every stderr line was a JSON log record and none an error."""
    assert bot.stop() == 0, bot.stderr
    records = bot.logs()
    events = [r["event"] for r in records]
    assert "connected to Slack in Socket Mode" in events and events[-2:] == ["stopping", "stopped"], events
    errors = [r for r in records if r["level"] in ("error", "critical")]
    assert errors == [], errors


class TestReviewFlow:
    def test_edit_then_approve_twice_publishes_once(
        self, workspace: Workspace, start_bot, flavour: str, record_property
    ) -> None:
        """Drafted, edited and approved twice (plus a redelivery): one page with the edit, one link, one note."""
        bot = start_bot()
        record_property("bot_start_s", round(bot.started_in, 2))
        preview = draft(workspace, bot, record_property)
        edited = edit_summary(workspace, bot, preview)
        approve_twice(workspace, bot, edited, record_property)
        assert_published_once(workspace, preview["ts"], flavour)
        assert_stopped_cleanly(bot)

    def test_a_restart_after_the_preview_keeps_its_buttons_working(
        self, workspace: Workspace, start_bot, flavour: str, record_property
    ) -> None:
        """The bot is killed once the preview is shown; a new process on the same database acts on the old
        preview's Edit and Approve buttons, and the end state is the same."""
        first = start_bot()
        preview = draft(workspace, first, record_property)
        first.kill()  # no goodbye: whatever must survive is in the database already
        first.wait_for_disconnect()

        second = start_bot("run")
        record_property("bot_restart_s", round(second.started_in, 2))
        edit_summary(workspace, second, preview)  # the old preview's Edit button
        approve_twice(workspace, second, preview, record_property)  # and its Approve button
        assert_published_once(workspace, preview["ts"], flavour)
        assert_stopped_cleanly(second)
