from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from bot.analysis.models import Draft, EditableSection
from bot.render.confluence import md_block, render_confluence, rich
from bot.render.options import RenderOptions
from tests.render.conftest import HOSTILE, assert_golden, parse_storage

AC = "{http://atlassian.com/content}"
RI = "{http://atlassian.com/resource/identifier}"
# Everything the bundled template may produce; any other element means input became markup.
ALLOWED_TAGS = {
    "root", "table", "tbody", "tr", "th", "td", "p", "br", "ul", "li", "h2", "h3", "a", "strong", "em", "code",
    f"{AC}structured-macro", f"{AC}parameter", f"{AC}rich-text-body", f"{AC}image", f"{RI}attachment",
}  # fmt: skip
ALLOWED_MACROS = {"status", "info", "warning", "expand"}
# XML-illegal characters and the bidi overrides must never reach the page.
FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def macros(root: Element, name: str) -> list[Element]:
    return [m for m in root.iter(f"{AC}structured-macro") if m.get(f"{AC}name") == name]


def all_text(root: Element) -> str:
    return "".join(root.itertext())


def assert_inert(root: Element, xhtml: str) -> None:
    """No input became markup: only the template's own elements, macros and safe links."""
    assert {e.tag for e in root.iter()} <= ALLOWED_TAGS
    assert {m.get(f"{AC}name") for m in root.iter(f"{AC}structured-macro")} <= ALLOWED_MACROS
    for anchor in root.iter("a"):
        assert anchor.get("href", "").startswith(("http://", "https://", "mailto:"))
    assert not FORBIDDEN_CHARS.search(xhtml)


class TestRenderConfluence:
    def test_golden(self, draft: Draft, options: RenderOptions) -> None:
        """The sample incident renders exactly as tests/render/golden/pd-9876.confluence.xhtml."""
        assert_golden("pd-9876.confluence.xhtml", render_confluence(draft, options=options))

    def test_well_formed_storage_format(self, draft: Draft, options: RenderOptions) -> None:
        """The page parses as XML with the ac/ri namespaces and holds only the template's elements."""
        xhtml = render_confluence(draft, options=options)
        assert_inert(parse_storage(xhtml), xhtml)

    def test_status_lozenge_and_info_panel(self, draft: Draft, options: RenderOptions) -> None:
        """The status is a status macro (lozenge) and the summary sits in an info panel."""
        root = parse_storage(render_confluence(draft, options=options))
        (status,) = macros(root, "status")
        params = {p.get(f"{AC}name"): p.text for p in status.iter(f"{AC}parameter")}
        assert params == {"colour": "Grey", "title": "Draft"}
        (info,) = macros(root, "info")
        assert all_text(info).strip() == draft.summary

    def test_published_status_is_green(self, draft: Draft) -> None:
        """The lozenge follows the status in the options."""
        root = parse_storage(render_confluence(draft, options=RenderOptions(status="Published")))
        params = {p.get(f"{AC}name"): p.text for p in macros(root, "status")[0].iter(f"{AC}parameter")}
        assert params == {"colour": "Green", "title": "Published"}

    def test_timeline_table_with_local_time_and_evidence(self, draft: Draft, options: RenderOptions) -> None:
        """The timeline is a table: UTC, local time, source, event, who, and a link to the evidence."""
        root = parse_storage(render_confluence(draft, options=options))
        table = next(
            t for t in root.iter("table") if [th.text for th in t.iter("th")][:2] == ["UTC", "Local"]
        )
        rows = table.findall("./tbody/tr")[1:]
        assert len(rows) == len(draft.timeline.events)
        ack = next(r for r in rows if "Acknowledged by Ana Lima" in all_text(r))
        cells = [all_text(td) for td in ack.findall("td")]
        assert cells[:3] == ["10:34", "12:34 CEST", "PagerDuty"]
        assert ack.find(".//a").get("href") == draft.timeline.events[5].url

    def test_chat_log_expand_with_indented_threads(self, draft: Draft, options: RenderOptions) -> None:
        """The full chat log sits in an expand macro, thread replies in a nested list under their parent."""
        root = parse_storage(render_confluence(draft, options=options))
        (expand,) = macros(root, "expand")
        items = expand.findall(f"./{AC}rich-text-body/ul/li")
        assert len(items) == sum(1 for e in draft.timeline.events if e.source == "slack")
        parent = next(li for li in items if "through the roof" in all_text(li))
        (reply,) = parent.findall("./ul/li")
        assert "auth-service token checks are timing out too" in all_text(reply)

    def test_links_are_anchors_with_escaped_urls(self, draft: Draft, options: RenderOptions) -> None:
        """Links in chat text become <a href>; '&' in a URL is escaped in the source and intact once parsed."""
        event = draft.timeline.events[9].model_copy(
            update={"text": "see [dash](https://grafana.acme.example/d?a=1&b=2)"}
        )
        events = (*draft.timeline.events[:9], event, *draft.timeline.events[10:])
        changed = draft.model_copy(update={"timeline": draft.timeline.model_copy(update={"events": events})})
        xhtml = render_confluence(changed, options=options)
        assert 'href="https://grafana.acme.example/d?a=1&amp;b=2"' in xhtml
        hrefs = [a.get("href") for a in parse_storage(xhtml).iter("a")]
        assert "https://grafana.acme.example/d?a=1&b=2" in hrefs

    def test_edits_shown_instead_of_computed_sections(self, draft: Draft, options: RenderOptions) -> None:
        """Edited sections show the person's text (as XHTML) instead of the computed one."""
        edits = {
            EditableSection.SUMMARY: "Written by Ana: the pool shrank.",
            EditableSection.CONTRIBUTING_FACTORS: "- pool size too small\n- no alert on [wait time](https://x.example/w)",
        }
        xhtml = render_confluence(draft.model_copy(update={"edits": edits}), options=options)
        root = parse_storage(xhtml)
        assert all_text(macros(root, "info")[0]).strip() == "Written by Ana: the pool shrank."
        assert draft.summary not in xhtml
        assert (
            "<li>pool size too small</li>" in xhtml and '<a href="https://x.example/w">wait time</a>' in xhtml
        )
        assert (
            "root cause: pool size dropped"
            not in xhtml.split("<h2>Contributing factors</h2>")[1].split("<h2>")[0]
        )

    def test_partial_draft_warning(self, draft: Draft, options: RenderOptions) -> None:
        """Source notes show in a warning panel and again in the notes."""
        partial = draft.model_copy(update={"source_notes": ("Slack history was unreadable: not_in_channel",)})
        root = parse_storage(render_confluence(partial, options=options))
        (warning,) = macros(root, "warning")
        assert "Slack history was unreadable: not_in_channel" in all_text(warning)

    def test_chart_attachment_shown_when_given(self, draft: Draft) -> None:
        """With a chart attachment named, the page shows it as an ac:image of that attachment."""
        root = parse_storage(
            render_confluence(draft, options=RenderOptions(chart_attachment="PD-9876-timeline.png"))
        )
        (attachment,) = root.iter(f"{RI}attachment")
        assert attachment.get(f"{RI}filename") == "PD-9876-timeline.png"
        assert not list(
            parse_storage(render_confluence(draft, options=RenderOptions())).iter(f"{RI}attachment")
        )


class TestHostileInput:
    @pytest.mark.parametrize("piece", [
        "<script>alert(1)</script>", "]]>", '<ac:structured-macro ac:name="html">', "&amp;", "\x00", "\x1f",
        "\u202e", "\u200b\u200d\ufeff", "<!channel>", "\ud800",
    ])  # fmt: skip
    def test_piece_everywhere_stays_text(self, draft: Draft, options: RenderOptions, piece: str) -> None:
        """One hostile piece in every title, name, text, note and edit: the page parses and none becomes markup."""
        evil = f"a{piece}b"
        events = tuple(e.model_copy(update={"text": evil, "actor": evil}) for e in draft.timeline.events)
        hostile = draft.model_copy(
            update={
                "incident": draft.incident.model_copy(update={"title": evil, "severity": evil}),
                "timeline": draft.timeline.model_copy(update={"events": events}),
                "summary": evil,
                "source_notes": (evil,),
                "edits": {EditableSection.IMPACT: f"- {evil}\n{evil}"},
                "redactions": {evil: 1},
            }
        )
        xhtml = render_confluence(hostile, options=options)
        root = parse_storage(xhtml)
        assert_inert(root, xhtml)
        if piece.isprintable() and piece.strip():
            assert f"a{piece}b" in all_text(root)  # shown as text, exactly as written

    def test_huge_hostile_draft(self, huge_draft: Draft) -> None:
        """5,000 hostile events, a 40 KB message and 200 action items still make a well-formed page."""
        edits = {section: HOSTILE * 3 for section in EditableSection}
        xhtml = render_confluence(
            huge_draft.model_copy(update={"edits": edits}), options=RenderOptions(timezone="Europe/Berlin")
        )
        root = parse_storage(xhtml)
        assert_inert(root, xhtml)
        assert "<script>alert(1)</script>" in all_text(root)
        assert "<script>" not in xhtml

    def test_unsafe_link_schemes_are_text(self, draft: Draft, options: RenderOptions) -> None:
        """A javascript: link in chat text stays text; a javascript: evidence URL gives no link."""
        events = tuple(
            e.model_copy(update={"text": "[x](javascript:alert(1))", "url": "javascript:alert(2)"})
            for e in draft.timeline.events
        )
        hostile = draft.model_copy(update={"timeline": draft.timeline.model_copy(update={"events": events})})
        root = parse_storage(render_confluence(hostile, options=options))
        assert not any("javascript" in (a.get("href") or "") for a in root.iter("a"))


class TestTemplateOverride:
    def test_override_wins_and_values_stay_escaped(self, draft: Draft, tmp_path: Path) -> None:
        """A template of the same name in templates_dir wins, and its values are escaped all the same."""
        (tmp_path / "postmortem.confluence.xhtml.j2").write_text(
            "<p>{{ title }} / {{ status }}</p>", encoding="utf-8"
        )
        evil = draft.model_copy(
            update={"incident": draft.incident.model_copy(update={"title": "<script>x</script>&"})}
        )
        out = render_confluence(evil, options=RenderOptions(templates_dir=tmp_path))
        assert out == "<p>&lt;script&gt;x&lt;/script&gt;&amp; / Draft</p>"

    def test_missing_override_falls_back_to_bundled(self, draft: Draft, tmp_path: Path) -> None:
        """A templates_dir without this template still renders the bundled one."""
        (tmp_path / "postmortem.md.j2").write_text("only markdown here", encoding="utf-8")
        bundled = render_confluence(draft, options=RenderOptions())
        assert render_confluence(draft, options=RenderOptions(templates_dir=tmp_path)) == bundled


class TestFilters:
    def test_rich_links_and_newlines(self) -> None:
        """rich: escaped text, safe links as anchors, newlines as <br />."""
        assert (
            rich("a<b\n[t](https://x.example/?a=1&b=2)")
            == 'a&lt;b<br /><a href="https://x.example/?a=1&amp;b=2">t</a>'
        )

    def test_rich_whole_text_link(self) -> None:
        """rich(url): the whole text as one link, and only for a safe URL."""
        assert (
            rich("PD-9876", "https://acme.pagerduty.com/incidents/Q1")
            == '<a href="https://acme.pagerduty.com/incidents/Q1">PD-9876</a>'
        )
        assert rich("PD-9876", "javascript:x") == "PD-9876"

    def test_md_block(self) -> None:
        """md_block: paragraphs, bullet lists with continuation lines, and headings."""
        text = "Intro line\nsecond line\n\n- one\n  more\n- two\n# Title"
        assert (
            md_block(text)
            == "<p>Intro line<br />second line</p><ul><li>one<br />more</li><li>two</li></ul><h3>Title</h3>"
        )
