"""The notification worker: reads the events the controller writes and sends the notices that
Notifiers ask for, in its own threads, so a slow or dead endpoint never slows a pass.

It starts from the newest event when the controller starts (what happened before was told then,
or by a controller that is gone). A delivery is retried with backoff; one that still fails is a
Warning event `NotificationFailed` on the notifier, with a reason that holds no secret.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import ValidationError

from reconciler.adapters.notify import DeliveryFailed, send
from reconciler.adapters.store import Store
from reconciler.api.history import Event, EventType, StoredEvent
from reconciler.api.manifest import Notifier
from reconciler.api.status import AgentState
from reconciler.core.notify import RETRY_DELAYS, Notice, Throttle, notice_reason, wants

log = logging.getLogger(__name__)

#: How often the worker looks for new events when nobody wakes it: a safety net only. The loop
#: wakes it after every pass that saw the store change (its own transitions, and what other
#: processes recorded, seen by the next pass within a second), so a notice is out within 2 s.
POLL_SECONDS = 10.0
#: Events read per look; a burst larger than this is told from its newest events.
BATCH = 500
#: Deliveries in flight at once.
SENDERS = 4


class NotificationWorker:
    """Events in, notices out, off the control loop."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._failures: queue.Queue[Event] = queue.Queue()
        self._throttle = Throttle()
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="orch-notify")
        self._thread = threading.Thread(target=self._serve, name="orch-notifications", daemon=True)

    def start(self) -> None:
        """Begin watching the event log."""
        self._thread.start()

    def wake(self) -> None:
        """New events may be there: look now (thread-safe)."""
        self._wake.set()

    def close(self) -> None:
        """Stop watching; deliveries still retrying are abandoned."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        store = Store(self._state_dir)
        newest = store.events(limit=1)
        last = newest[0].id if newest else 0
        seen: int | None = None  # the store's data version at the last look
        try:
            while not self._stopping.is_set():
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                try:
                    # Events are only ever new after another connection committed: an idle
                    # installation costs one pragma per look, not a query.
                    version = store.data_version()
                    if version != seen:
                        seen = version
                        last = self._dispatch(store, last)
                    if self._record_failures(store):
                        seen = None  # its own events: look at them like any other
                except Exception:  # a bad pass of the worker is logged; the next one retries
                    log.exception("notification pass failed")
        finally:
            store.close()

    def _dispatch(self, store: Store, last: int) -> int:
        events = store.events(after_id=last, limit=BATCH)
        if not events:
            return last
        wanted = [(e, r) for e in events if (r := notice_reason(e.object, e.reason))]
        notifiers = _notifiers(store) if wanted else []
        for event, reason in wanted:
            notice, labels = _notice(store, event, reason)
            for notifier in notifiers:
                if wants(notifier, notice, labels) and self._throttle.allow(
                    notifier, notice, time.time()
                ):
                    self._pool.submit(self._deliver, notifier, notice)
        return events[-1].id

    def _deliver(self, notifier: Notifier, notice: Notice) -> None:
        """Send with retries; a final failure becomes a Warning event."""
        error = DeliveryFailed("not tried")
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            if self._stopping.wait(delay):
                return
            try:
                send(notifier, notice)
            except DeliveryFailed as err:
                error = err
                log.warning(
                    "notifier/%s: attempt %d for %s failed: %s",
                    notifier.metadata.name,
                    attempt,
                    notice.object,
                    err,
                )
                continue
            log.info(
                "notifier/%s: told %s %s", notifier.metadata.name, notice.reason, notice.object
            )
            return
        self._failures.put(
            Event(
                f"notifier/{notifier.metadata.name}",
                EventType.WARNING,
                "NotificationFailed",
                f"{notice.reason} of {notice.object} not delivered after "
                f"{len(RETRY_DELAYS) + 1} attempts: {error}",
            )
        )
        self.wake()

    def _record_failures(self, store: Store) -> bool:
        """Record the failed deliveries as events; whether there were any."""
        recorded = False
        while True:
            try:
                event = self._failures.get_nowait()
            except queue.Empty:
                return recorded
            store.record_event(event)
            recorded = True


def _notifiers(store: Store) -> list[Notifier]:
    found = []
    for stored in store.objects("Notifier"):
        try:
            found.append(Notifier.model_validate(stored.document))
        except ValidationError:
            log.warning("stored notifier/%s does not validate; skipped", stored.name)
    return found


def _notice(store: Store, event: StoredEvent, reason: str) -> tuple[Notice, dict[str, str]]:
    """The notice for an event, with the labels a selector is matched against."""
    kind, _, name = event.object.partition("/")
    state, prompt, deadline, agent = "", None, None, name
    if kind == "agent":
        record = store.agent_record(name)
        if record is not None:
            state = record.state.value
            if record.state is AgentState.AWAITING_HUMAN:
                prompt = record.handled_prompt or None
            if reason == "CoolingDown":
                deadline = record.cooldown_until
    else:
        run = store.run(name)
        if run is not None:
            state = run.record.state.value
            steps = run.record.steps  # a finished run is told by its last step's agent
            agent = steps[min(run.record.step, len(steps) - 1)].agent if steps else ""
    stored = store.object("Agent", agent) if agent else None
    labels = dict(stored.document["metadata"].get("labels") or {}) if stored else {}
    notice = Notice(reason, event.object, state, event.message, event.time, prompt, deadline)
    return notice, labels
