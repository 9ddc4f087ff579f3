from __future__ import annotations

from pathlib import Path

from bot.analysis.models import TO_BE_FILLED, Draft, EditableSection
from bot.render.markdown import cell, editable_markdown, md, render_markdown
from bot.render.options import RenderOptions
from tests.render.conftest import HOSTILE, assert_golden

SECTIONS = (
    "## Summary",
    "## Impact",
    "## Leadup and trigger",
    "## Detection",
    "## Response and recovery",
    "## Timeline",
    "## Contributing factors",
    "## Lessons learned",
    "## Action items",
    "## Key metrics",
    "## Supporting information",
    "## Notes on this draft",
)


class TestRenderMarkdown:
    def test_golden(self, draft: Draft, options: RenderOptions) -> None:
        """The sample incident renders exactly as tests/render/golden/pd-9876.md."""
        assert_golden("pd-9876.md", render_markdown(draft, options=options))

    def test_every_section_in_order(self, draft: Draft, options: RenderOptions) -> None:
        """Header with status, then every section of the reference, in the reference's order."""
        out = render_markdown(draft, options=options)
        assert out.startswith("# Postmortem: PD-9876 — High severity API latency spikes in production\n")
        assert "**Status:** Draft" in out
        positions = [out.index(heading) for heading in SECTIONS]
        assert positions == sorted(positions)

    def test_local_time_beside_utc(self, draft: Draft, options: RenderOptions) -> None:
        """Timeline rows and header times carry the team's local time beside UTC."""
        out = render_markdown(draft, options=options)
        assert "| 10:34 | 12:34 CEST | PagerDuty | **Acknowledged**: Acknowledged by Ana Lima |" in out
        assert "| Started | 2024-07-20 10:30 UTC (12:30 CEST) |" in out

    def test_utc_team_has_no_local_column(self, draft: Draft) -> None:
        """With the team on UTC the timeline has no redundant local column."""
        out = render_markdown(draft, options=RenderOptions())
        assert "| UTC | Source | Event | Who | Evidence |" in out
        assert "CEST" not in out

    def test_every_timeline_entry_links_its_evidence(self, draft: Draft, options: RenderOptions) -> None:
        """Each event's evidence URL appears in its timeline row."""
        rows = [line for line in render_markdown(draft, options=options).splitlines() if "[link](" in line]
        for event in draft.timeline.events:
            assert any(f"[link]({event.url})" in row for row in rows), event.text

    def test_edits_shown_instead_of_computed_sections(self, draft: Draft, options: RenderOptions) -> None:
        """A person's edit replaces the computed section; the computed text is gone."""
        edits = {
            EditableSection.SUMMARY: "Our own summary, written by Ana.",
            EditableSection.ACTION_ITEMS: "- [Ben Okafor] add the pool size check",
            EditableSection.LESSONS_LEARNED: "Went well:\n- paging worked",
        }
        out = render_markdown(draft.model_copy(update={"edits": edits}), options=options)
        assert "Our own summary, written by Ana." in out and draft.summary not in out
        assert "- [Ben Okafor] add the pool size check" in out and "| Owner | Action |" not in out
        assert "- paging worked" in out and "### What went well" not in out

    def test_empty_sections_say_to_be_filled(self, draft: Draft, options: RenderOptions) -> None:
        """Sections the data cannot support ask the authors to fill them instead of inventing content."""
        empty = draft.model_copy(update={"contributing_factors": (), "action_items": ()})
        out = render_markdown(empty, options=options)
        section = out.split("## Contributing factors")[1].split("##")[0]
        assert TO_BE_FILLED in section
        assert TO_BE_FILLED in out.split("## Action items")[1].split("##")[0]

    def test_source_notes_and_redactions(self, draft: Draft, options: RenderOptions) -> None:
        """A partial draft says which source failed, and the redaction count is stated."""
        partial = draft.model_copy(
            update={"source_notes": ("GitHub was unreachable: 503 Service Unavailable",)}
        )
        out = render_markdown(partial, options=options)
        assert "**Partial draft**" in out
        assert "- Source note: GitHub was unreachable: 503 Service Unavailable" in out
        assert "- 3 secrets redacted before drafting." in out

    def test_table_breakers_escaped(self, draft: Draft, options: RenderOptions) -> None:
        """Pipes and newlines in chat text cannot break the timeline table."""
        event = draft.timeline.events[6].model_copy(update={"text": "a | b\nc || d"})
        events = (*draft.timeline.events[:6], event, *draft.timeline.events[7:])
        broken = draft.model_copy(update={"timeline": draft.timeline.model_copy(update={"events": events})})
        out = render_markdown(broken, options=options)
        row = next(line for line in out.splitlines() if "a \\| b" in line)
        assert "a \\| b<br>c \\|\\| d" in row
        assert row.count(" | ") - row.count("\\|") >= 0 and row.endswith("|")

    def test_template_override_wins(self, draft: Draft, tmp_path: Path) -> None:
        """A postmortem.md.j2 in templates_dir replaces the bundled one."""
        (tmp_path / "postmortem.md.j2").write_text("Custom {{ key }}: {{ title|line }}\n", encoding="utf-8")
        out = render_markdown(draft, options=RenderOptions(templates_dir=tmp_path))
        assert out == "Custom PD-9876: High severity API latency spikes in production\n"

    def test_hostile_input_renders(self, huge_draft: Draft) -> None:
        """A huge hostile draft renders, every timeline row stays one table row."""
        out = render_markdown(huge_draft, options=RenderOptions(timezone="Europe/Berlin"))
        table = out.split("## Timeline")[1].split("## Contributing factors")[0]
        rows = [line for line in table.splitlines() if line.startswith("| ")]
        assert len(rows) == 1 + len(huge_draft.timeline.events)
        assert "\x00" not in out and "\u202e" not in out


class TestMarkdownFilters:
    def test_links_kept_unsafe_ones_text(self) -> None:
        """Safe links stay Markdown links with their target made safe; javascript: stays text."""
        assert md("[PR](https://x.example/a b)") == "[PR](https://x.example/a b)"
        assert md("see", "https://x.example/a(b)|c") == "[see](https://x.example/a%28b%29%7Cc)"
        assert md("see", "https://x.example/a b") == "see"  # a space cannot be part of a URL
        assert md("[x](javascript:alert(1))") == "[x](javascript:alert(1))"
        assert md("x", "javascript:alert(1)") == "x"

    def test_cell_escapes_pipes_in_links_too(self) -> None:
        """A pipe inside a link label or URL cannot end the cell."""
        assert cell("[a|b](https://x.example/?q=a|b)") == "[a\\|b](https://x.example/?q=a%7Cb)"

    def test_hostile_label_cannot_close_the_link(self) -> None:
        """Brackets in a label are escaped."""
        assert md("x]y", "https://x.example") == "[x\\]y](https://x.example)"

    def test_hostile_constant_is_defined(self) -> None:
        """The hostile fixture holds every kind of attack this suite promises to test."""
        for piece in (
            "<script>",
            "]]>",
            'ac:name="html"',
            "&amp;",
            "\x00",
            "\x1f",
            "\u202e",
            "\u200b",
            "@channel",
        ):
            assert piece in HOSTILE


class TestEditableMarkdown:
    def test_action_items_one_line_each(self, draft: Draft) -> None:
        """Action items read '- [owner] text', one line per item."""
        assert editable_markdown(draft, EditableSection.ACTION_ITEMS).splitlines() == [
            "- [Ben Okafor] add a CI check that fails when the DB pool size drops below 20",
            "- [Ana Lima] add a Datadog monitor on DB connection wait time",
            "- [Dee Park] we should be more careful",
            "- [Carlos Mendes] document pool sizing in the runbook",
        ]

    def test_quotes_as_lines(self, draft: Draft) -> None:
        """Contributing factors and lessons are their quotes, one line each."""
        factors = editable_markdown(draft, EditableSection.CONTRIBUTING_FACTORS)
        assert factors.startswith(
            "- root cause: pool size dropped from 50 to 5 in [#482]("
        ) and factors.endswith("— Ben Okafor")
        lessons = editable_markdown(draft, EditableSection.LESSONS_LEARNED)
        assert (
            lessons
            == "Went well:\n- the rollback took 7 minutes — Ana Lima\n\nLucky:\n- Saturday traffic was low — Dee Park"
        )

    def test_edit_wins(self, draft: Draft) -> None:
        """An existing edit is what the person edits next time."""
        edited = draft.model_copy(update={"edits": {EditableSection.IMPACT: "Logins failed for 20 minutes."}})
        assert editable_markdown(edited, EditableSection.IMPACT) == "Logins failed for 20 minutes."
