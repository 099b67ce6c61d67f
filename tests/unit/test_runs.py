"""The playbook run machine and its planner, edge by edge, with an injected clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from transitions import MachineError

from reconciler.api.manifest import Playbook, PlaybookSpec
from reconciler.api.status import RunState
from reconciler.core.lifecycle import next_run_state
from reconciler.core.runs import (
    GATE_ATTEMPTS_KEPT,
    GateOutcome,
    RunFacts,
    RunRecord,
    StepPhase,
    plan_run,
)
from reconciler.core.steps import GateResult

T0 = 1_800_000_000.0
R = RunState


def spec(**step: Any) -> PlaybookSpec:
    base = {"name": "build", "agent": "worker", "prompt": "build ${feature}", **step}
    document = {
        "apiVersion": "orch/v1",
        "kind": "Playbook",
        "metadata": {"name": "flow"},
        "spec": {"params": {"feature": {"required": True}}, "steps": [base]},
    }
    return Playbook.model_validate(document).spec


def new_run(playbook: PlaybookSpec) -> RunRecord:
    return RunRecord.new("flow-1", "flow", playbook, {"feature": "login"}, T0)


def at_phase(record: RunRecord, phase: StepPhase, **fields: Any) -> RunRecord:
    steps = (replace(record.steps[0], phase=phase, **fields),)
    return replace(record, state=R.RUNNING, steps=steps)


@pytest.mark.parametrize(
    ("trigger", "source", "dest"),
    [
        ("start", R.PENDING, R.RUNNING),
        ("await_approval", R.RUNNING, R.AWAITING_HUMAN),
        ("approved", R.AWAITING_HUMAN, R.RUNNING),
        ("succeed", R.RUNNING, R.SUCCEEDED),
        ("fail", R.RUNNING, R.FAILED),
        ("fail", R.AWAITING_HUMAN, R.FAILED),
    ],
)
def test_run_edge(trigger: str, source: RunState, dest: RunState) -> None:
    assert next_run_state(source, trigger) is dest


def test_finished_runs_do_not_move() -> None:
    with pytest.raises(MachineError):
        next_run_state(R.SUCCEEDED, "start")


def test_pending_to_running_sends_the_first_prompt_once() -> None:
    playbook = spec()
    got = plan_run(new_run(playbook), playbook, RunFacts(), T0)
    assert got.record.state is R.RUNNING
    (prompt,) = got.prompts
    assert prompt.agent == "worker" and prompt.text.startswith("build login")
    assert got.record.steps[0].phase is StepPhase.WORKING
    again = plan_run(got.record, playbook, RunFacts(), T0 + 1)
    assert again.prompts == ()


def test_busy_agent_makes_the_step_wait() -> None:
    playbook = spec()
    got = plan_run(new_run(playbook), playbook, RunFacts(agent_busy_with="other-run"), T0)
    assert got.prompts == () and "busy with other-run" in got.record.message


def test_when_is_evaluated_then_a_false_one_skips() -> None:
    playbook = spec(when={"fileExists": "plan.md"})
    first = plan_run(new_run(playbook), playbook, RunFacts(), T0)
    assert first.evaluate == "when" and first.prompts == ()
    outcome = GateOutcome(0, 0, (GateResult("fileExists plan.md", False, "missing"),))
    got = plan_run(first.record, playbook, RunFacts(when=outcome), T0 + 1)
    assert got.record.steps[0].phase is StepPhase.SKIPPED
    assert got.record.state is R.SUCCEEDED


def test_outputs_written_move_the_step_to_its_gates() -> None:
    playbook = spec(outputs=["out.md"])
    record = at_phase(new_run(playbook), StepPhase.WORKING, attempt=1, started_at=T0)
    got = plan_run(record, playbook, RunFacts(outputs_ready=True), T0 + 5)
    assert got.record.steps[0].phase is StepPhase.CHECKING and got.evaluate == "gates"


def test_failed_gate_queues_rework_with_its_output() -> None:
    playbook = spec(gates=[{"command": "pytest -q"}], maxAttempts=2)
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, started_at=T0)
    failed = GateResult("command pytest -q", False, "1 failed, 3 passed")
    got = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 1, (failed,))), T0 + 9)
    (prompt,) = got.prompts
    assert "command pytest -q" in prompt.text and "1 failed, 3 passed" in prompt.text
    assert "build login" in prompt.text
    assert got.record.steps[0].attempt == 2 and got.record.state is R.RUNNING


def test_last_attempt_failing_fails_the_run() -> None:
    playbook = spec(gates=[{"command": "pytest -q"}], maxAttempts=1)
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, started_at=T0)
    failed = GateResult("command pytest -q", False, "boom")
    got = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 1, (failed,))), T0 + 9)
    assert got.record.state is R.FAILED and got.prompts == ()


def test_pending_approval_then_approved() -> None:
    playbook = spec(gates=[{"approval": "human"}])
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, started_at=T0)
    pending = GateResult("approval human", False, "waiting", pending=True)
    held = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 1, (pending,))), T0)
    assert held.record.state is R.AWAITING_HUMAN
    approved = plan_run(held.record, playbook, RunFacts(approved=True), T0 + 60)
    assert approved.record.state is R.RUNNING and approved.consume_approval
    assert approved.record.steps[0].approved and approved.evaluate == "gates"


def test_step_timeout_counts_as_a_failed_attempt() -> None:
    playbook = spec(timeout="10m", maxAttempts=1)
    record = at_phase(new_run(playbook), StepPhase.WORKING, attempt=1, started_at=T0)
    assert plan_run(record, playbook, RunFacts(), T0 + 599).record.state is R.RUNNING
    got = plan_run(record, playbook, RunFacts(), T0 + 601)
    assert got.record.state is R.FAILED and "timeout" in got.record.message


def test_missing_agent_fails_the_run() -> None:
    playbook = spec()
    got = plan_run(new_run(playbook), playbook, RunFacts(agent_exists=False), T0)
    assert got.record.state is R.FAILED and got.record.reason == "AgentNotFound"


def test_failure_message_ends_with_the_gate_output_last_line() -> None:
    playbook = spec(gates=[{"command": "make test"}], maxAttempts=1)
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, started_at=T0)
    failed = GateResult("command make test", False, "collecting\nE   2 failed\n")
    got = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 1, (failed,))), T0)
    assert got.record.message.endswith("after 1 attempts: E   2 failed")


def test_an_approval_is_for_one_attempt_only() -> None:
    playbook = spec(gates=[{"approval": "human"}, {"command": "make test"}], maxAttempts=2)
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, approved=True)
    failed = GateOutcome(
        0, 1, (GateResult("approval human", True, "approved"), GateResult("make", False, "x"))
    )
    plan = plan_run(record, playbook, RunFacts(gates=failed), T0 + 5)
    step = plan.record.steps[0]
    assert (step.phase, step.attempt) == (StepPhase.WORKING, 2)
    assert step.approved is False, "attempt 2 must be approved again by a person"
    assert step.current_gates == ()


def test_gate_results_are_labelled_with_the_attempt_they_were_evaluated_for() -> None:
    playbook = spec(gates=[{"command": "pytest -q"}], maxAttempts=3)
    record = at_phase(new_run(playbook), StepPhase.CHECKING, attempt=1, started_at=T0)
    failed = GateResult("command pytest -q", False, "1 failed")
    reworked = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 1, (failed,))), T0 + 1)
    step = reworked.record.steps[0]
    assert step.attempt == 2 and step.current_gates == (), "attempt 2 has no result yet"
    assert [(g.attempt, g.passed) for g in step.gates] == [(1, False)], "attempt 1's is kept"
    checking = replace(reworked.record, steps=(replace(step, phase=StepPhase.CHECKING),))
    passed = GateResult("command pytest -q", True, "ok")
    done = plan_run(checking, playbook, RunFacts(gates=GateOutcome(0, 2, (passed,))), T0 + 2)
    step = done.record.steps[0]
    assert [(g.attempt, g.passed) for g in step.current_gates] == [(2, True)]
    assert [(g.attempt, g.passed) for g in step.gates] == [(1, False), (2, True)]


def test_a_recheck_of_the_same_attempt_replaces_its_results_and_old_attempts_are_bounded() -> None:
    playbook = spec(gates=[{"approval": "human"}], maxAttempts=50)
    old = tuple(GateResult("g", False, "x", attempt=n) for n in range(1, 20))
    pending = GateResult("approval human", False, "", pending=True, attempt=20)
    record = at_phase(
        new_run(playbook), StepPhase.CHECKING, attempt=20, gates=(*old, pending), approved=True
    )
    ok = GateResult("approval human", True, "approved")
    got = plan_run(record, playbook, RunFacts(gates=GateOutcome(0, 20, (ok,))), T0)
    step = got.record.steps[0]
    assert [(g.attempt, g.passed) for g in step.current_gates] == [(20, True)]
    assert {g.attempt for g in step.gates} == set(range(20 - GATE_ATTEMPTS_KEPT, 21))
