"""Run `python -m bot ...` as a real process, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no settings of ours, no proxies (the fakes are on 127.0.0.1)."""
    drop = ("SLACK_", "PAGERDUTY_", "GITHUB_", "CONFLUENCE_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env.update(extra)
    return env


def run_bot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def bot(tmp_path: Path):  # noqa: ANN201 - returns the runner
    def runner(*args: str, **env: str) -> Run:
        return run_bot(*args, env=clean_env(**env), cwd=tmp_path)

    return runner
