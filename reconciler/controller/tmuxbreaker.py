"""A circuit breaker on tmux: a server that does not answer is not hammered, and agents whose
panes it cannot show are not taken for dead.

When a pass fails because tmux does not answer (a wedged or stopped server, a lost socket), the
controller plans nothing more until a probe succeeds: an agent tmux cannot show may be alive,
so nothing is restarted. Probes (the next pass) come after a backoff of 1 s doubling to a
minute (the per-object `ErrorBoundary` under one key), each bounded by the adapter's timeout.
One Warning event (`TmuxUnavailable`) says when tmux stopped answering, one Normal event
(`TmuxAvailable`) when it answers again; controller.log says it once a minute meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from reconciler.api.history import Event, EventType
from reconciler.controller.isolation import ErrorBoundary, describe_error

log = logging.getLogger(__name__)

#: The key of tmux's failures in the boundary, and the object its events are recorded on.
KEY = "controller"


class TmuxBreaker:
    """Open while tmux does not answer; one probe per backoff; events when it opens and closes."""

    def __init__(self, socket: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.socket = socket
        self._clock = clock
        self._boundary = ErrorBoundary(clock)
        self._opened_at: float | None = None
        self._probes = 0

    @property
    def open(self) -> bool:
        """Whether tmux is known not to answer (until a probe says otherwise)."""
        return self._opened_at is not None

    def allows(self) -> bool:
        """Whether tmux may be called now: it answers, or the next probe is due."""
        return self._boundary.due(KEY)

    def wait(self) -> float:
        """Seconds until the next probe (0 when tmux answers)."""
        return self._boundary.next_retry() or 0.0

    def failed(self, error: BaseException) -> Event | None:
        """tmux did not answer a pass; the Warning event when this opens the breaker."""
        self._probes += 1
        opening = self._opened_at is None
        if opening:
            self._opened_at = self._clock()
        self._boundary.failed(KEY, f"tmux does not answer: {describe_error(error)}")
        log.info(
            "tmux still does not answer (try %d); next try in %.0fs", self._probes, self.wait()
        )
        if not opening:
            return None
        return Event(
            KEY,
            EventType.WARNING,
            "TmuxUnavailable",
            f"tmux (socket {self.socket}) does not answer ({describe_error(error)}); "
            f"nothing is planned or restarted until it does; trying again in "
            f"{self.wait():.0f}s, then less often",
        )

    def answered(self) -> Event | None:
        """tmux answered a pass; the Normal event when this closes the breaker."""
        self._boundary.succeeded(KEY)
        if self._opened_at is None:
            return None
        down = self._clock() - self._opened_at
        probes, self._opened_at, self._probes = self._probes, None, 0
        return Event(
            KEY,
            EventType.NORMAL,
            "TmuxAvailable",
            f"tmux (socket {self.socket}) answers again after {down:.0f}s "
            f"({probes} failed tries); supervising again",
        )
