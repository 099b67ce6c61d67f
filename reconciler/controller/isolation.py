"""Per-object error boundaries: one agent or run that cannot be handled never stops the others.

Each agent and each run is planned and acted on inside its own boundary. An error there (a row
another orch version wrote, a spec that no longer validates, a bug) is recorded against that
object only: it backs off (1 s, doubling to a minute), its `ReconcileError` condition says why,
and controller.log gets the traceback — once per distinct error, and again at most once a
minute while it persists, so a broken object cannot flood the log at every pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.api.status import Condition, ConditionStatus

log = logging.getLogger(__name__)

#: The first retry delay after a failure; it doubles with each failure in a row.
FIRST_BACKOFF_SECONDS = 1.0
#: The longest a failing object waits between tries.
MAX_BACKOFF_SECONDS = 60.0
#: While the same error persists, its traceback is logged again at most this often.
LOG_EVERY_SECONDS = 60.0

#: The condition type an object's failures are published under.
RECONCILE_ERROR = "ReconcileError"


@dataclass
class Failure:
    """An object's failures in a row: how many, the last error, and when to try again."""

    count: int
    message: str
    retry_at: float
    logged_at: float


class ErrorBoundary:
    """Failures by object (`agent/NAME`, `run/NAME`), with backoff and a throttled log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, Failure] = {}

    def due(self, key: str) -> bool:
        """Whether `key` may be handled now (it is not failing, or its backoff is over)."""
        failure = self._failures.get(key)
        return failure is None or self._clock() >= failure.retry_at

    def failed(self, key: str, message: str, error: BaseException | None = None) -> bool:
        """Note a failure of `key`; log it (with `error`'s traceback) unless the same message was
        logged within LOG_EVERY_SECONDS. Returns whether this failure is news (a new message)."""
        now = self._clock()
        old = self._failures.get(key)
        count = old.count + 1 if old else 1
        backoff = min(FIRST_BACKOFF_SECONDS * 2 ** (count - 1), MAX_BACKOFF_SECONDS)
        news = old is None or old.message != message
        logged_at = old.logged_at if old else float("-inf")
        if news or now - logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "%s: %s (failure %d in a row; next try in %.0fs)",
                key,
                message,
                count,
                backoff,
                exc_info=error if error is not None and not isinstance(error, str) else None,
            )
            logged_at = now
        self._failures[key] = Failure(count, message, now + backoff, logged_at)
        return news

    def retry_now(self, key: str) -> None:
        """End `key`'s backoff (its spec changed: the change may be the fix)."""
        failure = self._failures.get(key)
        if failure is not None:
            failure.retry_at = self._clock()

    def succeeded(self, key: str) -> bool:
        """`key` was handled without error; returns whether it was failing before."""
        return self._failures.pop(key, None) is not None

    def failing(self, key: str) -> Failure | None:
        """The current failure of `key`, if it is failing."""
        return self._failures.get(key)

    def next_retry(self) -> float | None:
        """Seconds until the earliest backoff ends, if anything is failing."""
        if not self._failures:
            return None
        return max(min(f.retry_at for f in self._failures.values()) - self._clock(), 0.0)

    def forget(self, keep: set[str]) -> None:
        """Drop the failures of objects that no longer exist."""
        for key in set(self._failures) - keep:
            del self._failures[key]


def error_condition(message: str, now: float) -> Condition:
    """The `ReconcileError` condition of a failing object."""
    return Condition(RECONCILE_ERROR, ConditionStatus.TRUE, "ReconcileError", message, now)


def recovered_condition(now: float) -> Condition:
    """The `ReconcileError` condition of an object handled again without error."""
    return Condition(
        RECONCILE_ERROR, ConditionStatus.FALSE, "Reconciled", "handled without error", now
    )


def describe_error(error: BaseException) -> str:
    """One line for an error: its type and its text with the lines joined (at most 300 chars)."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
