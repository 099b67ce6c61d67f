"""Waiting on a condition with a deadline: the only way the benchmarks synchronise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(RuntimeError):
    """A condition did not hold before its deadline."""


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy and return that; raise at the deadline."""
    deadline = time.monotonic() + timeout
    result = predicate()
    while not result:
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)
        result = predicate()
    return result
