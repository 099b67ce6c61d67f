"""Waiting for the controller to reach a state, with a deadline: `--wait`s and start-up."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    done: Callable[[], bool],
    limit: float,
    failure: Callable[[], Exception],
    interval: float = 0.1,
) -> None:
    """Poll `done` until it holds; at the limit raise `failure()`, built then so it can say why."""
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise failure()
        time.sleep(interval)
