"""Source faults, end to end: PagerDuty, GitHub and Slack misbehave while the real bot drafts PD-9876.

One `python -m bot` process (HTTP_TIMEOUT_SECONDS=1, HTTP_MAX_RETRIES=2) serves every case, each on an
empty store and fresh fakes. A fault is injected in one API's fake (`tests/fakes/http.py`: 429 with
Retry-After: 1, 5xx, a request held past the client's timeout, latency), then /postmortem is delivered and
the case reads what a person would see: the ephemeral answer, the progress message and the preview. The
preview drafted with no fault at all is the yardstick: "nothing lost" means the same blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.ids import ActionId
from tests.e2e.conftest import (
    Fakes,
    Workspace,
    fakes,  # noqa: F401 - the module's fakes, a fixture
)
from tests.fakes.http import FakeServer, Fault
from tests.fakes.slack_payloads import action_ids
from tests.fakes.wait import poll
from tests.reliability.faults import (
    Shared,
    acked_in_time,
    drafted,
    fresh_workspace,
    notes_of,
    start_shared,
    stored,
    told,
)

RETRY_AFTER = 1  # seconds, in every 429
# The request of each API that a fault aims at: PagerDuty's incident, GitHub's deployments of the suspect's
# repository, and Slack's channel history.
PATHS = {
    "pagerduty": r"^/incidents/9876$",
    "github": r"^/repos/acme/customer-api/deployments$",
    "slack": r"^/api/conversations\.history$",
}
NAMES = {"pagerduty": "PagerDuty", "github": "GitHub", "slack": "Slack"}


def fake_of(ws: Workspace, api: str) -> FakeServer:
    return {"pagerduty": ws.fakes.pagerduty, "github": ws.fakes.github, "slack": ws.fakes.slack}[api]


def fault(kind: str, *, api: str, times: int | None) -> Fault:
    """One fault aimed at `api`: 429 + Retry-After, 503, or a request held 1.5 s (past the 1 s timeout)."""
    if kind == "429":
        return Fault("429", times=times, path=PATHS[api], retry_after=RETRY_AFTER)
    if kind == "5xx":
        return Fault("5xx", times=times, path=PATHS[api], status=503)
    return Fault("hang", times=times, path=PATHS[api], seconds=1.5)


def answered(ws: Workspace, api: str, status: int) -> list[Any]:
    return [r for r in fake_of(ws, api).requests_to(PATHS[api]) if r.status == status]


def waits_after_429(ws: Workspace, api: str) -> list[float]:
    """For each 429 the API answered, the seconds until the bot asked again."""
    requests = sorted(fake_of(ws, api).requests_to(PATHS[api]), key=lambda r: r.received_at)
    return [
        later.received_at - r.answered_at
        for r, later in zip(requests, requests[1:], strict=False)
        if r.status == 429
    ]


@pytest.fixture(scope="module")
def shared(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:  # noqa: F811
    with start_shared(fakes, tmp_path_factory.mktemp("sources"), name="sources") as bot:
        yield bot


@pytest.fixture(scope="module")
def complete(fakes: Fakes, shared: Shared) -> list[dict[str, Any]]:  # noqa: F811
    """The preview's blocks when every source answers at once: the yardstick of "nothing lost"."""
    _, preview = drafted(fresh_workspace(fakes, shared), shared.bot)
    assert notes_of(preview) == ""
    return preview["blocks"]


@pytest.fixture
def ws(fakes: Fakes, shared: Shared, complete: list[dict[str, Any]]) -> Workspace:  # noqa: F811
    return fresh_workspace(fakes, shared)


ATTEMPTS = 3  # HTTP_MAX_RETRIES=2: the first try and two retries


@dataclass(frozen=True)
class Case:
    api: str
    kind: str
    times: int | None = None  # faulty answers in a row; None: until the case clears the fault
    attempts: int = ATTEMPTS  # requests the client makes before it gives up


# PagerDuty's client backs off 3 s, then 6 s, after a 5xx or a timeout: one of each keeps the case short.
RIDDEN_OUT = [
    Case("pagerduty", "429", 2),
    Case("github", "429", 2),
    Case("slack", "429", 2),
    Case("pagerduty", "5xx", 1),
    Case("github", "5xx", 2),
    Case("slack", "5xx", 2),
    Case("pagerduty", "hang", 1),
    Case("github", "hang", 1),
    Case("slack", "hang", 1),
]
KIND_NAMES = {
    "429": "a 429 storm with Retry-After",
    "5xx": "a burst of 503s",
    "hang": "a request held past the timeout",
}


def ids(cases: list[Case]) -> list[str]:
    return [f"{c.api}-{c.kind}" for c in cases]


def names(cases: list[Case], kinds: dict[str, str]) -> dict[str, str]:
    return {f"{c.api}-{c.kind}": f"{NAMES[c.api]}: {kinds[c.kind]}" for c in cases}


class TestRiddenOut:
    """Sources: bursts the clients ride out"""

    @pytest.mark.parametrize("case", RIDDEN_OUT, ids=ids(RIDDEN_OUT))
    @pytest.mark.case(names(RIDDEN_OUT, KIND_NAMES))
    def test_a_burst_within_the_retries_loses_nothing(
        self, ws: Workspace, shared: Shared, complete: list[dict[str, Any]], case: Case, figures
    ) -> None:
        """A 429 storm (each Retry-After waited out), a 5xx burst or a hung request on one API, shorter than
        the client's retries: the command is acked in time and the preview is the complete one, no note."""
        times = case.times
        assert times is not None
        fake_of(ws, case.api).faults.add(fault(case.kind, api=case.api, times=times))
        sent, preview = drafted(ws, shared.bot)
        assert preview["blocks"] == complete, notes_of(preview)
        assert ws.responses(sent) == [] and len(ws.posted()) == 1
        status = {"429": 429, "5xx": 503, "hang": 504}[case.kind]
        # A held request is recorded once the fake lets go of it, after the client gave up on it.
        poll(lambda: len(answered(ws, case.api, status)) == times, what=f"{times} answers of {status}")
        if case.kind == "429":
            waits = waits_after_429(ws, case.api)
            assert len(waits) == times and min(waits) >= RETRY_AFTER - 0.05, waits
        requests = len(fake_of(ws, case.api).requests_to(PATHS[case.api]))
        assert requests == times + 1, "every faulty answer was followed by exactly one retry"
        figures["faulty answers"] = times
        figures["requests to the API"] = requests


PAST_RETRIES = [
    Case("github", "5xx"),
    Case("github", "hang"),
    Case("slack", "429"),
    Case("slack", "hang"),
]
LONG_KIND_NAMES = {
    "429": "a 429 storm longer than the retries",
    "5xx": "503 until further notice",
    "hang": "every request held past the timeout",
}


class TestPastTheRetries:
    """Sources: faults that outlast the retries"""

    @pytest.mark.parametrize("case", PAST_RETRIES, ids=ids(PAST_RETRIES))
    @pytest.mark.case(names(PAST_RETRIES, LONG_KIND_NAMES))
    def test_a_failing_source_leaves_a_partial_draft_that_regenerate_completes(
        self, ws: Workspace, shared: Shared, complete: list[dict[str, Any]], case: Case, figures
    ) -> None:
        """GitHub or Slack failing past the retries: the preview still comes, marked partial with a note
        naming the source and why; once the source is back, Regenerate turns it into the complete preview."""
        fake_of(ws, case.api).faults.add(fault(case.kind, api=case.api, times=None))
        sent, preview = drafted(ws, shared.bot)
        notes = notes_of(preview)
        assert "*Partial draft*" in notes and f"• {NAMES[case.api]} was unreachable: " in notes, notes
        assert action_ids(preview)[0] == ActionId.APPROVE, "a partial draft can still be reviewed"
        assert ws.responses(sent) == []
        requests = fake_of(ws, case.api).requests_to
        # A held request is recorded once the fake lets go of it, after the client gave up on it.
        poll(lambda: len(requests(PATHS[case.api])) == case.attempts, what=f"{case.attempts} attempts")
        figures["attempts"] = case.attempts

        fake_of(ws, case.api).faults.clear()
        acked_in_time(ws, ws.click(shared.bot, preview, ActionId.REGENERATE))
        poll(
            lambda: (m := ws.latest(preview["ts"])) and m["blocks"] == complete,
            what="the complete preview after Regenerate",
        )
        assert len(ws.posted()) == 1, "Regenerate updates the preview in place"

    @pytest.mark.parametrize("kind", ["429", "hang"])
    @pytest.mark.case(
        {
            "429": "PagerDuty: a 429 storm longer than the retries",
            "hang": "PagerDuty: every request held past the timeout",
        }
    )
    def test_without_the_incident_the_asker_is_told_and_can_ask_again(
        self, ws: Workspace, shared: Shared, complete: list[dict[str, Any]], kind: str, figures
    ) -> None:
        """PagerDuty failing past the retries: nothing can be drafted, so the person who asked is told why
        (ephemerally) and nothing is posted or stored; once PagerDuty is back, /postmortem drafts in full."""
        ws.fakes.pagerduty.faults.add(fault(kind, api="pagerduty", times=None))
        sent = ws.command(shared.bot, "PD-9876")
        acked_in_time(ws, sent)
        said = told(ws, sent, starts="PagerDuty")
        reason = {"429": "kept rate-limiting PAGERDUTY_API_TOKEN", "hang": "did not answer within 1 s"}[kind]
        assert reason in said and "PD-9876" in said, said
        assert ws.posted() == [] and stored(shared.database_url) is None
        poll(
            lambda: len(ws.fakes.pagerduty.requests_to(PATHS["pagerduty"])) == ATTEMPTS,
            what=f"{ATTEMPTS} attempts",
        )
        figures["attempts"] = ATTEMPTS

        ws.fakes.pagerduty.faults.clear()
        _, preview = drafted(ws, shared.bot)
        assert preview["blocks"] == complete


class TestSlowSource:
    """Sources: a slow source"""

    @pytest.mark.case("GitHub answering 0.8 s late")
    def test_a_slow_source_shows_progress_and_delays_only_itself(
        self, ws: Workspace, shared: Shared, complete: list[dict[str, Any]], figures
    ) -> None:
        """GitHub's deployments answered 0.8 s late (inside the 1 s timeout): the progress message shows
        PagerDuty and Slack done while GitHub is still reading, then the complete preview replaces it."""
        ws.fakes.github.faults.add(Fault("latency", times=None, path=PATHS["github"], seconds=0.8))
        _, preview = drafted(ws, shared.bot)
        assert preview["blocks"] == complete

        progress = [u["blocks"][0]["text"]["text"] for u in ws.updates(preview["ts"])[:-1]]

        def line(text: str, source: str) -> str:
            return next(row for row in text.splitlines() if f"*{source}*" in row)

        assert any(
            "reading deployments" in line(text, "GitHub")
            and "log entries" in line(text, "PagerDuty")
            and "messages" in line(text, "Slack")
            for text in progress
        ), progress
        figures["GitHub requests"] = len(ws.fakes.github.requests_to(r"^/repos/"))
