"""Runs playbooks inside the controller: gathers each run's facts, plans it, acts, checkpoints.

The planning is pure (`runs.plan_run`); this module does the I/O around it: it looks for a step's
outputs in its agent's workdir, reads `orch approve` / `orch step done` signals, evaluates gates
in a small thread pool (a `command` gate may run for minutes and must not stall the control
loop), and commits each run's checkpoint together with the prompts it queues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from reconciler.adapters.gates import evaluate_condition, evaluate_gate, missing_outputs
from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import RunSignal, StoredRun
from reconciler.api.history import Event, EventType
from reconciler.api.manifest import PlaybookSpec, Step
from reconciler.api.status import set_condition
from reconciler.controller.isolation import (
    ErrorBoundary,
    describe_error,
    error_condition,
    recovered_condition,
)
from reconciler.core.agent_plan import DesiredAgent
from reconciler.core.runs import (
    GateOutcome,
    RunFacts,
    RunRecord,
    StepPhase,
    StepStatus,
    plan_run,
)
from reconciler.core.steps import GateResult

log = logging.getLogger(__name__)

#: Phases in which a step holds its agent: an agent works on one step at a time.
HOLDING = (StepPhase.WORKING, StepPhase.CHECKING, StepPhase.AWAITING_APPROVAL)

JobKey = tuple[str, int, int, str]


class PlaybookRunner:
    """Advances every playbook run of one installation, one small step per pass."""

    def __init__(self, store: Store, wake: Callable[[], None], boundary: ErrorBoundary) -> None:
        self.store = store
        self._wake = wake
        self._boundary = boundary
        self._names: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gates")
        self._jobs: dict[JobKey, Future[GateOutcome]] = {}

    def close(self) -> None:
        """Stop evaluating gates (a running command gate finishes or times out on its own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def keys(self) -> set[str]:
        """The boundary keys (`run/NAME`) of the runs seen last pass."""
        return {f"run/{name}" for name in self._names}

    def run_pass(
        self, agents: Mapping[str, DesiredAgent], now: float, held: Collection[str] = ()
    ) -> None:
        """Plan and checkpoint every unfinished run, each inside its own error boundary; a run
        whose current step's agent is in `held` (its spec or record unreadable) waits."""
        runs, unreadable = self.store.runs_checked(unfinished_only=True)
        self._names = {run.name for run in runs} | set(unreadable)
        for name, why in unreadable.items():
            self._failed(name, None, why, None, now)
        signals = self.store.signals()
        busy = {
            step.agent: run.name
            for run in runs
            if not run.cancelled and (step := run.record.current) and step.phase in HOLDING
        }
        for run in runs:
            key = f"run/{run.name}"
            if not self._boundary.due(key):
                continue
            try:
                if run.cancelled:
                    self._cancel(run)
                else:
                    self._advance(run, agents, signals, busy, now, held)
            except Exception as err:  # noqa: BLE001 - the run's error boundary
                self._failed(run.name, run, describe_error(err), err, now)
                continue
            if self._boundary.succeeded(key) and not run.cancelled:
                current = self.store.run(run.name)
                if current is not None:
                    conditions = set_condition(current.record.conditions, recovered_condition(now))
                    self.store.save_run(replace(current.record, conditions=conditions), [], [], [])

    def _failed(
        self, name: str, run: StoredRun | None, message: str, error: Exception | None, now: float
    ) -> None:
        """A run that could not be handled: backed off, its ReconcileError condition set."""
        key = f"run/{name}"
        if not self._boundary.due(key):
            return
        news = self._boundary.failed(key, message, error)
        events = [Event(key, EventType.WARNING, "ReconcileError", message)] if news else []
        if run is not None:
            conditions = set_condition(run.record.conditions, error_condition(message, now))
            if conditions != run.record.conditions or events:
                self.store.save_run(replace(run.record, conditions=conditions), [], [], events)
        elif events:
            self.store.record_event(events[0])

    def _advance(
        self,
        run: StoredRun,
        agents: Mapping[str, DesiredAgent],
        signals: list[RunSignal],
        busy: dict[str, str],
        now: float,
        held: Collection[str],
    ) -> None:
        spec = PlaybookSpec.model_validate(run.spec)
        record = run.record
        index = record.step if record.current else 0
        step = spec.steps[index]
        if step.agent in held:
            return  # its agent cannot be read this pass: neither fail nor prompt
        current = record.current
        mine = [s for s in signals if s.run == run.name]
        done, approvals, stale = sort_signals(mine, current)
        desired = agents.get(step.agent)
        holder = busy.get(step.agent, run.name)
        facts = RunFacts(
            agent_exists=desired is not None,
            agent_busy_with="" if holder == run.name else holder,
            outputs_ready=desired is not None and self._outputs_ready(record, step, desired),
            done_signal=bool(done),
            approved=bool(approvals),
            when=self._finished(run.name, index, "when"),
            gates=self._finished(run.name, index, "gates"),
        )
        plan = plan_run(record, spec, facts, now)
        if plan.evaluate and desired is not None:
            self._submit(
                run.name,
                plan.record,
                spec.steps[plan.record.step],
                plan.evaluate,
                Path(desired.agent.spec.workdir),
            )
        consumed = [s.id for s in done] if plan.consume_done else []
        consumed += [s.id for s in approvals] if plan.consume_approval else []
        consumed += [s.id for s in stale]
        events = [*plan.events, *(_dropped(run.name, s) for s in stale)]
        if plan.record != record or plan.prompts or consumed or events:
            prompts = [
                (p.agent, _uid(agents, p.agent), f"run/{run.name}", p.text) for p in plan.prompts
            ]
            self.store.save_run(plan.record, prompts, consumed, events)
        current = plan.record.current
        if current is not None and current.phase in HOLDING:
            busy[current.agent] = run.name
        elif busy.get(step.agent) == run.name:
            del busy[step.agent]

    def _outputs_ready(self, record: RunRecord, step: Step, desired: DesiredAgent) -> bool:
        """Every output exists and was written during this attempt."""
        current = record.current
        if current is None or current.phase is not StepPhase.WORKING or not step.outputs:
            return False
        workdir = Path(desired.agent.spec.workdir)
        return not missing_outputs(step.outputs, workdir, since=current.started_at or 0.0)

    def _finished(self, run: str, index: int, kind: str) -> GateOutcome | None:
        """A finished evaluation for this run's step, taken out of the pool's results."""
        for key in [k for k in self._jobs if k[0] == run and k[1] == index and k[3] == kind]:
            job = self._jobs[key]
            if job.done():
                del self._jobs[key]
                return job.result()
        return None

    def _submit(self, run: str, record: RunRecord, step: Step, kind: str, workdir: Path) -> None:
        current = record.steps[record.step]
        key = (run, record.step, current.attempt, kind)
        if key in self._jobs:
            return
        job = self._pool.submit(
            _evaluate, step, kind, workdir, current.approved, record.step, current.attempt
        )
        job.add_done_callback(lambda _: self._wake())
        self._jobs[key] = job

    def _cancel(self, run: StoredRun) -> None:
        for key in [k for k in self._jobs if k[0] == run.name]:
            self._jobs.pop(key).cancel()
        self.store.forget_run(
            run.name, Event(f"run/{run.name}", EventType.NORMAL, "Cancelled", "run deleted")
        )


def sort_signals(
    signals: list[RunSignal], current: StepStatus | None
) -> tuple[list[RunSignal], list[RunSignal], list[RunSignal]]:
    """A run's signals as (done, approvals, stale). A signal counts only for the step and attempt
    it names, and only in the phase it is about (done while Working, approve while awaiting
    approval); one about an earlier step or attempt is stale and is dropped, never carried into
    the next step or attempt. One about this attempt that came early waits for its phase."""
    done: list[RunSignal] = []
    approvals: list[RunSignal] = []
    stale: list[RunSignal] = []
    for signal in signals:
        if current is None or (signal.step, signal.attempt) != (current.name, current.attempt):
            stale.append(signal)
        elif signal.kind == "done" and current.phase is StepPhase.WORKING:
            done.append(signal)
        elif signal.kind == "approve" and current.phase is StepPhase.AWAITING_APPROVAL:
            approvals.append(signal)
        elif signal.kind == "done" and current.phase is not StepPhase.PENDING:
            stale.append(signal)  # said again after the step left Working
    return done, approvals, stale


def _dropped(run: str, signal: RunSignal) -> Event:
    what = "step done" if signal.kind == "done" else "approval"
    return Event(
        f"run/{run}",
        EventType.NORMAL,
        "SignalDropped",
        f"{what} for step {signal.step} attempt {signal.attempt} dropped: that attempt is over",
    )


def _uid(agents: Mapping[str, DesiredAgent], name: str) -> str:
    desired = agents.get(name)
    return desired.uid if desired is not None else ""


def _evaluate(
    step: Step, kind: str, workdir: Path, approved: bool, index: int, attempt: int
) -> GateOutcome:
    """Evaluate a step's `when` or its gates in order, stopping at the first failure."""
    results: list[GateResult] = []
    if kind == "when" and step.when is not None:
        results.append(evaluate_condition(step.when, workdir))
    else:
        for gate in step.gates:
            result = evaluate_gate(gate, workdir, approved)
            results.append(result)
            if not result.passed and not result.pending:
                break
    return GateOutcome(index, attempt, tuple(results))
