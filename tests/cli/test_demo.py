"""`python -m bot demo`: the sample incident end to end into its four outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cli.conftest import Run

CONFLUENCE_ROOT = '<root xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier">{}</root>'


class TestDemo:
    def test_writes_four_outputs_and_prints_the_metrics_and_suspect(self, bot, tmp_path: Path) -> None:
        """The demo writes Markdown, Confluence storage, Block Kit and the chart, and prints what it found."""
        run: Run = bot("demo", "--out", "out")
        assert run.code == 0, run.stderr
        out = tmp_path / "out"
        for name in ("PD-9876.md", "PD-9876.confluence.xhtml", "PD-9876.blocks.json", "PD-9876.timeline.png"):
            assert (out / name).stat().st_size > 0
            assert str(Path("out") / name) in run.stdout
        assert "Time to acknowledge  4 min" in run.stdout
        assert "Time to resolve      1 h 45 min" in run.stdout
        assert "acme/customer-api 9f8e7d6 — Deploy #482: DB client pool v2" in run.stdout

        markdown = (out / "PD-9876.md").read_text()
        for heading in ("## Summary", "## Impact", "## Timeline", "## Action items", "## Key metrics"):
            assert heading in markdown
        assert "[REDACTED:aws_access_key]" in markdown and "AKIAEXAMPLEFAKE98760" not in markdown

        storage = (out / "PD-9876.confluence.xhtml").read_text()
        ET.fromstring(CONFLUENCE_ROOT.format(storage))  # well-formed XHTML
        assert "AKIAEXAMPLEFAKE98760" not in storage

        blocks = json.loads((out / "PD-9876.blocks.json").read_text())["blocks"]
        assert 0 < len(blocks) <= 50
        assert "postmortem_approve" in json.dumps(blocks)

        assert (out / "PD-9876.timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_help_explains_the_options(self, bot) -> None:
        """`demo --help` names its options."""
        run = bot("demo", "--help")
        assert run.code == 0
        for option in ("--sample", "--out", "--timezone", "--templates-dir"):
            assert option in run.stdout

    def test_an_unknown_argument_is_one_line_and_exit_2(self, bot) -> None:
        """Bad arguments give one line on stderr and exit code 2."""
        run = bot("demo", "--nope")
        assert run.code == 2
        assert len(run.stderr.strip().splitlines()) == 1
