"""Pure planning of playbook runs: which step is where, and what moves it on.

A run is a `transitions` machine (Pending, Running, AwaitingHuman, Succeeded, Failed) plus a
checkpoint per step. `plan_run` reads the run's record and the facts the runner gathered (outputs
on disk, `orch step done` and `orch approve` signals, gate results, whether the step's agent is
busy) and returns the new record, the prompts to queue, and the gate evaluations it needs. The
record and the queued prompt are committed in one transaction, so a prompt is never sent twice
and never lost, whatever moment the controller dies at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from reconciler.api.duration import format_duration
from reconciler.api.history import Event
from reconciler.api.status import Condition, RunState
from reconciler.core.lifecycle import next_run_state
from reconciler.core.record_builder import RecordBuilder
from reconciler.core.steps import GateResult, render_prompt, rework_message

if TYPE_CHECKING:  # only annotations: the CLI reads runs without building the manifest models
    from reconciler.api.manifest import PlaybookSpec, Step


class StepPhase(StrEnum):
    """Where one step of a run is."""

    PENDING = "Pending"
    WORKING = "Working"
    CHECKING = "Checking"
    AWAITING_APPROVAL = "AwaitingApproval"
    PASSED = "Passed"
    SKIPPED = "Skipped"
    FAILED = "Failed"


@dataclass(frozen=True)
class StepStatus:
    """The checkpoint of one step."""

    name: str
    agent: str
    phase: StepPhase = StepPhase.PENDING
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    prompted_attempt: int = 0
    approved: bool = False
    gates: tuple[GateResult, ...] = ()
    """Gate results of this attempt and of up to GATE_ATTEMPTS_KEPT earlier ones, each labelled
    with its attempt (`describe run` shows them per attempt)."""
    reason: str = ""

    @property
    def current_gates(self) -> tuple[GateResult, ...]:
        """The results of the attempt the step is at (none yet for a new attempt)."""
        return tuple(g for g in self.gates if g.attempt == self.attempt)


#: Earlier attempts whose gate results a step keeps beside the current attempt's (a bound: a step
#: may allow many attempts).
GATE_ATTEMPTS_KEPT = 5


def with_results(step: StepStatus, attempt: int, results: tuple[GateResult, ...]) -> StepStatus:
    """`step` with `results` as attempt `attempt`'s, replacing that attempt's earlier ones (an
    approval re-checks the same attempt) and dropping attempts older than the bound."""
    labelled = tuple(replace(r, attempt=attempt) for r in results)
    oldest = attempt - GATE_ATTEMPTS_KEPT
    kept = [g for g in step.gates if g.attempt != attempt and g.attempt >= oldest]
    return replace(step, gates=(*kept, *labelled))


@dataclass(frozen=True)
class RunRecord:
    """A run's checkpoint: its state, where it is, and every step's status."""

    name: str
    playbook: str
    params: dict[str, str]
    state: RunState
    since: float
    created: float
    step: int = 0
    reason: str = ""
    message: str = ""
    steps: tuple[StepStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()

    @classmethod
    def new(
        cls, name: str, playbook: str, spec: PlaybookSpec, params: dict[str, str], now: float
    ) -> RunRecord:
        """A run just created by `orch run`: Pending, every step Pending."""
        steps = tuple(StepStatus(s.name, s.agent) for s in spec.steps)
        return cls(
            name,
            playbook,
            params,
            RunState.PENDING,
            now,
            now,
            steps=steps,
            reason="Created",
            message="waiting for the controller",
        )

    @property
    def finished(self) -> bool:
        """Succeeded or Failed: nothing more will happen."""
        return self.state in (RunState.SUCCEEDED, RunState.FAILED)

    @property
    def current(self) -> StepStatus | None:
        """The step the run is at, if it is not finished."""
        return None if self.finished or self.step >= len(self.steps) else self.steps[self.step]


@dataclass(frozen=True)
class GateOutcome:
    """The result of evaluating a step's gates (or its `when`) for one attempt."""

    step: int
    attempt: int
    results: tuple[GateResult, ...]


@dataclass(frozen=True)
class RunFacts:
    """What the runner observed for a run's current step this pass."""

    agent_exists: bool = True
    agent_busy_with: str = ""
    outputs_ready: bool = False
    done_signal: bool = False
    approved: bool = False
    when: GateOutcome | None = None
    gates: GateOutcome | None = None


@dataclass(frozen=True)
class Prompt:
    """A message to queue for a step's agent, atomically with the run's checkpoint."""

    agent: str
    text: str


@dataclass(frozen=True)
class RunPlan:
    """What one pass decides for a run."""

    record: RunRecord
    prompts: tuple[Prompt, ...] = ()
    evaluate: str = ""  # "when" | "gates" | "": what the runner must evaluate now
    consume_done: bool = False
    consume_approval: bool = False
    events: tuple[Event, ...] = ()


class RunBuilder(RecordBuilder[RunRecord]):
    """Accumulates one run's plan: the record as it moves, plus prompts, events, and what the
    runner must evaluate or consume."""

    kind = "run"

    def __init__(self, record: RunRecord, now: float) -> None:
        super().__init__(record, now)
        self.prompts: list[Prompt] = []
        self.evaluate = ""
        self.consume_done = False
        self.consume_approval = False

    def next_state(self, trigger: str) -> RunState:
        """Where `trigger` leads the run, as the run machine says."""
        return next_run_state(self.record.state, trigger)

    def step(self, **changes: object) -> None:
        """Change fields of the current step's checkpoint."""
        index = self.record.step
        steps = list(self.record.steps)
        steps[index] = replace(steps[index], **changes)  # type: ignore[arg-type]
        self.update(steps=tuple(steps))

    def build(self) -> RunPlan:
        """The finished plan."""
        return RunPlan(
            self.record,
            tuple(self.prompts),
            self.evaluate,
            self.consume_done,
            self.consume_approval,
            tuple(self.events),
        )


def plan_run(record: RunRecord, spec: PlaybookSpec, facts: RunFacts, now: float) -> RunPlan:
    """Move a run on by what `facts` show; at most one step changes phase per pass."""
    b = RunBuilder(record, now)
    if record.finished:
        return b.build()
    if record.state is RunState.PENDING:
        # Pending -> Running: begin with the first step
        b.take("start", "Started", f"starting step {spec.steps[0].name}")
    current = b.record.current
    assert current is not None
    step = spec.steps[b.record.step]
    if not facts.agent_exists:
        b.step(phase=StepPhase.FAILED, finished_at=now, reason=f"agent {step.agent} not found")
        b.take(
            "fail",
            "AgentNotFound",
            f"step {step.name}: agent {step.agent} does not exist",
            warning=True,
        )
        return b.build()
    phase = current.phase
    if phase is StepPhase.PENDING:
        _plan_pending(b, spec, step, facts)
    elif phase is StepPhase.WORKING:
        _plan_working(b, spec, step, facts)
    elif phase is StepPhase.CHECKING:
        _plan_checking(b, spec, step, facts)
    elif phase is StepPhase.AWAITING_APPROVAL and facts.approved:
        # AwaitingHuman -> Running: a person approved; the gates are checked again
        b.consume_approval = True
        b.step(phase=StepPhase.CHECKING, approved=True)
        b.take("approved", "Approved", f"step {step.name} approved")
        b.evaluate = "gates"
    return b.build()


def _plan_pending(b: RunBuilder, spec: PlaybookSpec, step: Step, facts: RunFacts) -> None:
    """A step not begun: check its `when`, wait for its agent, then queue its prompt."""
    if step.when is not None:
        outcome = facts.when
        if outcome is None or outcome.step != b.record.step:
            b.evaluate = "when"
            return
        result = outcome.results[0]
        if not result.passed:
            b.step(
                phase=StepPhase.SKIPPED,
                finished_at=b.now,
                gates=outcome.results,  # attempt 0: checked before the first attempt
                reason=f"when {result.name} is false: {result.output}",
            )
            b.event("StepSkipped", f"step {step.name} skipped: when {result.name} is false")
            _advance(b, spec)
            return
    if facts.agent_busy_with:
        b.update(
            message=f"step {step.name} waits for agent {step.agent} "
            f"(busy with {facts.agent_busy_with})",
        )
        return
    _prompt(b, step, attempt=1, text=step_prompt(step, b.record))
    b.event("StepStarted", f"step {step.name} sent to agent {step.agent}")


def _plan_working(b: RunBuilder, spec: PlaybookSpec, step: Step, facts: RunFacts) -> None:
    """A step handed out: done when its outputs appear or the agent says so; bounded in time."""
    current = b.record.steps[b.record.step]
    if facts.done_signal or (step.outputs and facts.outputs_ready):
        b.consume_done = facts.done_signal
        b.step(phase=StepPhase.CHECKING)
        b.evaluate = "gates"
        return
    started = current.started_at or b.now
    if step.timeout is not None and b.now - started > step.timeout:
        timeout = GateResult(
            "timeout", False, f"the step took longer than {format_duration(step.timeout)}"
        )
        _attempt_failed(b, spec, step, timeout)


def _plan_checking(b: RunBuilder, spec: PlaybookSpec, step: Step, facts: RunFacts) -> None:
    """Gates evaluated: pass the step, wait for an approval, or ask for rework."""
    current = b.record.steps[b.record.step]
    outcome = facts.gates
    if outcome is None or (outcome.step, outcome.attempt) != (b.record.step, current.attempt):
        b.evaluate = "gates"
        return
    b.step(gates=with_results(current, current.attempt, outcome.results).gates)
    failed = next((r for r in outcome.results if not r.passed and not r.pending), None)
    if failed is not None:
        _attempt_failed(b, spec, step, failed)
        return
    if any(r.pending for r in outcome.results):
        b.step(phase=StepPhase.AWAITING_APPROVAL)
        b.take(
            "await_approval",
            "AwaitingApproval",
            f"step {step.name} needs approval: orch approve {b.record.name} {step.name}",
            warning=True,
        )
        return
    b.step(phase=StepPhase.PASSED, finished_at=b.now)
    b.event("StepPassed", f"step {step.name} passed its gates (attempt {current.attempt})")
    _advance(b, spec)


def _attempt_failed(b: RunBuilder, spec: PlaybookSpec, step: Step, failed: GateResult) -> None:
    """Rework while attempts remain; then the run fails with the reason."""
    current = b.record.steps[b.record.step]
    if current.attempt < step.max_attempts:
        attempt = current.attempt + 1
        text = rework_prompt(step, b.record, attempt, failed)
        b.event(
            "Rework",
            f"step {step.name}: {failed.name} failed; attempt {attempt} of {step.max_attempts}",
            warning=True,
        )
        _prompt(b, step, attempt, text)
        return
    b.step(phase=StepPhase.FAILED, finished_at=b.now, reason=f"{failed.name} failed")
    b.take(
        "fail",
        "GateFailed",
        f"step {step.name}: {failed.name} failed after {current.attempt} attempts: "
        f"{(failed.output.strip().splitlines() or [''])[-1]}",
        warning=True,
    )


def _prompt(b: RunBuilder, step: Step, attempt: int, text: str) -> None:
    """Queue the step's prompt for `attempt` (committed with this checkpoint, so exactly once).

    A new attempt starts with no approval and no gate results of its own (the earlier attempts'
    stay, labelled with theirs): an approval is for one attempt.
    """
    b.prompts.append(Prompt(step.agent, text))
    b.step(
        phase=StepPhase.WORKING,
        attempt=attempt,
        started_at=b.now,
        prompted_attempt=attempt,
        approved=False,
    )
    b.update(message=f"step {step.name} (attempt {attempt}) with agent {step.agent}")


def _advance(b: RunBuilder, spec: PlaybookSpec) -> None:
    """On to the next step, or Running -> Succeeded after the last."""
    following = b.record.step + 1
    if following >= len(spec.steps):
        b.take("succeed", "Succeeded", "every step passed")
        return
    b.update(step=following, message=f"step {spec.steps[following].name} next")


def step_prompt(step: Step, record: RunRecord) -> str:
    """The message that hands a step to its agent."""
    return _with_footer(render_prompt(step.prompt, record.params), step, record)


def rework_prompt(step: Step, record: RunRecord, attempt: int, failed: GateResult) -> str:
    """The message asking for rework: the failed gate and its output, then the task again."""
    task = render_prompt(step.prompt, record.params)
    message = rework_message(task, step.name, attempt, step.max_attempts, failed)
    return _with_footer(message, step, record)


def _with_footer(text: str, step: Step, record: RunRecord) -> str:
    """Name the run and how to finish the step; `$ORCH_RUN` in a prompt is the run's name."""
    text = text.replace("$ORCH_RUN", record.name)
    outputs = f" Write: {', '.join(step.outputs)}." if step.outputs else ""
    return (
        f"{text}\n\n[orch run {record.name}, step {step.name}]{outputs} When the step is "
        f"done, run: orch step done {record.name}"
    )
