"""The reliability suite: faults and hostile input, end to end. Its run writes docs/reliability.md.

How a test here becomes a row of the table in docs/reliability.md (category | case | what the suite
asserts | result | figures), with no extra bookkeeping:

* **Category**: the first line of the test class's docstring ("Secrets", "Hostile input", "Slack 429
  storms", ...); without a class, the first line of the module's docstring.
* **Case**: `@pytest.mark.case("a 40 KB message")` names it. For a parametrized test, give a mapping
  from parameter id to name (`@pytest.mark.case({"slack": "secrets pasted in chat", ...})`); the ids
  of the other parameters (the `database_url` fixture's `sqlite`/`postgres`) follow in parentheses.
  Without the marker, the test's name is used ("test_a_429_storm" -> "a 429 storm").
* **What the suite asserts**: the test's docstring (one line stating the behaviour, as everywhere).
* **Result**: the outcome — passed, failed, error (setup or teardown), skipped, xfailed.
* **Figures**: ask for the `figures` fixture and put counts in it while the test runs
  (`figures["messages"] = 10_000`). Only values that are the same on every run: counts, sizes, limits —
  never timings, ports, paths or dates, so a passing run on a clean tree leaves the file unchanged.

The document is rewritten only after a run that collected the whole tests/reliability directory and ran
every test in it (`make test`, or `pytest tests/reliability`); a `-k`/`-m`/`--lf`/single-file run or
one stopped early leaves it alone. The generator is tests/reliability/report.py.

`make test` runs the tests on several pytest-xdist workers (`--dist loadgroup`); every test here is in
one group, so one worker runs the whole suite and can write the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.confluence import ConfluenceFake
from tests.fakes.github import GitHubFake
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import SlackWebFake
from tests.fakes.tls import write_ca_bundle
from tests.reliability.pipeline import Fakes
from tests.reliability.report import FIGURES, ReliabilityReport

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE.parents[1] / "docs" / "reliability.md"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "case(name): the reliability case a test covers, as docs/reliability.md names it; a mapping "
        "from parameter id to name for parametrized tests",
    )
    if not config.pluginmanager.has_plugin("reliability-report"):
        config.pluginmanager.register(
            ReliabilityReport(directory=HERE, output=DOCUMENT), "reliability-report"
        )


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("reliability"))


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    """PagerDuty (TLS), GitHub and Slack Web API fakes for the in-process pipeline (`pipeline.py`), per module."""
    ca_bundle = write_ca_bundle(tmp_path_factory.mktemp("ca"))
    with PagerDutyFake() as pagerduty, GitHubFake() as github, SlackWebFake() as slack:
        yield Fakes(pagerduty=pagerduty, github=github, slack=slack, ca_bundle=ca_bundle)


@pytest.fixture(scope="module")
def confluence() -> Iterator[ConfluenceFake]:
    with ConfluenceFake() as fake:
        yield fake


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Counts the test puts here appear in the test's row of docs/reliability.md."""
    recorded: dict[str, Any] = {}
    request.node.stash[FIGURES] = recorded
    return recorded
