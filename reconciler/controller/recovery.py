"""Settling the intents a killed controller left open, from evidence, before the first pass.

An intent is written (committed) right before a side effect and settled in the same transaction
as the record that rests on it. One still open at start-up means the controller died between the
two: the side effect may or may not have happened. What decides:

- a launch happened when the agent's pane carries that launch's id (in its start command);
- a stop happened when the launch's session and processes are gone;
- forgetting a record can always be finished;
- keys, pastes and Enters have no intent: delivery writes them ahead itself (a message's phase,
  resolved from the pane log; a record's `keys_sent_at`), so they are resolved there, once.

A side effect that happened gets the record (and message progress) it was planned with, so the
restart counted, the nudge noted and the delivery step taken are not lost or repeated. One that
did not is settled as failed and the next pass plans it afresh from the unchanged record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from reconciler.adapters.processes import launch_processes
from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import Intent
from reconciler.api.history import Event, EventType
from reconciler.api.observation import PaneObservation
from reconciler.controller.passbatch import PassBatch

log = logging.getLogger(__name__)


def recover(store: Store, panes: Mapping[str, PaneObservation]) -> int:
    """Settle every open intent; how many there were."""
    intents = store.open_intents()
    if not intents:
        return 0
    batch = PassBatch()
    for intent in intents:
        outcome, why = _resolve(intent, panes)
        batch.settled[intent.id] = (outcome, why if outcome == "failed" else "")
        log.info("recovered intent %d of %s: %s (%s)", intent.id, intent.object, outcome, why)
        if outcome == "failed":
            continue
        name = intent.object.removeprefix("agent/")
        record = intent.record
        pane = panes.get(name)
        if record is not None and pane is not None and pane.launch_id == record.launch_id:
            record = replace(record, pid=pane.pid)
        batch.records[name] = record
        if intent.message is not None:
            batch.messages[intent.message.id] = intent.message
        batch.events.append(Event(intent.object, EventType.NORMAL, "Recovered", why))
    batch.commit(store)
    return len(intents)


def _resolve(intent: Intent, panes: Mapping[str, PaneObservation]) -> tuple[str, str]:
    """(done | failed, why) for one open intent."""
    name = intent.object.removeprefix("agent/")
    pane = panes.get(name)
    launch = next((a for a in intent.actions if a["kind"] == "Launch"), None)
    if launch is not None:
        if pane is not None and pane.launch_id == launch["launch_id"]:
            return "done", f"launch {launch['launch_id']} had happened before the controller died"
        seen = "no session" if pane is None else f"its session carries {pane.launch_id or 'none'}"
        return "failed", f"launch {launch['launch_id']} had not happened ({seen})"
    stop = next((a for a in intent.actions if a["kind"] == "Stop"), None)
    if stop is not None:
        session_gone = pane is None or (
            bool(stop["launch_id"]) and pane.launch_id != stop["launch_id"]
        )
        if session_gone and not (stop["launch_id"] and launch_processes(stop["launch_id"])):
            return "done", "the stop had happened before the controller died"
        return "failed", "the stop had not finished when the controller died"
    return "done", "finished after a controller restart"
