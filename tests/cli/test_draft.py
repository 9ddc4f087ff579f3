"""`python -m bot draft` against local PagerDuty (TLS), GitHub and Slack servers serving the sample incident."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.analysis.models import Draft, DraftOptions
from bot.deps import build_replay_sources
from bot.postmortem import draft_incident
from bot.samples import DEFAULT_SAMPLE
from bot.sources.gather import GatherOptions
from tests.fakes.github import DEFAULT_TOKEN as GITHUB_TOKEN
from tests.fakes.github import GitHubFake
from tests.fakes.http import Fault
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import BOT_TOKEN, SlackWebFake
from tests.fakes.tls import write_ca_bundle

SAMPLE = json.loads((DEFAULT_SAMPLE / "sample.json").read_text())


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[PagerDutyFake, GitHubFake, SlackWebFake]]:
    with PagerDutyFake() as pd, GitHubFake() as gh, SlackWebFake() as slack:
        yield pd, gh, slack


@pytest.fixture
def env(fakes, tmp_path: Path) -> dict[str, str]:  # noqa: ANN001 - the fakes tuple
    pd, gh, slack = fakes
    for fake in fakes:
        fake.faults.clear()
        fake.requests.clear()
    return {
        "PAGERDUTY_API_TOKEN": pd.token,
        "PAGERDUTY_API_URL": pd.url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_API_URL": gh.url,
        "GITHUB_WEB_URL": "https://github.com",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "CA_BUNDLE": str(write_ca_bundle(tmp_path)),
        "SERVICE_REPOS": ",".join(f"{s}={r}" for s, r in SAMPLE["service_repos"].items()),
        "HTTP_TIMEOUT_SECONDS": "2",
        "HTTP_MAX_RETRIES": "2",
    }


def demo_draft() -> Draft:
    return draft_incident(
        ref="PD-9876",
        channel_id=None,
        sources=build_replay_sources(DEFAULT_SAMPLE),
        gather_options=GatherOptions(repo_for_service=SAMPLE["service_repos"].get),
        draft_options=DraftOptions(),
        now=datetime.now(UTC),
    )


def comparable(draft: Draft) -> dict:
    return draft.model_dump(mode="json", exclude={"generated_at"})


class TestDraftCommand:
    def test_the_live_draft_equals_the_demo_draft(self, bot, env: dict[str, str], tmp_path: Path) -> None:
        """Through the real clients and HTTP, the sample incident gives exactly the demo's draft."""
        run = bot("draft", "PD-9876", "--format", "json", "--out", "draft.json", **env)
        assert run.code == 0, run.stderr
        live = Draft.model_validate_json((tmp_path / "draft.json").read_text())
        assert comparable(live) == comparable(demo_draft())

    def test_the_channel_is_found_from_the_incident(self, bot, env: dict[str, str], fakes) -> None:  # noqa: ANN001
        """Without --channel the incident's Slack link leads to #inc-9876-api-latency."""
        run = bot("draft", "9876", **env)
        assert run.code == 0, run.stderr
        assert "[#inc-9876-api-latency](https://acme.slack.com/archives/C07INC9876)" in run.stdout
        assert fakes[2].requests_to(r"conversations\.history")

    def test_progress_goes_to_stderr_and_the_draft_to_stdout(self, bot, env: dict[str, str]) -> None:
        """stdout holds only the document; each source's progress is on stderr."""
        run = bot("draft", "PD-9876", "--format", "markdown", **env)
        assert run.stdout.startswith("# Postmortem: PD-9876")
        for source in ("pagerduty", "github", "slack"):
            assert source in run.stderr

    def test_the_three_sources_are_read_at_the_same_time(self, bot, env: dict[str, str], fakes) -> None:  # noqa: ANN001
        """With every source slowed down, their requests overlap in time instead of running one after another."""
        pd, gh, slack = fakes
        # The incident and its alerts are read first; its log (all of a resolved incident's responders are
        # there) comes with the other sources.
        pd.faults.add(Fault("latency", times=None, path=r"/log_entries$", seconds=0.4))
        gh.faults.add(Fault("latency", times=None, path=r"/deployments$", seconds=0.4))
        slack.faults.add(Fault("latency", times=None, path=r"conversations\.history", seconds=0.4))
        assert bot("draft", "PD-9876", **env).code == 0
        spans = [
            (r.received_at, r.answered_at)
            for server, path in (
                (pd, r"/log_entries$"),
                (gh, r"/deployments$"),
                (slack, r"conversations\.history"),
            )
            for r in server.requests_to(path)[:1]
        ]
        assert len(spans) == 3
        assert max(start for start, _ in spans) < min(end for _, end in spans)


class TestPartialAndFailures:
    def test_a_failing_source_gives_a_partial_draft_with_its_note(
        self, bot, env: dict[str, str], fakes
    ) -> None:  # noqa: ANN001
        """GitHub answering 503 to everything: exit 4, and the draft says GitHub was unreachable."""
        fakes[1].faults.add(Fault("5xx", times=None, status=503))
        run = bot("draft", "PD-9876", **env)
        assert run.code == 4
        assert "GitHub was unreachable" in run.stdout
        assert "GitHub was unreachable" in run.stderr

    def test_a_bad_slack_token_names_the_setting(self, bot, env: dict[str, str]) -> None:
        """A rejected Slack token: partial draft whose note names SLACK_BOT_TOKEN, never the token."""
        run = bot("draft", "PD-9876", **{**env, "SLACK_BOT_TOKEN": "xoxb-wrong"})
        assert run.code == 4
        assert "SLACK_BOT_TOKEN" in run.stdout
        assert "xoxb-wrong" not in run.stdout + run.stderr

    def test_a_bad_pagerduty_token_names_the_setting(self, bot, env: dict[str, str]) -> None:
        """Without the incident there is nothing to draft: one line naming PAGERDUTY_API_TOKEN."""
        run = bot("draft", "PD-9876", **{**env, "PAGERDUTY_API_TOKEN": "wrong"})
        assert run.code == 1
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "PAGERDUTY_API_TOKEN" in errors[0]

    def test_an_unknown_incident_exits_3(self, bot, env: dict[str, str]) -> None:
        """An incident PagerDuty does not know: exit 3 with its number."""
        run = bot("draft", "PD-1234", **env)
        assert run.code == 3
        assert "1234" in run.stderr

    @pytest.mark.parametrize("ref", ["PD-98x6; drop table incidents", "../../etc/passwd", "$(reboot)"])
    def test_a_malformed_incident_id_exits_2_before_any_request(
        self, bot, env: dict[str, str], fakes, ref: str
    ) -> None:  # noqa: ANN001
        """Injection-shaped ids are refused as usage errors; no server is asked."""
        run = bot("draft", ref, **env)
        assert run.code == 2
        assert not fakes[0].requests

    def test_missing_settings_are_named_together(self, bot) -> None:
        """No settings: one message naming every missing one, exit 2."""
        run = bot("draft", "PD-9876")
        assert run.code == 2
        assert "PAGERDUTY_API_TOKEN" in run.stderr and "SLACK_BOT_TOKEN" in run.stderr

    def test_malformed_settings_never_echo_a_value(self, bot, env: dict[str, str]) -> None:
        """A bad URL and a bad mapping are both reported, without printing any token."""
        run = bot("draft", "PD-9876", **{**env, "PAGERDUTY_API_URL": "not a url", "SERVICE_REPOS": "oops"})
        assert run.code == 2
        assert "PAGERDUTY_API_URL" in run.stderr and "SERVICE_REPOS" in run.stderr
        assert env["PAGERDUTY_API_TOKEN"] not in run.stderr and BOT_TOKEN not in run.stderr
