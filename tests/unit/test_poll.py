"""wait_for: returns once the condition holds, raises the caller's error at the deadline."""

from __future__ import annotations

import pytest

from reconciler.adapters.deadline import wait_for
from reconciler.api.errors import Unavailable


def test_returns_when_the_condition_holds() -> None:
    calls = iter([False, False, True])
    wait_for(lambda: next(calls), 5.0, lambda: Unavailable("never"), interval=0.0)


def test_raises_the_failure_built_at_the_deadline() -> None:
    with pytest.raises(Unavailable, match="still down"):
        wait_for(lambda: False, 0.0, lambda: Unavailable("still down"), interval=0.0)
