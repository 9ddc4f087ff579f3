"""The whole pipeline for the reliability suite, and the checks of what comes out of it.

Live sources over the local HTTP fakes (PagerDuty over TLS, GitHub, Slack), the draft use case, the three
renderers (Markdown, Confluence storage, Block Kit), the store read back with plain SQL, and checks:
Confluence parsed as XML with its ac:/ri: namespaces, Block Kit within Slack's limits and without live
pings, and secret fragments looked for in every escaped form an output may hold them in.
"""

from __future__ import annotations

import copy
import html
import io
import json
import logging
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import text

from bot.analysis.models import Draft, DraftOptions
from bot.logs import LIBRARY_LOGGERS, configure_logging
from bot.postmortem import draft_incident
from bot.render.blockkit import render_blockkit, render_edit_modal
from bot.render.confluence import render_confluence
from bot.render.markdown import render_markdown
from bot.render.options import RenderOptions
from bot.samples import DEFAULT_SAMPLE
from bot.sources.gather import GatherOptions, Sources
from bot.sources.github import GitHubSource
from bot.sources.pagerduty import PagerDutySource
from bot.sources.slack_client import build_web_client
from bot.sources.slack_history import SlackHistorySource
from bot.store.db import create_store_engine, migrate
from bot.store.models import Base
from bot.store.repository import Repository
from tests.fakes.github import DEFAULT_TOKEN as GITHUB_TOKEN
from tests.fakes.github import GitHubFake
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import BOT_TOKEN, SlackWebFake, ts_key, ts_of

SAMPLE = json.loads((DEFAULT_SAMPLE / "sample.json").read_text(encoding="utf-8"))
SERVICE_REPOS: dict[str, str] = SAMPLE["service_repos"]
INCIDENT_REF, INCIDENT_ID, CHANNEL = "PD-9876", "Q1R2S3T4U5V6W7", "C07INC9876"
NOW = datetime(2024, 7, 20, 13, 0, tzinfo=UTC)
RENDER = RenderOptions(timezone="Europe/Berlin")
# The sample's people, as users.info names them (for the text a reader sees from Slack markup).
USERS = {"U01ANA": "Ana Lima", "U02BEN": "Ben Okafor", "U03CAR": "Carlos Mendes", "U04DEE": "Dee Park"}
AUTHORS = tuple(USERS)
# 12:20 UTC: after the sample's last message and inside the history window (resolution + 60 minutes).
PLANT_START = int(datetime(2024, 7, 20, 12, 20, tzinfo=UTC).timestamp())


# -- sources ------------------------------------------------------------------------------------------


@dataclass
class Fakes:
    pagerduty: PagerDutyFake
    github: GitHubFake
    slack: SlackWebFake
    ca_bundle: Path

    def reset(self) -> None:
        """Each fake back to the bundled sample, with no requests or faults recorded."""
        for fake in (self.slack, self.pagerduty, self.github):
            fake.reset()


def sample_pagerduty() -> tuple[dict, list[dict], list[dict], list[dict]]:
    """The sample incident's bodies: incident, log entries, alerts, notes (fresh copies)."""
    folder = DEFAULT_SAMPLE / "pagerduty"

    def read(name: str) -> Any:
        return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))

    return (
        read("incident")["incident"],
        read("log_entries")["log_entries"],
        read("alerts")["alerts"],
        read("notes")["notes"],
    )


@contextmanager
def live_sources(fakes: Fakes, *, page_size: int = 200, from_email: str | None = None) -> Iterator[Sources]:
    """PagerDuty, GitHub and Slack through their real clients, against the fakes; closed afterwards."""
    client = build_web_client(token=BOT_TOKEN, base_url=fakes.slack.api_url, timeout=10, max_retries=1)
    incidents = PagerDutySource(
        token=fakes.pagerduty.token,
        base_url=fakes.pagerduty.url,
        ca_bundle=fakes.ca_bundle,
        timeout=10,
        max_retries=1,
        from_email=from_email,
    )
    deploys = GitHubSource(
        token=GITHUB_TOKEN, base_url=fakes.github.url, timeout=10, max_retries=1, web_url="https://github.com"
    )
    try:
        yield Sources(
            incidents=incidents, deploys=deploys, chat=SlackHistorySource(client=client, page_size=page_size)
        )
    finally:
        incidents.close()
        deploys.close()


def draft_from(
    sources: Sources, *, ref: str = INCIDENT_REF, channel_id: str | None = CHANNEL, now: datetime = NOW
) -> Draft:
    """The draft use case, as the bot runs it."""
    return draft_incident(
        ref=ref,
        channel_id=channel_id,
        sources=sources,
        gather_options=GatherOptions(repo_for_service=SERVICE_REPOS.get),
        draft_options=DraftOptions(),
        now=now,
    )


def slack_escaped(text: str) -> str:
    """What Slack sends for text a person typed: its three escapes (real markup arrives unescaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plant_messages(
    slack: SlackWebFake,
    texts: Sequence[str],
    *,
    start: int = PLANT_START,
    every_seconds: int = 10,
    thread_every: int = 0,
    pinned: Iterable[int] = (),
) -> list[str]:
    """Post `texts` (as Slack sends them) into the incident channel, one every `every_seconds` from
    `start`; with `thread_every`, every n-th one is a reply in a thread instead. Returns their ts."""
    channel = slack.channels[CHANNEL]
    pinned = set(pinned)
    messages = copy.deepcopy(channel.messages)
    replies = copy.deepcopy(channel.replies)
    parent: dict[str, Any] | None = None
    stamps = []
    for index, body in enumerate(texts):
        ts = ts_of(start + index * every_seconds, 100)
        stamps.append(ts)
        message = {"type": "message", "user": AUTHORS[index % len(AUTHORS)], "ts": ts, "text": body}
        message["team"] = "T07ACME00"
        if index in pinned:
            message["pinned_to"] = [CHANNEL]
        if thread_every and index % thread_every == thread_every - 1 and parent is not None:
            message |= {"thread_ts": parent["ts"], "parent_user_id": parent["user"]}
            thread = replies.setdefault(parent["ts"], [])
            thread.append(message)
            parent |= {
                "thread_ts": parent["ts"],
                "reply_count": len(thread),
                "reply_users_count": len({r["user"] for r in thread}),
                "latest_reply": thread[-1]["ts"],
                "reply_users": sorted({r["user"] for r in thread}),
            }
            continue
        messages.append(message)
        parent = message
    slack.add_channel(channel.info, messages, replies, members=channel.members)
    return stamps


# -- outputs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    markdown: str
    confluence: str
    blocks: list[dict]
    modal: dict

    def texts(self) -> dict[str, str]:
        """Each output as the text a leak would show in (Slack's JSON with and without \\u escapes)."""
        return {
            "markdown": self.markdown,
            "confluence": self.confluence,
            "confluence text": page_text(parse_confluence(self.confluence)),
            "slack preview": json.dumps(self.blocks, ensure_ascii=False),
            "slack preview (ascii)": json.dumps(self.blocks),
            "slack edit modal": json.dumps(self.modal, ensure_ascii=False),
        }


def render_all(draft: Draft, options: RenderOptions = RENDER) -> Outputs:
    return Outputs(
        markdown=render_markdown(draft, options=options),
        confluence=render_confluence(draft, options=options),
        blocks=render_blockkit(draft, options=options),
        modal=render_edit_modal(draft, draft_id=draft.incident.id),
    )


# -- Confluence storage format ------------------------------------------------------------------------

NAMESPACES = {"ac": "http://atlassian.com/content", "ri": "http://atlassian.com/resource/identifier"}


def parse_confluence(body: str) -> ET.Element:
    """The storage body as XML inside a root that declares Confluence's namespaces (raises when malformed)."""
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    return ET.fromstring(f"<page {declarations}>{body}</page>")


def page_text(root: ET.Element) -> str:
    return "".join(root.itertext())


def element_names(root: ET.Element) -> set[str]:
    """Tag names with their namespace prefix: 'p', 'ac:structured-macro', 'ri:attachment'."""
    names = set()
    for element in root.iter():
        tag = element.tag
        for prefix, uri in NAMESPACES.items():
            tag = tag.replace(f"{{{uri}}}", f"{prefix}:")
        names.add(tag)
    return names - {"page"}


def macro_names(root: ET.Element) -> set[str]:
    return {
        element.get(f"{{{NAMESPACES['ac']}}}name", "")
        for element in root.iter(f"{{{NAMESPACES['ac']}}}structured-macro")
    }


# -- Block Kit ----------------------------------------------------------------------------------------

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks and .../composition-objects).
_TEXT_LIMITS = {"section": 3000, "header": 150, "context": 2000}


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}/{index}")


def text_objects(blocks: Any) -> list[tuple[str, dict]]:
    """Every composition text object ({"type": "mrkdwn"|"plain_text", "text": ...}) with its path."""
    return [
        (path, value)
        for path, value in _walk(blocks)
        if isinstance(value, dict) and value.get("type") in ("mrkdwn", "plain_text") and "text" in value
    ]


def blockkit_problems(blocks: list[dict]) -> list[str]:
    """What Slack would refuse in a message's blocks: counts, lengths, ids, values, URLs."""
    problems = []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks (at most 50)")
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind in _TEXT_LIMITS and "text" in block and len(block["text"]["text"]) > _TEXT_LIMITS[kind]:
            problems.append(f"block {index} ({kind}): text of {len(block['text']['text'])} characters")
        if len(block.get("fields") or ()) > 10:
            problems.append(f"block {index}: more than 10 fields")
        for field in block.get("fields") or ():
            if len(field["text"]) > 2000:
                problems.append(f"block {index}: a field of {len(field['text'])} characters")
        if kind == "context" and len(block.get("elements") or ()) > 10:
            problems.append(f"block {index}: more than 10 context elements")
        for element in block.get("elements") or () if kind == "context" else ():
            if len(element.get("text", "")) > 2000:
                problems.append(f"block {index}: a context text of {len(element['text'])} characters")
        if len(block.get("block_id") or "") > 255:
            problems.append(f"block {index}: block_id longer than 255")
        for element in block.get("elements") or () if kind == "actions" else ():
            if len(element.get("value", "")) > 2000 or len(element.get("url", "")) > 3000:
                problems.append(f"block {index}: a button value or URL too long")
            if len(element["text"]["text"]) > 75 or len(element.get("action_id", "")) > 255:
                problems.append(f"block {index}: a button text or action_id too long")
    return problems


_LIVE_MARKUP = re.compile(r"<[!@#]")
_BROADCAST = re.compile(r"(?<![\w\u200d])@(?:channel|here|everyone)\b")


def live_pings(blocks: Any) -> list[str]:
    """Texts that would notify someone or link a mention: live `<!…>`/`<@…>`/`<#…>` markup in mrkdwn
    (plain_text is never parsed), a bare @channel/@here/@everyone anywhere, or quoted mrkdwn Slack
    would auto-format (not verbatim; the bot's own confirm dialogs aside)."""
    found = []
    for path, obj in text_objects(blocks):
        value, mrkdwn = obj["text"], obj["type"] == "mrkdwn"
        if (mrkdwn and _LIVE_MARKUP.search(value)) or _BROADCAST.search(value):
            found.append(f"{path}: {value[:200]!r}")
        if mrkdwn and obj.get("verbatim") is not True and "/confirm/" not in path:
            found.append(f"{path}: mrkdwn without verbatim")
    return found


# -- the store ----------------------------------------------------------------------------------------


def store_and_dump(database_url: str, draft: Draft, *, now: datetime = NOW) -> str:
    """Store the draft as the use case does (a fresh, migrated database) and read every row of every
    table back with plain SQL: the text an operator with database access would see."""
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        repo = Repository(engine)
        repo.start_draft(
            draft_id=draft.incident.id,
            incident_key=draft.incident.key,
            channel_id=CHANNEL,
            requested_by="U01ANA",
            now=now,
        )
        repo.save_draft(draft_id=draft.incident.id, draft=draft, now=now, channel_id=CHANNEL)
        stored = repo.get(draft.incident.id)
        assert stored is not None and stored.draft is not None, "the stored draft does not read back"
        assert stored.draft.timeline.events and len(stored.draft.timeline.events) == len(
            draft.timeline.events
        )
        rows = []
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in connection.execute(text(f"SELECT * FROM {table.name}")):  # our own table names
                    rows.append(" | ".join("" if value is None else str(value) for value in row))
        return "\n".join(rows)
    finally:
        engine.dispose()


# -- looking for secrets ------------------------------------------------------------------------------


def escaped_forms(fragment: str) -> set[str]:
    """`fragment` as each output may hold it: raw, JSON-escaped, XML/HTML-escaped, Slack-escaped, URL-quoted."""
    return {
        fragment,
        json.dumps(fragment)[1:-1],
        json.dumps(fragment, ensure_ascii=False)[1:-1],
        html.escape(fragment, quote=True),
        html.escape(fragment, quote=False),
        slack_escaped(fragment),
        quote(fragment, safe=""),
        quote_plus(fragment, safe=""),
    }


def fragments(secret: str, *, common: str = "") -> set[str]:
    """What would show that `secret` leaked, whole or in part: the secret, each line of a multi-line one
    (not the PEM armour), and each run of 10+ letters and digits that is not also in `common` text."""
    found = {secret}
    for line in secret.replace("\\n", "\n").splitlines():
        line = line.strip()
        if len(line) >= 12 and "----" not in line:
            found.add(line)
    found |= {run for run in re.findall(r"[A-Za-z0-9]{10,}", secret) if run not in common}
    return found


def leaks(secret: str, haystacks: dict[str, str], *, common: str = "") -> list[str]:
    """Where (which output) a fragment of `secret` shows, in any escaped form."""
    where = []
    for name, haystack in haystacks.items():
        for fragment in fragments(secret, common=common):
            if any(form in haystack for form in escaped_forms(fragment)):
                where.append(f"{name}: {fragment[:40]!r}")
                break
    return where


def visible_tokens(text: str) -> list[str]:
    """The runs of 6+ letters and digits a reader would look for to recognise `text` again."""
    return re.findall(r"[A-Za-z0-9]{6,}", text)


def ordered_by_ts(messages: Iterable[dict]) -> list[dict]:
    return sorted(messages, key=lambda m: ts_key(m["ts"]))


# -- logs ---------------------------------------------------------------------------------------------


@contextmanager
def json_logs(level: str = "DEBUG") -> Iterator[list[str]]:
    """Logging as `python -m bot run` configures it (`configure_logging`: JSON lines on stderr, the
    redacting filter), with stderr captured; the list fills with the lines once the block ends."""
    root = logging.getLogger()
    saved_level = root.level
    libraries = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    buffer, saved_stderr = io.StringIO(), sys.stderr
    lines: list[str] = []
    sys.stderr = buffer
    try:
        configure_logging(level)
        ours = list(root.handlers)
        yield lines
    finally:
        sys.stderr = saved_stderr
        for handler in ours:
            root.removeHandler(handler)
        root.setLevel(saved_level)
        for name, saved in libraries.items():
            logging.getLogger(name).setLevel(saved)
        lines.extend(buffer.getvalue().splitlines())


def log_strings(lines: Iterable[str]) -> str:
    """Every line as written, and every string value in it once decoded (JSON escapes undone)."""
    out = []
    for line in lines:
        out.append(line)
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        out.extend(str(value) for _, value in _walk(entry) if isinstance(value, str | int | float))
    return "\n".join(out)
