"""The planner, table by table: (desired, observed, recorded, now) -> actions, state, events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any

import pytest

from reconciler.api.actions import Forget, Launch, Stop
from reconciler.api.history import EventType
from reconciler.api.intents import AgentIntent
from reconciler.api.manifest import Agent
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, AgentState, ConditionStatus
from reconciler.core.agent_plan import (
    AgentObservation,
    AgentPlan,
    DesiredAgent,
    GuardReport,
    PlanContext,
)
from reconciler.core.launch import launch_hash
from reconciler.core.planner import plan_agent

T0 = 1_800_000_000.0
S = AgentState


def agent(generation: int = 1, **spec: Any) -> DesiredAgent:
    document = {
        "apiVersion": "orch/v1",
        "kind": "Agent",
        "metadata": {"name": "executor"},
        "spec": {"command": "codex", "workdir": "/work", **spec},
    }
    return DesiredAgent(Agent.model_validate(document), generation=generation)


def alive(pid: int = 100) -> AgentObservation:
    return AgentObservation(PaneObservation("executor", "%1", pid, False, int(T0), int(T0)))


GONE = AgentObservation()


def record(state: AgentState, desired: DesiredAgent | None = None, **fields: Any) -> AgentRecord:
    desired = desired or agent()
    base = AgentRecord(
        name="executor",
        state=state,
        since=T0,
        launch_id="executor-old",
        launch_hash=launch_hash(desired.agent),
        pid=100,
        started_at=T0,
        generation=desired.generation,
    )
    return replace(base, **fields)


def plan(
    desired: DesiredAgent | None,
    observed: AgentObservation,
    recorded: AgentRecord | None,
    now: float = T0 + 5,
) -> AgentPlan:
    return plan_agent("executor", desired, observed, recorded, PlanContext(now, UTC))


def test_new_agent_is_launched_and_starting() -> None:
    got = plan(agent(), GONE, None)
    assert got.record is not None and got.record.state is S.STARTING
    (launch,) = got.actions
    assert isinstance(launch, Launch)
    assert (launch.agent, launch.command, launch.workdir) == ("executor", "codex", "/work")
    assert got.transitions[0].trigger == "start"


def test_starting_to_running_when_alive_past_startup() -> None:
    got = plan(agent(), alive(), record(S.STARTING), now=T0 + 1.5)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == ()
    assert got.record.conditions[0].status is ConditionStatus.TRUE


def test_starting_waits_for_startup_and_requeues() -> None:
    got = plan(agent(startup={"after": "10s"}), alive(), record(S.STARTING), now=T0 + 4)
    assert got.record is not None and got.record.state is S.STARTING
    assert got.requeue_after == pytest.approx(6)


def test_starting_to_running_on_ready_pattern() -> None:
    observed = replace(alive(), screen="banner\nREADY for work\n")
    got = plan(agent(startup={"after": "1h", "ready": "READY"}), observed, record(S.STARTING))
    assert got.record is not None and got.record.state is S.RUNNING


def test_running_to_starting_when_process_exited() -> None:
    got = plan(agent(), AgentObservation(exit_code=137), record(S.RUNNING, restarts=2))
    assert got.record is not None
    assert got.record.state is S.STARTING
    assert got.record.restarts == 3
    assert got.record.exit_code == 137
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.previous_launch == "executor-old"
    assert got.events[0].type is EventType.WARNING
    assert "code 137" in got.events[0].message


def test_restart_uses_restart_command() -> None:
    desired = agent(restartCommand="codex resume --last")
    got = plan(desired, GONE, record(S.RUNNING, desired, conversation=True))
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.command == "codex resume --last"
    assert got.record is not None and got.record.conversation  # the next restart resumes too


def test_restart_before_the_first_turn_runs_the_plain_command() -> None:
    """Nothing to resume yet: `claude --continue` would exit at once, on every restart."""
    desired = agent(command="claude", restartCommand="claude --continue")
    got = plan(desired, AgentObservation(exit_code=137), record(S.RUNNING, desired))
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.command == "claude"
    assert "no conversation to resume yet" in got.events[0].message
    assert got.record is not None and not got.record.replaying


def test_every_kind_of_restart_resumes_only_a_conversation() -> None:
    desired = agent(command="claude", restartCommand="claude --continue")
    looping = record(S.CRASH_LOOPING, desired, backoff_until=T0)
    requested = record(S.RUNNING, desired)
    intent = AgentIntent(request_seq=1, request_verb="restart", request_by="alice")
    for talked in (False, True):
        retried = plan(desired, GONE, replace(looping, conversation=talked))
        asked = plan_agent(
            "executor",
            desired,
            alive(),
            replace(requested, conversation=talked),
            PlanContext(T0, intent=intent),
        )
        for got in (retried, asked):
            (launch,) = [a for a in got.actions if isinstance(a, Launch)]
            assert launch.command == ("claude --continue" if talked else "claude")


def test_session_gone_restarts_under_always() -> None:
    got = plan(agent(), GONE, record(S.RUNNING))
    assert got.record is not None and got.record.state is S.STARTING
    assert "session disappeared" in got.record.message


def test_running_to_stopped_under_never() -> None:
    got = plan(agent(restartPolicy="Never"), AgentObservation(exit_code=1), record(S.RUNNING))
    assert got.record is not None and got.record.state is S.STOPPED
    assert not any(isinstance(a, Launch) for a in got.actions)


def test_on_failure_stops_after_clean_exit() -> None:
    got = plan(agent(restartPolicy="OnFailure"), AgentObservation(exit_code=0), record(S.RUNNING))
    assert got.record is not None and got.record.state is S.STOPPED
    assert got.record.reason == "Completed"


def test_on_failure_restarts_after_failed_exit() -> None:
    got = plan(agent(restartPolicy="OnFailure"), AgentObservation(exit_code=2), record(S.RUNNING))
    assert got.record is not None and got.record.state is S.STARTING


def test_running_to_crash_looping_after_too_many_restarts_in_window() -> None:
    desired = agent(crashLoop={"maxRestarts": 2, "window": "1m", "backoff": "10s"})
    recent = (T0 - 20, T0 - 10)
    got = plan(
        desired, AgentObservation(exit_code=1), record(S.RUNNING, desired, crash_times=recent)
    )
    assert got.record is not None and got.record.state is S.CRASH_LOOPING
    assert got.record.backoff == 10
    assert got.record.backoff_until == pytest.approx(T0 + 5 + 10)
    assert got.requeue_after == pytest.approx(10)
    assert not any(isinstance(a, Launch) for a in got.actions)


def test_old_crashes_outside_window_do_not_count() -> None:
    desired = agent(crashLoop={"maxRestarts": 2, "window": "1m"})
    old = (T0 - 300, T0 - 200)
    got = plan(desired, AgentObservation(exit_code=1), record(S.RUNNING, desired, crash_times=old))
    assert got.record is not None and got.record.state is S.STARTING


def test_crash_looping_waits_for_backoff() -> None:
    got = plan(agent(), GONE, record(S.CRASH_LOOPING, backoff=10, backoff_until=T0 + 10))
    assert got.actions == ()
    assert got.requeue_after == pytest.approx(5)


def test_crash_looping_to_starting_when_backoff_ends() -> None:
    rec = record(S.CRASH_LOOPING, backoff=10, backoff_until=T0 + 1, restarts=4)
    got = plan(agent(), GONE, rec)
    assert got.record is not None and got.record.state is S.STARTING
    assert got.record.restarts == 5
    assert isinstance(got.actions[0], Launch)


def test_backoff_doubles_up_to_max() -> None:
    desired = agent(crashLoop={"maxRestarts": 0, "backoff": "10s", "maxBackoff": "15s"})
    got = plan(desired, GONE, record(S.STARTING, desired, backoff=10))
    assert got.record is not None and got.record.backoff == 15


def test_crash_count_resets_after_healthy_run() -> None:
    desired = agent(crashLoop={"resetAfter": "10m"})
    rec = record(S.RUNNING, desired, crash_times=(T0 - 10,), backoff=20)
    got = plan(desired, alive(), rec, now=T0 + 601)
    assert got.record is not None
    assert got.record.crash_times == () and got.record.backoff == 0


def test_healthy_running_agent_is_left_alone() -> None:
    rec = record(S.RUNNING)
    got = plan(agent(), alive(), rec)
    assert got.actions == () and got.transitions == ()


def test_changed_command_relaunches_without_counting_a_restart() -> None:
    rec = record(S.RUNNING)
    got = plan(agent(command="codex --model o3", generation=2), alive(), rec)
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.replace_session
    assert launch.command == "codex --model o3"
    assert got.record is not None and got.record.restarts == 0
    assert got.record.reason == "SpecChanged"


def test_changed_labels_only_do_not_relaunch() -> None:
    rec = record(S.RUNNING)
    got = plan(agent(generation=2), alive(), rec)
    assert got.actions == ()
    assert got.record is not None and got.record.generation == 2


def test_deleted_agent_is_stopped_then_forgotten() -> None:
    got = plan(None, alive(), record(S.RUNNING))
    assert got.record is not None and got.record.state is S.STOPPED
    (stop,) = got.actions
    assert isinstance(stop, Stop) and stop.launch_id == "executor-old"
    then = plan(None, GONE, got.record)
    assert then.record is None
    assert then.actions == (Forget("executor"),)


def test_live_session_without_record_is_adopted_not_restarted() -> None:
    got = plan(agent(), alive(pid=4242), None)
    assert not any(isinstance(a, Launch) for a in got.actions)
    assert got.record is not None and got.record.pid == 4242


def test_stopped_agent_restarts_when_spec_changes() -> None:
    rec = record(S.STOPPED, generation=1)
    assert plan(agent(), GONE, rec).actions == ()
    got = plan(agent(command="codex --new", generation=2), GONE, rec)
    assert isinstance(got.actions[0], Launch)


def test_unrecorded_launch_seen_on_the_session_is_adopted() -> None:
    pane = PaneObservation("executor", "%1", 100, False, int(T0), int(T0), "executor-new")
    got = plan(agent(), AgentObservation(pane), record(S.RUNNING))
    assert got.actions == ()
    assert got.record is not None and got.record.launch_id == "executor-new"


def test_restart_after_the_session_vanished_does_not_kill_it_again() -> None:
    got = plan(agent(), GONE, record(S.RUNNING))
    (launch,) = got.actions
    assert isinstance(launch, Launch) and not launch.replace_session


def budget_ctx(now: float, until: float | None, **fields: Any) -> PlanContext:
    from reconciler.core.usage import budget_stop_key

    cooldowns = {} if until is None else {budget_stop_key("executor"): until}
    return PlanContext(now, UTC, cooldowns=cooldowns, **fields)


def test_running_to_stopped_when_a_budget_with_action_stop_is_spent() -> None:
    desired = agent(budget={"tokens": 1000, "action": "stop"})
    got = plan_agent(
        "executor", desired, alive(), record(S.RUNNING, desired), budget_ctx(T0, T0 + 60)
    )
    assert got.record is not None and got.record.state is S.STOPPED
    assert (
        got.record.reason == "BudgetExhausted" and "orch start agent executor" in got.record.message
    )
    assert any(isinstance(a, Stop) for a in got.actions)
    assert got.requeue_after == pytest.approx(60)
    # Stopped stays Stopped (no restart under restartPolicy Always) while the window is spent
    again = plan_agent("executor", desired, GONE, got.record, budget_ctx(T0 + 30, T0 + 60))
    assert again.record is not None and again.record.state is S.STOPPED and again.actions == ()


def test_stopped_by_its_budget_to_starting_when_the_window_frees() -> None:
    from reconciler.core.usage import budget_stop_key

    desired = agent(budget={"tokens": 1000, "action": "stop"}, restartCommand="codex resume")
    stopped = record(S.STOPPED, desired, reason="BudgetExhausted", pid=None)
    got = plan_agent("executor", desired, GONE, stopped, budget_ctx(T0 + 61, T0 + 60))
    assert got.record is not None and got.record.state is S.STARTING
    assert got.record.reason == "BudgetFreed"
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.command == "codex resume"
    assert got.cooldowns == {budget_stop_key("executor"): None}


def test_a_persons_start_overrides_a_budget_stop() -> None:
    from reconciler.api.intents import AgentIntent
    from reconciler.core.usage import budget_stop_key

    desired = agent(budget={"tokens": 1000, "action": "stop"})
    stopped = record(S.STOPPED, desired, reason="BudgetExhausted", pid=None)
    start = AgentIntent(request_seq=1, request_verb="start", request_by="alice")
    got = plan_agent("executor", desired, GONE, stopped, budget_ctx(T0, T0 + 60, intent=start))
    assert got.record is not None and got.record.state is S.STARTING
    assert got.cooldowns == {budget_stop_key("executor"): T0}, "kept, expired"
    later = plan_agent("executor", desired, alive(), got.record, budget_ctx(T0 + 1, T0))
    assert not any(isinstance(a, Stop) for a in later.actions)


GUARDS = [{"protect": ["tests/**"]}]


def guard_ready(observed: AgentObservation, desired: DesiredAgent) -> AgentObservation:
    report = GuardReport(False, "NoViolation", "", (desired.uid, desired.generation))
    return replace(observed, guard=report)


def test_a_guarded_agent_starts_only_once_its_guards_hold_the_baseline() -> None:
    desired = agent(guards=GUARDS)
    waiting = plan(desired, GONE, None)
    assert waiting.actions == () and waiting.record is None and waiting.requeue_after
    older = GuardReport(False, "NoViolation", "", ("", 0))  # the previous generation's
    assert plan(desired, replace(GONE, guard=older), None).actions == ()
    (launch,) = plan(desired, guard_ready(GONE, desired), None).actions
    assert isinstance(launch, Launch)


def test_a_spec_change_of_a_guarded_agent_waits_for_the_new_baseline() -> None:
    old = agent(guards=GUARDS)
    new = agent(generation=2, guards=GUARDS, command="claude")
    running = guard_ready(alive(), old)
    held = plan(new, running, record(S.RUNNING, old))
    assert held.actions == () and held.record == record(S.RUNNING, old)
    (_launch,) = plan(new, guard_ready(alive(), new), record(S.RUNNING, old)).actions


def test_a_running_guarded_agent_is_not_held_by_a_pending_check() -> None:
    desired = agent(guards=GUARDS)
    got = plan(desired, alive(), record(S.RUNNING, desired))
    assert got.record is not None and got.record.state is S.RUNNING
