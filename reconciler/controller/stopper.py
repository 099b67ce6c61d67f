"""Ends launches off the loop: SIGTERM now, SIGKILL after a grace period, in a worker thread.

Stopping a launch can take seconds (a process that ignores SIGTERM, a tree that forks while it
dies); supervisord's `kill()` never waits either. The pass only asks for a stop and goes on;
until the launch is gone its agent is in the Stopping phase, with the deadline at which what is
left gets SIGKILL, and the loop is woken when the stop finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.adapters.processes import stop_launch

log = logging.getLogger(__name__)

#: How long a launch's processes get between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Stopping:
    """A launch being stopped: SIGKILL for what is left at `kill_at` (epoch seconds)."""

    launch_id: str
    kill_at: float
    job: Future[None]


class Stopper:
    """Stops launches in a small thread pool; says which agents are still Stopping."""

    def __init__(self, wake: Callable[[], None], grace: float = STOP_GRACE_SECONDS) -> None:
        self._wake = wake
        self._grace = grace
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stopper")
        self._lock = threading.Lock()
        self._stopping: dict[str, Stopping] = {}  # by launch id

    def stop(self, agent: str, launch_id: str) -> None:
        """Begin ending every process of `launch_id` (of `agent`); returns at once."""
        if not launch_id:
            return
        with self._lock:
            if launch_id in self._stopping:
                return
            job = self._pool.submit(self._stop, launch_id)
            self._stopping[launch_id] = Stopping(launch_id, time.time() + self._grace, job)
        job.add_done_callback(lambda _: self._wake())
        log.info("stopping launch %s of %s", launch_id, agent)

    def _stop(self, launch_id: str) -> None:
        try:
            stop_launch(launch_id, (), grace=self._grace)
        except Exception:  # a worker must not die silently: the next stop of it tries again
            log.exception("stopping launch %s failed", launch_id)
        finally:
            with self._lock:
                self._stopping.pop(launch_id, None)

    def kill_at(self, launch_id: str) -> float | None:
        """When `launch_id` gets SIGKILL if it is still being stopped; None once it is gone."""
        with self._lock:
            stopping = self._stopping.get(launch_id)
        return stopping.kill_at if stopping else None

    def close(self) -> None:
        """Finish the stops under way (bounded by their grace), take no more."""
        self._pool.shutdown(wait=True, cancel_futures=False)
