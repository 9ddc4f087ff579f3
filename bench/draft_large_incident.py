"""Speed and memory of a draft of a large incident, through the real clients over local HTTP.

    .venv/bin/python -m bench.draft_large_incident [--messages 10000] [--log-entries 5000] [--latency 0.2]

Serves a generated incident (PagerDuty log entries, a busy Slack channel with threads, the sample's GitHub repos)
from the local fakes, runs `python -m bot draft` as a real process, and prints its wall time and peak memory
(max RSS), plus the wall time of each source alone, so "close to the slowest source, not the sum" can be read
off. Targets (2-core machine, 0.2 s per request): a 10,000-message, 5,000-log-entry incident drafts in under
30 s within 500 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.fakes.github import DEFAULT_TOKEN, GitHubFake
from tests.fakes.http import Fault
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack_web import BOT_TOKEN, SlackWebFake
from tests.fakes.tls import write_ca_bundle

ROOT = Path(__file__).resolve().parents[1]


def run_draft(env: dict[str, str], ref: str, channel: str) -> tuple[float, float, int]:
    """(wall seconds, child max RSS in MB, exit code) of one `python -m bot draft`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "draft",
            ref,
            "--channel",
            channel,
            "--format",
            "json",
            "--out",
            os.devnull,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    if done.returncode not in (0, 4):
        print(done.stderr, file=sys.stderr)
    return wall, peak, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--log-entries", type=int, default=5_000)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="added to every request of every source (s)"
    )
    args = parser.parse_args()

    start = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
    with (
        PagerDutyFake() as pd,
        GitHubFake() as gh,
        SlackWebFake() as slack,
        tempfile.TemporaryDirectory() as tmp,
    ):
        pd.add_generated_incident(77_001, log_entries=args.log_entries, created_at=start)
        slack.generate_channel(
            channel_id="C0BIG0001",
            name="inc-77001-big",
            count=args.messages,
            start=start,
            every_seconds=max(1, 6 * 3600 // max(args.messages, 1)),
        )
        base_env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
        env = {
            **base_env,
            "PYTHONPATH": str(ROOT),
            "PAGERDUTY_API_TOKEN": pd.token,
            "PAGERDUTY_API_URL": pd.url,
            "GITHUB_TOKEN": DEFAULT_TOKEN,
            "GITHUB_API_URL": gh.url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "CA_BUNDLE": str(write_ca_bundle(Path(tmp))),
            "SERVICE_REPOS": "customer-api=acme/customer-api",
            "HISTORY_TAIL_MINUTES": str(24 * 60),
        }
        rows = []
        for label, only in (
            ("all sources", None),
            ("pagerduty only", "pd"),
            ("github only", "gh"),
            ("slack only", "slack"),
        ):
            for fake in (pd, gh, slack):
                fake.faults.clear()
                fake.faults.add(Fault("latency", times=None, seconds=args.latency))
            if only:  # the others fail at once, so the draft waits for this source alone
                for name, fake in (("pd", pd), ("gh", gh), ("slack", slack)):
                    if name != only and name != "pd":
                        fake.faults.clear()
                        fake.faults.add(Fault("5xx", times=None, status=400))
            rows.append((label, *run_draft(env, "77001", "C0BIG0001")))
        print(
            f"{args.log_entries} log entries, {args.messages} messages, {args.latency}s latency per request\n"
        )
        print(f"{'run':<16} {'wall (s)':>9} {'max RSS (MB)':>13} {'exit':>5}")
        for label, wall, rss, code in rows:
            print(f"{label:<16} {wall:>9.2f} {rss:>13.0f} {code:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
