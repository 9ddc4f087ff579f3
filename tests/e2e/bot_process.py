"""`python -m bot` as a real child process: a clean environment, stderr to a file, readiness seen on the
Socket Mode fake, and a stop by SIGTERM (SIGKILL past a deadline)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import Settings
from tests.fakes.socket_mode import SocketModeFake

ROOT = Path(__file__).resolve().parents[2]
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def clean_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment without any setting of ours (pydantic-settings matches names in any case)
    or proxy (the Socket Mode client tunnels through one and ignores NO_PROXY), plus `settings`.
    PYTHONFAULTHANDLER lets `dump_threads` show where a stuck process is."""
    ours = {name.upper() for name in Settings.model_fields} | set(_PROXIES)
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1", **settings}


@dataclass(frozen=True)
class Exited:
    code: int
    stderr: str


def run_to_exit(
    *, env: Mapping[str, str], cwd: Path, args: tuple[str, ...] = (), timeout: float = 60
) -> Exited:
    """Run `python -m bot [args]` that is expected to give up at start-up; its exit code and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Exited(done.returncode, done.stderr)


class BotProcess:
    """One `python -m bot [run]` process connected to `socket`."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        cwd: Path,
        socket: SocketModeFake,
        name: str = "bot",
        args: tuple[str, ...] = (),
    ) -> None:
        self._env = dict(env)
        self._cwd = cwd
        self._socket = socket
        self._args = args
        self.stderr_path = cwd / f"{name}.stderr.log"
        self.connection: int | None = None  # the Socket Mode connection this process opened
        self.started_in = 0.0  # seconds from spawn to a live Socket Mode connection
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> BotProcess:
        """Spawn the process and wait until it holds a live Socket Mode connection of its own."""
        before = {c.number for c in self._socket.connections}
        begun = time.monotonic()
        self.spawn()
        deadline = begun + timeout
        while True:
            mine = [c for c in self._socket.live_connections() if c.number not in before]
            if mine:
                self.connection = mine[0].number
                self.started_in = time.monotonic() - begun
                return self
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not connect within {timeout}s:\n{self.stderr}")
            time.sleep(0.02)

    def spawn(self) -> None:
        """Start the process without waiting for it (see `start`, `start_together`)."""
        with self.stderr_path.open("wb") as stderr:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bot", *self._args],
                cwd=self._cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def _check_alive(self) -> None:
        assert self._process is not None, "not started"
        if self._process.poll() is not None:
            raise AssertionError(f"the bot exited with {self._process.returncode}:\n{self.stderr}")

    def local_tcp_ports(self) -> set[int]:
        """The local ports of this process's TCP sockets (Linux /proc: its fds' socket inodes, looked up in
        its network namespace's table)."""
        inodes = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        ports = set()
        for table in ("tcp", "tcp6"):
            path = Path(f"/proc/{self.pid}/net/{table}")
            for line in path.read_text().splitlines()[1:] if path.exists() else ():
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, *, timeout: float = 15.0) -> int:
        """SIGTERM, as an orchestrator stops it; SIGKILL if it is still running after `timeout`."""
        assert self._process is not None, "not started"
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        return self._process.returncode

    def kill(self) -> int:
        """SIGKILL: the process dies mid-flight, as in a crash or an OOM kill."""
        assert self._process is not None, "not started"
        if self._process.poll() is None:
            self._process.kill()
        return self._process.wait(15)

    def dump_threads(self) -> None:
        """SIGABRT: faulthandler (PYTHONFAULTHANDLER) writes every thread's stack to stderr, then it dies."""
        assert self._process is not None, "not started"
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGABRT)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def reconnected(self, *, timeout: float = 30.0) -> int:
        """After Slack closed this process's connection (`drop()`, `disconnect()`): wait until the process
        holds a new live one, and deliver there from now on. No other process may connect meanwhile."""
        assert self.connection is not None, "not started"
        old = self.connection
        deadline = time.monotonic() + timeout
        while True:
            newer = [c.number for c in self._socket.live_connections() if c.number > old]
            if newer:
                self.connection = newer[-1]
                return self.connection
            if not self.running():
                raise AssertionError(f"the bot exited while reconnecting:\n{self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no new connection after connection {old} within {timeout}s")
            time.sleep(0.02)

    def wait_for_disconnect(self, *, timeout: float = 10.0) -> None:
        """The Socket Mode fake saw this process's connection close."""
        deadline = time.monotonic() + timeout
        while any(c.number == self.connection for c in self._socket.live_connections()):
            if time.monotonic() > deadline:
                raise AssertionError(f"connection {self.connection} still open after {timeout}s")
            time.sleep(0.02)

    @property
    def stderr(self) -> str:
        return (
            self.stderr_path.read_text(encoding="utf-8", errors="replace")
            if self.stderr_path.exists()
            else ""
        )

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log records the process wrote; a line that is not one fails the test (a bare traceback)."""
        records = []
        for line in self.stderr.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"a stderr line that is not a JSON log record: {line!r}") from None
        return records


def start_together(bots: Sequence[BotProcess], *, socket: SocketModeFake, timeout: float = 60.0) -> None:
    """Spawn every process at the same moment, then wait until each holds a live Socket Mode connection of
    its own: a connection is a process's when its client port is one of that process's TCP ports."""
    before = {c.number for c in socket.connections}
    begun = time.monotonic()
    for bot in bots:
        bot.spawn()
    deadline = begun + timeout
    while True:
        waiting = [bot for bot in bots if bot.connection is None]
        if not waiting:
            return
        new = [c for c in socket.live_connections() if c.number not in before]
        for bot in waiting:
            bot._check_alive()
            ports = bot.local_tcp_ports()
            mine = [c for c in new if c.socket.remote_address[1] in ports]
            if mine:
                bot.connection = mine[0].number
                bot.started_in = time.monotonic() - begun
        if time.monotonic() > deadline:
            names = ", ".join(bot.stderr_path.name for bot in bots if bot.connection is None)
            raise AssertionError(f"not connected within {timeout}s: {names}")
        time.sleep(0.02)
