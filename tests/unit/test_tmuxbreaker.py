"""The tmux circuit breaker, with an injected clock: one event when tmux stops answering, probes
that back off, one event when it answers again."""

from __future__ import annotations

from reconciler.adapters.tmux import TmuxUnavailable
from reconciler.api.history import EventType
from reconciler.controller.tmuxbreaker import TmuxBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_tmux_that_does_not_answer_opens_once_and_is_probed_less_and_less_often() -> None:
    clock = Clock()
    breaker = TmuxBreaker("sock", clock)
    assert breaker.allows() and not breaker.open and breaker.answered() is None
    error = TmuxUnavailable("tmux (socket sock) did not answer within 3s")
    opened = breaker.failed(error)
    assert opened is not None and opened.type is EventType.WARNING
    assert opened.reason == "TmuxUnavailable" and "did not answer" in opened.message
    waits: list[float] = []
    for _ in range(9):
        assert breaker.open and not breaker.allows()
        waits.append(breaker.wait())
        clock.now += breaker.wait()
        assert breaker.allows()
        assert breaker.failed(error) is None, "one event, not one per try"
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_tmux_answering_again_closes_it_with_one_event() -> None:
    clock = Clock()
    breaker = TmuxBreaker("sock", clock)
    breaker.failed(TmuxUnavailable("lost server"))
    clock.now += 1
    breaker.failed(TmuxUnavailable("lost server"))
    clock.now += 2
    closed = breaker.answered()
    assert closed is not None and closed.type is EventType.NORMAL
    assert closed.reason == "TmuxAvailable" and "after 3s (2 failed tries)" in closed.message
    assert not breaker.open and breaker.allows() and breaker.wait() == 0
    assert breaker.answered() is None
    assert breaker.failed(TmuxUnavailable("lost server")) is not None, "a new outage is news"
