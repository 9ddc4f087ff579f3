"""The generator of docs/reliability.md: a pytest plugin that records every reliability test's case and
outcome, and after a complete run of tests/reliability writes the table of what the suite asserts.

The plugin is registered by tests/reliability/conftest.py (which documents the convention tests follow).
What it writes depends only on the tests and their outcomes — no times, durations or paths — so a run
on a clean tree that passes leaves the committed file unchanged.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIGURES = pytest.StashKey[dict[str, Any]]()

HOW_TO_RUN = """\
## How to run it

```sh
make test                          # lint, then the whole suite; this file is rewritten from the run
.venv/bin/pytest tests/reliability # the reliability suite alone; rewrites this file too
.venv/bin/pytest tests/reliability -k secrets   # a subset: runs, but leaves this file alone
```

The suite needs the local PostgreSQL (`TEST_POSTGRES_URL`, default `postgresql://postgres@127.0.0.1:5432/test`):
every database case runs against SQLite and PostgreSQL. Everything else is local: the PagerDuty, GitHub,
Slack and Confluence fakes in `tests/fakes/` are real HTTP servers on 127.0.0.1, driven through the real
client libraries.

This file is written by `tests/reliability/report.py` at the end of a run that collected the whole
`tests/reliability` directory (no `-k`, `-m`, `--lf` or single file). Its rows are the tests that ran,
its results their outcomes, its figures what the tests counted while running. Do not edit it by hand: a
failing test shows here as `failed` until it passes again.
"""


@dataclass
class Row:
    nodeid: str
    category: str
    case: str
    asserts: str
    outcome: str = "not run"
    figures: dict[str, Any] = field(default_factory=dict)


def first_line(doc: str | None) -> str:
    return (inspect.cleandoc(doc).splitlines() or [""])[0].strip() if doc else ""


def one_paragraph(doc: str | None) -> str:
    """A docstring's first paragraph on one line."""
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def humanise(name: str) -> str:
    return name.removeprefix("test_").replace("_", " ")


def _param_id(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.id if callspec is not None else ""


def case_of(item: pytest.Item) -> str:
    """The case: from the `case` marker (a name, or a mapping from parameter id to name), else the
    test's name; the ids of the parameters not named by the marker follow in parentheses."""
    marker = item.get_closest_marker("case")
    param_id = _param_id(item)
    name = humanise(getattr(item, "originalname", item.name))
    rest = param_id
    if marker is not None and marker.args:
        given = marker.args[0]
        if isinstance(given, Mapping):
            for key, value in given.items():
                match = re.fullmatch(rf"(?:(.*)-)?{re.escape(str(key))}(?:-(.*))?", param_id)
                if match:
                    name = str(value)
                    rest = "-".join(part for part in match.groups() if part)
                    break
        else:
            name = str(given)
    return f"{name} ({rest})" if rest else name


def category_of(item: pytest.Item) -> str:
    cls = getattr(item, "cls", None)
    module = getattr(item, "module", None)
    return (
        first_line(cls.__doc__ if cls else None)
        or first_line(module.__doc__ if module else None)
        or (module.__name__.rsplit(".", 1)[-1] if module else "reliability")
    )


def asserts_of(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    return one_paragraph(function.__doc__ if function else None) or humanise(item.name)


def outcome_of(report: pytest.TestReport, current: str) -> str:
    """The row's result after one phase's report (setup, call, teardown)."""
    if report.when == "setup":
        if report.failed:
            return "error"
        return "skipped" if report.skipped else current
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.failed:  # teardown
        return "error"
    return current


def _cell(value: object) -> str:
    """One table cell: one line, "<" and "&" as entities (no raw HTML), pipes escaped."""
    return html.escape(" ".join(str(value).split()), quote=False).replace("|", "\\|")


def _figures(figures: Mapping[str, Any]) -> str:
    return " · ".join(
        f"{name}: {value:,}" if isinstance(value, int) else f"{name}: {value}"
        for name, value in figures.items()
    )


def render(rows: Iterable[Row]) -> str:
    rows = list(rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    lines = [
        "# Reliability and security: what the suite asserts",
        "",
        "Generated by the reliability suite (`tests/reliability`) from its own run: every row is a test, every",
        "result is its outcome, every figure was counted while it ran. Regenerate it by running the suite.",
        "",
        f"**{len(rows)} cases: {tally}.**",
        "",
        "| Category | Case | What the suite asserts | Result | Figures |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {_cell(row.category)} | {_cell(row.case)} | {_cell(row.asserts)} | "
            f"{_cell(row.outcome)} | {_cell(_figures(row.figures))} |"
        )
    return "\n".join(lines) + "\n\n" + HOW_TO_RUN


class ReliabilityReport:
    """Collects the rows during a session; writes the document when the whole directory ran."""

    def __init__(self, *, directory: Path, output: Path) -> None:
        self.directory = directory.resolve()
        self.output = output
        self.rows: dict[str, Row] = {}
        self.partial: list[str] = []  # why this run may not write the document

    def _ours(self, item: pytest.Item) -> bool:
        return self.directory in Path(item.path).resolve().parents

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        # trylast: -k, -m and --lf have deselected theirs by now (pytest_deselected says which).
        self.rows = {
            item.nodeid: Row(item.nodeid, category_of(item), case_of(item), asserts_of(item))
            for item in items
            if self._ours(item)
        }
        files = {Path(item.path).resolve() for item in items if self._ours(item)}
        missing = sorted(p.name for p in self.directory.glob("test_*.py") if p.resolve() not in files)
        if missing:
            self.partial.append(f"not collected: {', '.join(missing)}")
        for arg in config.args:
            path, _, selector = arg.partition("::")
            resolved = Path(path).resolve()
            if selector and (resolved == self.directory or self.directory in resolved.parents):
                self.partial.append(f"a selection inside the directory: {arg}")

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        ours = [item.nodeid for item in items if self._ours(item)]
        if ours:
            self.partial.append(f"{len(ours)} deselected")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201 - the report
        report = yield
        row = self.rows.get(item.nodeid)
        if row is not None:
            row.outcome = outcome_of(report, row.outcome)
            row.figures = dict(item.stash.get(FIGURES, {}))
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.rows or self.partial:
            return
        if any(row.outcome == "not run" for row in self.rows.values()):
            return  # stopped early (-x, an interrupt): the table would not be the suite's
        text = render(self.rows.values())
        if not self.output.exists() or self.output.read_text(encoding="utf-8") != text:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text(text, encoding="utf-8")
