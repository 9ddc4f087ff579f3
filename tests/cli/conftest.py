"""Run `python -m bot ...` as a real process, as an operator would."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.bot_process import clean_env


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run_bot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def bot(tmp_path: Path):  # noqa: ANN201 - returns the runner
    def runner(*args: str, **env: str) -> Run:
        return run_bot(*args, env=clean_env(env), cwd=tmp_path)

    return runner
