from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from bot.analysis.models import Draft, EditableSection
from bot.ids import EDIT_INPUT_ACTION, ActionId, BlockId, CallbackId
from bot.render.blockkit import (
    PreviewState,
    fit,
    key_events,
    mrkdwn,
    render_blockkit,
    render_draft_failure,
    render_edit_modal,
    render_progress,
    render_prompt,
)
from bot.render.options import RenderOptions
from bot.timeline.models import EventKind
from tests.render.conftest import HOSTILE, assert_golden

BROADCAST = re.compile(r"(?<!\w)@(channel|here|everyone)\b", re.IGNORECASE)
# Slack markup that would mention, link or notify: user, channel, group, broadcast.
MENTION_MARKUP = re.compile(r"<[@#!]")


def texts(node: object) -> Iterator[dict]:
    """Every text object in a block tree."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            yield node
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from texts(value)


def assert_within_slack_limits(blocks: list[dict]) -> None:
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert len(block.get("block_id", "")) <= 255
        match block["type"]:
            case "header":
                assert len(block["text"]["text"]) <= 150
            case "section":
                assert "text" in block or "fields" in block
                assert len(block.get("text", {}).get("text", "")) <= 3000
                assert len(block.get("fields", [])) <= 10
                assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
            case "context":
                assert 1 <= len(block["elements"]) <= 10
                assert all(len(e["text"]) <= 3000 for e in block["elements"])
            case "actions":
                assert 1 <= len(block["elements"]) <= 25
                for button in block["elements"]:
                    assert len(button["text"]["text"]) <= 75
                    assert len(button.get("value", "")) <= 2000
                    assert len(button.get("url", "")) <= 3000
                    if "confirm" in button:
                        assert len(button["confirm"]["title"]["text"]) <= 100
                        assert len(button["confirm"]["text"]["text"]) <= 300
    assert len(json.dumps(blocks)) < 50_000


def assert_no_pings(blocks: list[dict], *, allowed_user: str | None = None) -> None:
    for text in texts(blocks):
        body = text["text"]
        if allowed_user:
            body = body.replace(f"<@{allowed_user}>", "")
        assert not BROADCAST.search(body), body
        if text["type"] == "mrkdwn":
            assert not MENTION_MARKUP.search(body), body
            assert text.get("verbatim") is True or not any(c in body for c in "@<"), body


def section_text(blocks: list[dict], block_id: str) -> str:
    return next(b["text"]["text"] for b in blocks if b.get("block_id") == block_id)


def buttons(blocks: list[dict]) -> dict[str, dict]:
    actions = [b for b in blocks if b["type"] == "actions"]
    return {e["action_id"]: e for a in actions for e in a["elements"]}


class TestRenderBlockkit:
    def test_golden(self, draft: Draft, options: RenderOptions) -> None:
        """The sample incident's preview is exactly tests/render/golden/pd-9876.blockkit.json."""
        blocks = render_blockkit(draft, options=options)
        assert_golden("pd-9876.blockkit.json", json.dumps(blocks, indent=2, sort_keys=True) + "\n")

    def test_golden_published(self, draft: Draft, options: RenderOptions) -> None:
        """The published preview is exactly tests/render/golden/pd-9876.published.blockkit.json."""
        state = PreviewState(
            status="published",
            published_by="U01ANA",
            page_url="https://acme.atlassian.net/wiki/x/AbC",
            draft_id="d-1",
        )
        blocks = render_blockkit(draft, options=options, state=state)
        assert_golden("pd-9876.published.blockkit.json", json.dumps(blocks, indent=2, sort_keys=True) + "\n")

    def test_content(self, draft: Draft, options: RenderOptions) -> None:
        """Header, facts with local time, metrics with evidence, suspect, timeline, action items, redactions."""
        blocks = render_blockkit(draft, options=options)
        assert blocks[0] == {
            "type": "header",
            "block_id": BlockId.HEADER,
            "text": {
                "type": "plain_text",
                "text": "Postmortem draft: PD-9876 — High severity API latency spikes in production",
            },
        }
        facts = [f["text"] for f in blocks[1]["fields"]]
        assert "*Started*\n2024-07-20 10:30 UTC (12:30 CEST)" in facts and "*Duration*\n1 h 45 min" in facts
        assert "*Severity*\nSEV-1" in facts and "*Incident commander*\nAna Lima" in facts
        metrics = section_text(blocks, BlockId.METRICS)
        assert "Time to acknowledge: *4 min*" in metrics
        assert (
            "<https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7/log_entries/R1ACK000000001|Acknowledged by Ana Lima>"
            in metrics
        )
        suspect = section_text(blocks, BlockId.SUSPECT)
        assert (
            "`acme/customer-api`" in suspect
            and "|`9f8e7d6`>" in suspect
            and "18 min before the trigger" in suspect
        )
        assert "• its pull request #482 was linked in the channel" in suspect
        items = section_text(blocks, BlockId.ACTION_ITEMS)
        assert "*Dee Park* we should be more careful" in items and "_no owner stated; not specific_" in items
        redactions = next(b for b in blocks if b.get("block_id") == BlockId.REDACTIONS)
        assert "3 secrets redacted" in redactions["elements"][0]["text"]

    def test_draft_buttons(self, draft: Draft, options: RenderOptions) -> None:
        """A draft offers Approve (primary, confirmed), Edit, Regenerate, Discard (danger, confirmed)."""
        found = buttons(render_blockkit(draft, options=options))
        assert list(found) == [ActionId.APPROVE, ActionId.EDIT, ActionId.REGENERATE, ActionId.DISCARD]
        assert found[ActionId.APPROVE]["style"] == "primary" and "confirm" in found[ActionId.APPROVE]
        assert (
            found[ActionId.DISCARD]["style"] == "danger"
            and found[ActionId.DISCARD]["confirm"]["style"] == "danger"
        )
        assert {b["value"] for b in found.values()} == {draft.incident.id}

    def test_published_state(self, draft: Draft, options: RenderOptions) -> None:
        """After publishing: who published, a link button to the page, Edit and Approve again for updates."""
        state = PreviewState(
            status="published",
            published_by="U01ANA",
            page_url="https://acme.atlassian.net/wiki/x/AbC",
            draft_id="d-1",
        )
        blocks = render_blockkit(draft, options=options, state=state)
        status = next(b for b in blocks if b.get("block_id") == BlockId.STATUS)["elements"][0]["text"]
        assert "Published by <@U01ANA>" in status
        found = buttons(blocks)
        assert list(found) == [ActionId.OPEN_PAGE, ActionId.EDIT, ActionId.APPROVE]
        assert found[ActionId.OPEN_PAGE]["url"] == "https://acme.atlassian.net/wiki/x/AbC"
        assert {b["value"] for b in found.values()} == {"d-1"}

    def test_published_by_must_be_a_user_id(self, draft: Draft, options: RenderOptions) -> None:
        """A published_by that is not a Slack user id is never turned into a mention."""
        state = PreviewState(status="published", published_by="!channel", page_url="javascript:alert(1)")
        blocks = render_blockkit(draft, options=options, state=state)
        assert_no_pings(blocks)
        assert ActionId.OPEN_PAGE not in buttons(blocks)

    def test_failed_state(self, draft: Draft, options: RenderOptions) -> None:
        """A failed publication shows the error (neutralised) and a Retry button."""
        state = PreviewState(status="failed", error="Confluence said 400: <!channel> bad body & more")
        blocks = render_blockkit(draft, options=options, state=state)
        status = next(b for b in blocks if b.get("block_id") == BlockId.STATUS)["elements"][0]["text"]
        assert "Publishing failed: Confluence said 400: &lt;!channel&gt; bad body &amp; more" in status
        assert list(buttons(blocks)) == [ActionId.RETRY_PUBLISH, ActionId.EDIT, ActionId.DISCARD]

    @pytest.mark.parametrize("status", ["publishing", "discarded"])
    def test_no_buttons_while_publishing_or_discarded(
        self, draft: Draft, options: RenderOptions, status: str
    ) -> None:
        """Nothing to click while publishing or once discarded."""
        assert buttons(render_blockkit(draft, options=options, state=PreviewState(status=status))) == {}

    def test_partial_draft_warning(self, draft: Draft, options: RenderOptions) -> None:
        """A partial draft warns and lists which sources failed."""
        partial = draft.model_copy(
            update={"source_notes": ("GitHub was unreachable: 503 Service Unavailable",)}
        )
        notes = section_text(render_blockkit(partial, options=options), BlockId.NOTES)
        assert "*Partial draft*" in notes and "• GitHub was unreachable: 503 Service Unavailable" in notes

    def test_timeline_key_entries_linked(self, draft: Draft, options: RenderOptions) -> None:
        """The preview's timeline shows the key entries, each linked to its evidence, and counts the rest."""
        timeline = section_text(
            render_blockkit(draft, options=RenderOptions(timezone="Europe/Berlin", max_preview_events=9)),
            BlockId.TIMELINE,
        )
        lines = [line for line in timeline.splitlines() if line.startswith("• ")]
        assert len(lines) == 9
        for kind in (
            "Deploy",
            "Alert",
            "Triggered",
            "Acknowledged",
            "Escalated",
            "Rollback",
            "Mitigated",
            "Resolved",
        ):
            assert any(f"*{kind}*" in line for line in lines), kind
        assert all(re.search(r"<https://[^|>]+\|(PagerDuty|GitHub|Slack)>$", line) for line in lines)
        assert timeline.endswith(f"_+{len(draft.timeline.events) - 9} more events in the full draft_")

    def test_edits_shown_instead_of_computed(self, draft: Draft, options: RenderOptions) -> None:
        """Edited summary and action items replace the computed ones in the preview."""
        edits = {
            EditableSection.SUMMARY: "Ana's summary.",
            EditableSection.ACTION_ITEMS: "- [Ben] pool check",
        }
        blocks = render_blockkit(draft.model_copy(update={"edits": edits}), options=options)
        summary = next(
            b["text"]["text"] for b in blocks if b.get("text", {}).get("text", "").startswith("*Summary*")
        )
        assert summary == "*Summary* _(edited)_\nAna's summary." and draft.summary not in json.dumps(blocks)
        assert section_text(blocks, BlockId.ACTION_ITEMS) == "*Action items* _(edited)_\n- [Ben] pool check"

    def test_quoted_chat_never_pings(self, draft: Draft, options: RenderOptions) -> None:
        """'@channel' and Slack mention markup in chat, names and notes do not ping anyone."""
        events = tuple(
            e.model_copy(update={"text": HOSTILE, "actor": "<@U02BEN> @here"}) for e in draft.timeline.events
        )
        hostile = draft.model_copy(
            update={
                "timeline": draft.timeline.model_copy(update={"events": events}),
                "summary": HOSTILE,
                "source_notes": (HOSTILE,),
                "incident": draft.incident.model_copy(update={"title": HOSTILE}),
            }
        )
        blocks = render_blockkit(hostile, options=options)
        assert_no_pings(blocks)
        assert_within_slack_limits(blocks)

    @pytest.mark.parametrize(
        "state",
        [
            None,
            PreviewState(
                status="published", published_by="U01ANA", page_url="https://x.example/" + "p" * 5000
            ),
            PreviewState(status="failed", error=HOSTILE * 200, draft_id="d" * 5000),
        ],
    )
    def test_limits_on_a_huge_draft(self, huge_draft: Draft, state: PreviewState | None) -> None:
        """5,000 huge events, a 40 KB message, 200 action items: within every Slack limit, summarised."""
        blocks = render_blockkit(huge_draft, options=RenderOptions(timezone="Europe/Berlin"), state=state)
        assert_within_slack_limits(blocks)
        assert_no_pings(blocks, allowed_user="U01ANA")
        assert "more events in the full draft_" in section_text(blocks, BlockId.TIMELINE)
        assert "more action items in the full draft_" in section_text(blocks, BlockId.ACTION_ITEMS)

    def test_limits_when_every_event_is_asked_for(self, huge_draft: Draft) -> None:
        """Even asking for all 5,000 events (the 40 KB message pinned among them) stays within limits."""
        events = list(huge_draft.timeline.events)
        events[100] = events[100].model_copy(update={"kind": EventKind.MITIGATED, "pinned": True})
        bigger = huge_draft.model_copy(
            update={
                "timeline": huge_draft.timeline.model_copy(update={"events": tuple(events)}),
                "edits": {section: HOSTILE * 100 for section in EditableSection},
            }
        )
        blocks = render_blockkit(bigger, options=RenderOptions(max_preview_events=5000))
        assert_within_slack_limits(blocks)
        assert_no_pings(blocks)


class TestFit:
    def test_never_half_a_link(self) -> None:
        """A cut inside a link drops the whole link instead of leaving '<https://…' open."""
        text = "before <https://example.com/long/path|label> after"
        assert fit(text, 20) == "before …"

    def test_never_half_an_entity(self) -> None:
        """A cut inside '&amp;' drops the partial entity."""
        assert fit("abc &amp; def", 7) == "abc …"

    def test_short_text_untouched(self) -> None:
        """Text within the limit is returned as it is."""
        assert fit("<https://x|y> &amp;", 100) == "<https://x|y> &amp;"


class TestMrkdwn:
    def test_links_escaping_and_limit(self) -> None:
        """Safe links become <url|label>, text is escaped, and the visible text is cut to the limit."""
        assert mrkdwn("a & [PR](https://x.example/?a=1&b=2|3) <!here>") == (
            "a &amp; <https://x.example/?a=1&amp;b=2%7C3|PR> &lt;!here&gt;"
        )
        assert mrkdwn("x" * 50, limit=10) == "x" * 9 + "…"

    def test_one_line(self) -> None:
        """Newlines fold into spaces so a quote stays one bullet."""
        assert mrkdwn("a\n\n b") == "a b"


class TestKeyEvents:
    def test_key_kinds_first_then_time_order(self, draft: Draft) -> None:
        """The first of each key kind is chosen before chat, and the choice comes back in time order."""
        chosen = key_events(draft.timeline, 8)
        assert [e.kind for e in chosen] == [
            EventKind.DEPLOY, EventKind.ALERT, EventKind.TRIGGERED, EventKind.ACKNOWLEDGED,
            EventKind.ESCALATED, EventKind.ROLLBACK, EventKind.MITIGATED, EventKind.RESOLVED,
        ]  # fmt: skip

    def test_pinned_before_plain_chat(self, draft: Draft) -> None:
        """Pinned messages come right after the key kinds, before notes and plain chat."""
        chosen = key_events(draft.timeline, 11)
        assert any(e.pinned for e in chosen)
        assert sum(1 for e in chosen if e.kind is EventKind.MESSAGE) == 1


class TestRenderEditModal:
    def test_modal(self, draft: Draft) -> None:
        """A modal with one multiline input per editable section, ids from bot/ids.py, the draft id as metadata."""
        view = render_edit_modal(draft, draft_id="draft-42")
        assert (view["type"], view["callback_id"], view["private_metadata"]) == (
            "modal",
            CallbackId.EDIT_MODAL,
            "draft-42",
        )
        assert len(view["title"]["text"]) <= 24
        inputs = [b for b in view["blocks"] if b["type"] == "input"]
        assert [b["block_id"] for b in inputs] == [f"{BlockId.EDIT_PREFIX}{s}" for s in EditableSection]
        for block in inputs:
            assert block["element"]["type"] == "plain_text_input" and block["element"]["multiline"] is True
            assert block["element"]["action_id"] == EDIT_INPUT_ACTION
        values = {b["block_id"]: b["element"].get("initial_value") for b in inputs}
        assert values[f"{BlockId.EDIT_PREFIX}summary"] == draft.summary
        assert values[f"{BlockId.EDIT_PREFIX}action_items"].splitlines()[0] == (
            "- [Ben Okafor] add a CI check that fails when the DB pool size drops below 20"
        )

    def test_edit_is_the_initial_value(self, draft: Draft) -> None:
        """An existing edit is shown instead of the computed section."""
        edited = draft.model_copy(update={"edits": {EditableSection.IMPACT: "Logins failed."}})
        view = render_edit_modal(edited, draft_id="d")
        block = next(b for b in view["blocks"] if b.get("block_id") == f"{BlockId.EDIT_PREFIX}impact")
        assert block["element"]["initial_value"] == "Logins failed."

    def test_errors_shown_under_their_section(self, draft: Draft) -> None:
        """An error for a section is shown as that input's hint."""
        view = render_edit_modal(draft, draft_id="d", errors={"summary": "Too long for one summary."})
        block = next(b for b in view["blocks"] if b.get("block_id") == f"{BlockId.EDIT_PREFIX}summary")
        assert block["hint"]["text"] == "⚠️ Too long for one summary."

    def test_limits_on_a_huge_draft(self, huge_draft: Draft) -> None:
        """Initial values are cut to 3,000 characters at a line end and the hint says so."""
        view = render_edit_modal(huge_draft, draft_id="x" * 5000)
        assert len(view["private_metadata"]) <= 3000 and len(view["blocks"]) <= 100
        for block in (b for b in view["blocks"] if b["type"] == "input"):
            assert len(block["element"].get("initial_value", "")) <= 3000
            assert len(block["label"]["text"]) <= 2000
        items = next(b for b in view["blocks"] if b.get("block_id") == f"{BlockId.EDIT_PREFIX}action_items")
        assert "more lines are in the draft" in items["hint"]["text"]


class TestRenderPrompt:
    def test_prompt(self, draft: Draft) -> None:
        """The resolved prompt names the incident and offers one START_DRAFT button carrying the draft id."""
        blocks = render_prompt(draft.incident, draft_id="d-9")
        assert "PD-9876 — High severity API latency spikes in production" in blocks[0]["text"]["text"]
        assert blocks[1]["block_id"] == BlockId.PROMPT_ACTIONS
        (button,) = blocks[1]["elements"]
        assert (button["action_id"], button["value"]) == (ActionId.START_DRAFT, "d-9")

    def test_hostile_title(self, draft: Draft) -> None:
        """A hostile title does not ping and stays within limits."""
        blocks = render_prompt(draft.incident.model_copy(update={"title": HOSTILE * 50}), draft_id="d")
        assert_within_slack_limits(blocks)
        assert_no_pings(blocks)


class TestRenderDraftFailure:
    def test_the_reason_and_a_retry_button(self) -> None:
        """A failed draft shows why, and Retry carries the incident to draft again."""
        blocks = render_draft_failure("PD-9876", draft_id="Q1R2S3T4U5V6W7", error="PagerDuty was unreachable")
        assert blocks[0]["text"]["text"] == "Could not draft PD-9876: PagerDuty was unreachable"
        (button,) = blocks[1]["elements"]
        assert (button["action_id"], button["value"]) == (ActionId.START_DRAFT, "Q1R2S3T4U5V6W7")

    def test_a_hostile_error_stays_within_limits_and_pings_nobody(self) -> None:
        """Whatever an error quotes, the message keeps Slack's limits and cannot ping."""
        blocks = render_draft_failure("PD-9876", draft_id="Q1", error=HOSTILE * 200)
        assert_within_slack_limits(blocks)
        assert_no_pings(blocks)


class TestRenderProgress:
    def test_one_line_per_source(self, draft: Draft) -> None:
        """Each source shows whether it finished, failed or is still being read, with its latest message."""
        (block,) = render_progress(
            draft.incident,
            done={"pagerduty": "24 events", "github": "GitHub was unreachable: 503"},
            reading={"slack": "412 messages read"},
            failed={"github"},
        )
        lines = block["text"]["text"].splitlines()
        assert lines[1:] == [
            ":white_check_mark: *PagerDuty* — 24 events",
            ":x: *GitHub* — GitHub was unreachable: 503",
            ":hourglass_flowing_sand: *Slack* — 412 messages read",
        ]

    def test_a_source_not_heard_from_is_reading(self, draft: Draft) -> None:
        """Before a source reports anything it shows as being read, never as done."""
        (block,) = render_progress(draft.incident, done={})
        assert block["text"]["text"].count(":hourglass_flowing_sand:") == 3

    def test_hostile_progress(self, draft: Draft) -> None:
        """Unknown sources and hostile messages are shown safely and within limits."""
        done = {f"{HOSTILE}{i}": HOSTILE * 10 for i in range(100)}
        blocks = render_progress(draft.incident, done=done)
        assert_within_slack_limits(blocks)
        assert_no_pings(blocks)
