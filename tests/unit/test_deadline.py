"""wait_until: returns once the condition holds, raises the caller's error at the deadline."""

from __future__ import annotations

import pytest

from reconciler.adapters.deadline import DeadlinePassed, wait_until
from reconciler.api.errors import Unavailable


def test_returns_when_the_condition_holds() -> None:
    calls = iter([0, 0, 7])
    assert wait_until(lambda: next(calls), 5.0, interval=0.0, failure=lambda: Unavailable("x")) == 7


def test_raises_the_failure_built_at_the_deadline() -> None:
    with pytest.raises(Unavailable, match="still down"):
        wait_until(lambda: False, 0.0, interval=0.0, failure=lambda: Unavailable("still down"))


def test_without_a_failure_it_raises_deadline_passed_naming_what() -> None:
    with pytest.raises(DeadlinePassed, match="the queue"):
        wait_until(lambda: False, 0.0, interval=0.0, what="the queue")
