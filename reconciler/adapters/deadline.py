"""Waiting for a condition with a deadline: the CLI's `--wait`s, controller start-up, tests, bench.

The one polling loop of the project. Nothing synchronises with a bare sleep: it waits until a
predicate holds, and at the deadline it raises the caller's own error, built then so it can say why.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


class DeadlinePassed(RuntimeError):
    """A condition did not hold before its deadline (when the caller gave no error of its own)."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    *,
    interval: float = 0.005,
    failure: Callable[[], Exception] | None = None,
    what: str = "",
) -> T:
    """Poll `predicate` until it returns something truthy and return that; raise at the deadline."""
    deadline = time.monotonic() + timeout
    result = predicate()
    while not result:
        if time.monotonic() > deadline:
            if failure is not None:
                raise failure()
            raise DeadlinePassed(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)
        result = predicate()
    return result
