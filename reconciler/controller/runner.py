"""Runs playbooks inside the controller: gathers each run's facts, plans it, acts, checkpoints.

The planning is pure (`runs.plan_run`); this module does the I/O around it: it looks for a step's
outputs in its agent's workdir, reads `orch approve` / `orch step done` signals, evaluates gates
in a small thread pool (a `command` gate may run for minutes and must not stall the control
loop), and commits each run's checkpoint together with the prompts it queues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from reconciler.adapters.gates import evaluate_condition, evaluate_gate, missing_outputs
from reconciler.adapters.store import RunSignal, Store, StoredRun
from reconciler.api.manifest import PlaybookSpec, Step
from reconciler.api.status import Event, EventType
from reconciler.core.agent_plan import DesiredAgent
from reconciler.core.runs import GateOutcome, RunFacts, RunRecord, StepPhase, plan_run
from reconciler.core.steps import GateResult

log = logging.getLogger(__name__)

#: Phases in which a step holds its agent: an agent works on one step at a time.
HOLDING = (StepPhase.WORKING, StepPhase.CHECKING, StepPhase.AWAITING_APPROVAL)

JobKey = tuple[str, int, int, str]


class PlaybookRunner:
    """Advances every playbook run of one installation, one small step per pass."""

    def __init__(self, store: Store, wake: Callable[[], None]) -> None:
        self.store = store
        self._wake = wake
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gates")
        self._jobs: dict[JobKey, Future[GateOutcome]] = {}

    def close(self) -> None:
        """Stop evaluating gates (a running command gate finishes or times out on its own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_pass(self, agents: Mapping[str, DesiredAgent], now: float) -> None:
        """Plan and checkpoint every unfinished run."""
        runs = self.store.runs(unfinished_only=True)
        signals = self.store.signals()
        busy = {
            step.agent: run.name
            for run in runs
            if not run.cancelled and (step := run.record.current) and step.phase in HOLDING
        }
        for run in runs:
            if run.cancelled:
                self._cancel(run)
            else:
                self._advance(run, agents, signals, busy, now)

    def _advance(
        self,
        run: StoredRun,
        agents: Mapping[str, DesiredAgent],
        signals: list[RunSignal],
        busy: dict[str, str],
        now: float,
    ) -> None:
        spec = PlaybookSpec.model_validate(run.spec)
        record = run.record
        index = record.step if record.current else 0
        step = spec.steps[index]
        mine = [s for s in signals if s.run == run.name]
        done = [s for s in mine if s.kind == "done"]
        approvals = [s for s in mine if s.kind == "approve" and s.step in ("", step.name)]
        desired = agents.get(step.agent)
        holder = busy.get(step.agent, run.name)
        facts = RunFacts(
            agent_exists=desired is not None,
            agent_busy_with="" if holder == run.name else holder,
            outputs_ready=desired is not None and self._outputs_ready(record, step, desired),
            done_signal=bool(done)
            and record.current is not None
            and record.current.phase is StepPhase.WORKING,
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
        if plan.record != record or plan.prompts or consumed or plan.events:
            prompts = [(p.agent, f"run/{run.name}", p.text) for p in plan.prompts]
            self.store.save_run(plan.record, prompts, consumed, plan.events)
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
