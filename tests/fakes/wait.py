"""The one way tests wait: poll a condition until it holds or a deadline passes. Never an idle sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 30.0  # generous for a loaded 2-core machine: every wait returns as soon as it can


def poll(
    predicate: Callable[[], T], *, what: str = "condition", timeout: float = DEADLINE, interval: float = 0.01
) -> T:
    """Poll until `predicate()` is truthy and return it; AssertionError naming `what` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout}s")
        time.sleep(interval)
