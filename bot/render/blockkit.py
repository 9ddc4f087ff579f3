"""The draft as Slack Block Kit: the preview message, the Edit modal, the "resolved" prompt and progress.

Slack refuses a message that breaks one of its limits, so every text is cut to fit and long lists are
summarised ("+312 more events in the full draft"); no input makes these functions fail. Quoted chat goes
through `neutralise_pings` and every mrkdwn object is `verbatim`, so nothing quoted can notify anyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.analysis.models import Draft, EditableSection
from bot.ids import EDIT_INPUT_ACTION, ActionId, BlockId, CallbackId
from bot.render.context import (
    KIND_LABELS,
    SECTION_LABELS,
    SOURCE_LABELS,
    event_notes,
    redaction_phrase,
    spans_days,
)
from bot.render.markdown import editable_markdown
from bot.render.options import RenderOptions
from bot.render.text import (
    LinkPart,
    break_mentions,
    clean,
    is_link_url,
    neutralise_pings,
    slack_url,
    split_links,
    truncate,
)
from bot.render.timefmt import format_duration, format_time
from bot.timeline.models import EventKind, Incident, Source, Timeline, TimelineEvent

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
FIELD_TEXT = 2000
MAX_FIELDS = 10
CONTEXT_TEXT = 2000
BUTTON_VALUE = 2000
URL_LENGTH = 3000
INPUT_VALUE = 3000
MODAL_TITLE = 24
PRIVATE_METADATA = 3000
# How much of one quoted text a preview line shows; the full text is in the page.
QUOTE_CHARS = 280
MAX_PREVIEW_ITEMS = 10
MAX_LINK_URL = 1000  # longer URLs are shown as their label only: one URL must not eat a whole section

Status = Literal["draft", "publishing", "published", "failed", "discarded"]
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_KEY_KINDS = frozenset(
    {
        EventKind.ALERT,
        EventKind.TRIGGERED,
        EventKind.ACKNOWLEDGED,
        EventKind.ESCALATED,
        EventKind.DEPLOY,
        EventKind.ROLLBACK,
        EventKind.MITIGATED,
        EventKind.RESOLVED,
    }
)


@dataclass(frozen=True, kw_only=True)
class PreviewState:
    """Where the draft stands; it decides the status line and the buttons."""

    status: Status = "draft"
    published_by: str | None = None  # a Slack user id
    page_url: str | None = None
    error: str | None = None
    draft_id: str | None = None  # the buttons' value; None: the incident id


# --- text helpers -------------------------------------------------------------------------------------


def mrkdwn(text: str, *, limit: int = QUOTE_CHARS, one_line: bool = True) -> str:
    """Quoted text as mrkdwn: cut to `limit` visible characters, escaped, its safe links as <url|label>;
    `one_line` folds newlines and runs of spaces so a quote cannot break a bulleted list."""
    value = clean(text)
    parts = split_links(" ".join(value.split()) if one_line else value)
    out, budget = [], limit
    for part in parts:
        if budget <= 0:  # the previous part used the budget up exactly and more follows
            out.append("…")
            break
        shown = truncate(part.text, budget)
        budget -= len(shown)
        if isinstance(part, LinkPart) and len(part.url) <= MAX_LINK_URL:
            out.append(f"<{slack_url(part.url)}|{neutralise_pings(shown)}>")
        else:
            out.append(neutralise_pings(shown))
        if shown != part.text:  # cut, and already ends with "…"
            break
    return "".join(out)


def link(label: str, url: str | None) -> str:
    """`label` (already mrkdwn) as a link when the URL is safe and short enough, else as it is."""
    if url and is_link_url(url) and len(url) <= MAX_LINK_URL:
        return f"<{slack_url(url)}|{label}>"
    return label


def plain_text(text: str, limit: int) -> str:
    """Text for a plain_text object: no markup is parsed there, but "@here" is still broken up."""
    return truncate(break_mentions(" ".join(clean(text).split())), limit)


def fit(text: str, limit: int) -> str:
    """Cut mrkdwn to `limit` characters without leaving half a link or half an entity behind."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def listing(heading: str, lines: Iterable[str], *, total: int, noun: str, limit: int = SECTION_TEXT) -> str:
    """A heading and as many lines as fit, then "+N more <noun> in the full draft" for the rest."""
    reserve = 80
    text, shown = heading, 0
    for line in lines:
        candidate = f"{text}\n{fit(line, limit // 3)}"
        if len(candidate) > limit - reserve:
            break
        text, shown = candidate, shown + 1
    if total > shown:
        text += f"\n_+{total - shown} more {noun} in the full draft_"
    return fit(text, limit)


def _json(objects: Iterable[Block | View]) -> list[dict]:
    """Validated by slack_sdk (`to_dict` checks its limits), then plain JSON types (no StrEnum members)."""
    return json.loads(json.dumps([obj.to_dict() for obj in objects]))


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        block_id=block_id, text=MarkdownTextObject(text=fit(text, SECTION_TEXT), verbatim=True)
    )


def _context(text: str, block_id: str | None = None) -> ContextBlock:
    return ContextBlock(
        block_id=block_id, elements=[MarkdownTextObject(text=fit(text, CONTEXT_TEXT), verbatim=True)]
    )


def _button(text: str, action_id: ActionId, value: str, **extra: object) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=text), action_id=action_id, value=value[:BUTTON_VALUE], **extra
    )


# --- the preview --------------------------------------------------------------------------------------


def key_events(timeline: Timeline, limit: int) -> list[TimelineEvent]:
    """The `limit` entries that tell the story, in time order: the first of each key kind (and the last
    resolution), then other key or pinned entries, then notes, then the rest."""
    events = timeline.events
    firsts: set[int] = set()
    seen: set[EventKind] = set()
    for index, event in enumerate(events):
        if event.kind in _KEY_KINDS and event.kind not in seen:
            seen.add(event.kind)
            firsts.add(index)
    resolved = [i for i, e in enumerate(events) if e.kind is EventKind.RESOLVED]
    if resolved:
        firsts.add(resolved[-1])

    def rank(index: int) -> int:
        event = events[index]
        if index in firsts:
            return 0
        if event.kind in _KEY_KINDS or event.pinned:
            return 1
        return 2 if event.kind in (EventKind.NOTE, EventKind.STATUS_UPDATE) else 3

    chosen = sorted(sorted(range(len(events)), key=lambda i: (rank(i), i))[:limit])
    return [events[i] for i in chosen]


def _event_line(event: TimelineEvent, *, tz: str, with_date: bool) -> str:
    when = format_time(event.at, tz=tz, date=with_date)
    who = (
        f"{neutralise_pings(truncate(clean(event.actor), 60))}: "
        if event.actor and event.source is Source.SLACK
        else ""
    )
    notes = event_notes(event, tz=tz)
    pin = ":pushpin: " if event.pinned else ""
    evidence = link(SOURCE_LABELS.get(event.source, "evidence"), event.url)
    tail = f" _({neutralise_pings(notes)})_" if notes else ""
    return f"• {when} · {pin}*{KIND_LABELS.get(event.kind, 'Event')}* {who}{mrkdwn(event.text)}{tail} · {evidence}"


def _facts(draft: Draft, *, tz: str) -> SectionBlock:
    incident = draft.incident
    started, resolved = incident.created_at, incident.resolved_at
    pairs = [
        ("Severity", incident.severity or incident.urgency or "unknown"),
        ("Services", ", ".join(s.name for s in incident.services) or "unknown"),
        ("Started", format_time(started, tz=tz)),
        ("Resolved", format_time(resolved, tz=tz) if resolved else "not resolved yet"),
        ("Duration", format_duration((resolved - started).total_seconds()) if resolved else "ongoing"),
        ("Incident commander", incident.commander or "unknown"),
    ]
    fields = [
        MarkdownTextObject(text=fit(f"*{label}*\n{mrkdwn(value, limit=300)}", FIELD_TEXT), verbatim=True)
        for label, value in pairs
    ]
    return SectionBlock(block_id=BlockId.FACTS, fields=fields[:MAX_FIELDS])


def _edited(draft: Draft, section: EditableSection, heading: str) -> str | None:
    if section not in draft.edits:
        return None
    return f"*{heading}* _(edited)_\n{mrkdwn(draft.edits[section], limit=SECTION_TEXT // 2, one_line=False)}"


def _metrics(draft: Draft) -> str:
    lines = [
        f"• {m.label}: *{format_duration(m.seconds)}* — "
        f"{link(mrkdwn(m.start.text, limit=60), m.start.url)} → {link(mrkdwn(m.end.text, limit=60), m.end.url)}"
        for m in draft.metrics
    ]
    if not lines:
        return "*Key metrics*\nNo metric could be computed from the timeline yet."
    return listing("*Key metrics*", lines, total=len(lines), noun="metrics")


def _suspect(draft: Draft, *, tz: str) -> str:
    top = draft.top_suspect
    if top is None:
        return "*Suspect change*\nNo deploy of an affected service before the trigger."
    d = top.deployment
    sha = link(f"`{neutralise_pings(clean(d.sha)[:7])}`", d.commit_url or d.url)
    heading = (
        f"*Suspect change*\n`{mrkdwn(d.repo, limit=100)}` {sha} — {mrkdwn(d.description or d.ref, limit=200)}, "
        f"deployed {format_time(d.created_at, tz=tz)}, {top.minutes_before_trigger} min before the trigger "
        f"({link('deploy', d.url)})"
    )
    others = len(draft.suspects) - 1
    reasons = [f"• {mrkdwn(reason, limit=200)}" for reason in top.reasons]
    text = listing(heading, reasons, total=len(reasons), noun="reasons", limit=SECTION_TEXT - 100)
    if others:
        text += f"\n_{others} other candidate{'s' if others > 1 else ''} in the full draft_"
    return text


def _action_items(draft: Draft) -> str:
    edited = _edited(draft, EditableSection.ACTION_ITEMS, "Action items")
    if edited:
        return edited
    lines = []
    for item in draft.action_items[:MAX_PREVIEW_ITEMS]:
        owner = f"*{mrkdwn(item.owner, limit=60)}*" if item.owner else "*no owner*"
        flags = f" :warning: _{mrkdwn('; '.join(item.problems), limit=120)}_" if item.problems else ""
        kind = f" `{item.type}`" if item.type else ""
        lines.append(
            f"• {owner} {mrkdwn(item.text, limit=200)}{kind} {link('source', item.source.url)}{flags}"
        )
    if not lines:
        return "*Action items*\nNone found in the channel yet: add them with Edit."
    return listing("*Action items*", lines, total=len(draft.action_items), noun="action items")


def _status_and_buttons(state: PreviewState, draft_id: str) -> tuple[str, list[ButtonElement]]:
    approve_confirm = ConfirmObject(
        title="Publish this postmortem?",
        text="It goes to Confluence as shown here. You can still edit it and publish an update later.",
        confirm="Publish",
        deny="Not yet",
    )
    discard_confirm = ConfirmObject(
        title="Discard this draft?",
        text="The draft and its edits are dropped; nothing is published.",
        confirm="Discard",
        deny="Keep it",
        style="danger",
    )
    edit = _button("Edit", ActionId.EDIT, draft_id)
    discard = _button("Discard", ActionId.DISCARD, draft_id, style="danger", confirm=discard_confirm)
    match state.status:
        case "publishing":
            return ":hourglass_flowing_sand: Publishing to Confluence…", []
        case "discarded":
            return ":wastebasket: Discarded: nothing was published.", []
        case "failed":
            error = mrkdwn(state.error or "unknown error", limit=500)
            retry = _button("Retry publishing", ActionId.RETRY_PUBLISH, draft_id, style="primary")
            return f":x: Publishing failed: {error}", [retry, edit, discard]
        case "published":
            who = (
                f"<@{state.published_by}>"
                if state.published_by and _USER_ID.match(state.published_by)
                else "someone"
            )
            page = state.page_url if state.page_url and is_link_url(state.page_url) else None
            buttons = []
            if page and len(page) <= URL_LENGTH:
                buttons.append(_button("Open the page", ActionId.OPEN_PAGE, draft_id, url=page))
            update = _button(
                "Publish update", ActionId.APPROVE, draft_id, style="primary", confirm=approve_confirm
            )
            # An error on a published draft is its last update's: the page still shows the earlier version.
            failed = (
                f"\n:warning: Publishing the update failed: {mrkdwn(state.error, limit=500)}"
                if state.error
                else ""
            )
            return (
                f":white_check_mark: Published by {who}{' — ' + link('open the page', page) if page else ''}"
                f"{failed}",
                [
                    *buttons,
                    edit,
                    update,
                ],
            )
    approve = _button(
        "Approve & publish", ActionId.APPROVE, draft_id, style="primary", confirm=approve_confirm
    )
    regenerate = _button("Regenerate", ActionId.REGENERATE, draft_id)
    return ":memo: Draft: nothing is published until someone approves it.", [
        approve,
        edit,
        regenerate,
        discard,
    ]


def render_blockkit(draft: Draft, *, options: RenderOptions, state: PreviewState | None = None) -> list[dict]:
    state = state or PreviewState()
    tz = options.timezone
    incident = draft.incident
    draft_id = state.draft_id or incident.id
    title = f"Postmortem draft: {incident.key} — {incident.title}"
    blocks: list[Block] = [
        HeaderBlock(block_id=BlockId.HEADER, text=PlainTextObject(text=plain_text(title, HEADER_TEXT)))
    ]
    blocks.append(_facts(draft, tz=tz))
    summary = _edited(draft, EditableSection.SUMMARY, "Summary")
    blocks.append(
        _section(summary or f"*Summary*\n{mrkdwn(draft.summary, limit=SECTION_TEXT // 2, one_line=False)}")
    )
    if draft.source_notes:
        notes = [f"• {mrkdwn(note, limit=300)}" for note in draft.source_notes]
        heading = ":warning: *Partial draft*: some sources could not be read, so parts may be missing."
        blocks.append(_section(listing(heading, notes, total=len(notes), noun="notes"), BlockId.NOTES))
    blocks.append(DividerBlock())
    blocks.append(_section(_metrics(draft), BlockId.METRICS))
    blocks.append(_section(_suspect(draft, tz=tz), BlockId.SUSPECT))

    events = key_events(draft.timeline, options.max_preview_events)
    with_date = spans_days(draft.timeline.events)
    lines = [_event_line(e, tz=tz, with_date=with_date) for e in events]
    heading = f"*Timeline* ({len(draft.timeline.events)} entries, the key ones here)"
    if not lines:
        heading = "*Timeline*\nNo events were found."
    text = listing(heading, lines, total=len(draft.timeline.events), noun="events")
    blocks.append(_section(text, BlockId.TIMELINE))
    blocks.append(_section(_action_items(draft), BlockId.ACTION_ITEMS))

    noise = f"{draft.timeline.removed_noise} noise entries left out"
    redacted = f":lock: {redaction_phrase(draft.redaction_count)} · " if draft.redaction_count else ""
    blocks.append(_context(f"{redacted}{noise}", BlockId.REDACTIONS))
    blocks.append(DividerBlock())

    status, buttons = _status_and_buttons(state, draft_id)
    blocks.append(_context(status, BlockId.STATUS))
    if buttons:
        blocks.append(ActionsBlock(block_id=BlockId.ACTIONS, elements=buttons))
    # The layout above has a fixed number of blocks; this only guards against a future layout change.
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 2] + blocks[-2:]
    return _json(blocks)


# --- the Edit modal, the prompt, the progress ---------------------------------------------------------


_NO_ERRORS: Mapping[str, str] = MappingProxyType({})


def _initial_value(text: str) -> tuple[str, str | None]:
    """The text cut to Slack's 3,000 characters at a line end; the hint says what was left out."""
    if len(text) <= INPUT_VALUE:
        return text, None
    lines = text.split("\n")
    kept, shown = "", 0
    for line in lines:
        candidate = f"{kept}\n{line}" if shown else line
        if len(candidate) > INPUT_VALUE:
            if not shown:  # one line longer than the whole field: keep its start
                kept, shown = truncate(line, INPUT_VALUE), 1
            break
        kept, shown = candidate, shown + 1
    left = len(lines) - shown
    if not left:
        return kept, "Shortened to fit Slack's limit of 3,000 characters."
    return (
        kept,
        f"Shortened to fit Slack's limit: {left} more line{'s are' if left > 1 else ' is'} in the draft.",
    )


def render_edit_modal(draft: Draft, *, draft_id: str, errors: Mapping[str, str] = _NO_ERRORS) -> dict:
    blocks: list[Block] = [
        _context(
            "Markdown works here: one `- ` line per item, `[text](https://…)` for links. "
            "Your text replaces the generated section and survives Regenerate."
        )
    ]
    for section in EditableSection:
        block_id = f"{BlockId.EDIT_PREFIX}{section}"
        value, hint = _initial_value(editable_markdown(draft, section))
        error = errors.get(section) or errors.get(block_id)
        if error:
            hint = f"⚠️ {error}"
        blocks.append(
            InputBlock(
                block_id=block_id,
                label=PlainTextObject(text=SECTION_LABELS[section]),
                element=PlainTextInputElement(
                    action_id=EDIT_INPUT_ACTION,
                    multiline=True,
                    initial_value=value or None,
                    max_length=INPUT_VALUE,
                ),
                hint=PlainTextObject(text=plain_text(hint, 2000)) if hint else None,
                optional=True,
            )
        )
    view = View(
        type="modal",
        callback_id=CallbackId.EDIT_MODAL,
        private_metadata=draft_id[:PRIVATE_METADATA],
        title=PlainTextObject(text=f"Edit {draft.incident.key}"[:MODAL_TITLE]),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )
    return _json([view])[0]


def _incident_line(incident: Incident) -> str:
    return link(f"*{incident.key} — {mrkdwn(incident.title, limit=140)}*", incident.url)


def render_prompt(incident: Incident, *, draft_id: str) -> list[dict]:
    text = f":white_check_mark: {_incident_line(incident)} is resolved. Draft its postmortem from PagerDuty, GitHub and this channel?"
    button = _button("Draft the postmortem", ActionId.START_DRAFT, draft_id, style="primary")
    return _json([_section(text), ActionsBlock(block_id=BlockId.PROMPT_ACTIONS, elements=[button])])


def render_draft_failure(incident_key: str, *, draft_id: str, error: str) -> list[dict]:
    """The progress message once drafting failed: the reason, and Retry (which drafts into the same message)."""
    text = f"Could not draft {mrkdwn(incident_key, limit=40)}: {mrkdwn(error, limit=1000)}"
    button = _button("Retry", ActionId.START_DRAFT, draft_id, style="primary")
    return _json(
        [
            _section(text, BlockId.DRAFT_FAILED),
            ActionsBlock(block_id=BlockId.DRAFT_FAILED_ACTIONS, elements=[button]),
        ]
    )


_SOURCES = {Source.PAGERDUTY.value: "PagerDuty", Source.GITHUB.value: "GitHub", Source.SLACK.value: "Slack"}


def render_progress(
    incident: Incident,
    *,
    done: Mapping[str, str],
    reading: Mapping[str, str] | None = None,
    failed: Collection[str] = (),
) -> list[dict]:
    """One line per source: finished (its last message), failed, or still reading (its latest message)."""
    reading = reading or {}
    names = list(_SOURCES) + [name for name in {**reading, **done} if name not in _SOURCES]
    lines = []
    for name in names:
        label = mrkdwn(_SOURCES.get(name, name), limit=40)
        if name in done:
            mark = ":x:" if name in failed else ":white_check_mark:"
            lines.append(f"{mark} *{label}* — {mrkdwn(done[name], limit=200)}")
        else:
            lines.append(
                f":hourglass_flowing_sand: *{label}* — {mrkdwn(reading.get(name, 'reading…'), limit=200)}"
            )
    heading = f"Drafting the postmortem for {_incident_line(incident)}"
    return _json([_section(listing(heading, lines, total=len(lines), noun="sources"))])
