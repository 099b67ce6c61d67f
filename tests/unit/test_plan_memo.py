"""Skipping an agent's plan is equivalent to planning it: until `quiet_until`, the same inputs
plan nothing at any moment; at that moment they plan something (the deadline is not late)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any

import pytest

from reconciler.api.activity import Activity
from reconciler.api.intents import NO_INTENT
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import AgentPlan, DesiredAgent, PlanContext
from reconciler.core.plan_memo import PlanInputs, PlanMemo, changes_nothing, quiet_until
from reconciler.core.planner import plan_agent
from tests.helpers import T0, desired_agent, on_screen, running_record

CLAUDE_IDLE = "● Done: added GET /healthz.\n────────\n❯ \n────────\n  ? for shortcuts\n"
CLAUDE_BUSY = "● Working on it\n✻ Thinking… (1m 2s · esc to interrupt)\n────────\n❯ \n────────\n"


def claude(**spec: Any) -> DesiredAgent:
    return desired_agent(**{"command": "claude", "profile": "claude", **spec})


def inputs_for(
    desired: DesiredAgent,
    screen: str,
    record: AgentRecord,
    cooldowns: dict[str, float | None] | None = None,
) -> PlanInputs:
    observed = on_screen(screen, desired, T0)
    return PlanInputs(desired, record, observed, None, (), NO_INTENT, cooldowns or {}, UTC, "")


def plan_at(inputs: PlanInputs, now: float) -> AgentPlan:
    ctx = PlanContext(
        now,
        inputs.timezone,
        {a: u for a, u in inputs.cooldowns.items() if u is not None},
        inputs.message,
        signals=inputs.signals,
        intent=inputs.intent,
        installation=inputs.installation,
    )
    return plan_agent("executor", inputs.desired, inputs.observation, inputs.recorded, ctx)


def settled(inputs: PlanInputs, now: float) -> PlanInputs:
    """The inputs once the controller committed what planning them at `now` changed (a few
    passes: the first dates the screen, the next publishes the activity)."""
    for _ in range(5):
        plan = plan_at(inputs, now)
        if changes_nothing(plan, plan.record, inputs.recorded):
            return inputs
        assert plan.record is not None and not plan.actions
        inputs = replace(inputs, recorded=plan.record)
    raise AssertionError("never settles")


def assert_quiet_until_due(inputs: PlanInputs, now: float) -> float:
    """Planning the same inputs any time before the due moment changes nothing."""
    first = plan_at(inputs, now)
    due = quiet_until(inputs, first, first.record, now)
    assert due is not None and due > now
    end = due if due != float("inf") else now + 30 * 86400
    for step in range(1, 200):
        later = now + (end - now) * step / 200
        if later < due:
            got = plan_at(inputs, later)
            assert changes_nothing(got, got.record, inputs.recorded), later - now
    return due


def changes_at(inputs: PlanInputs, moment: float) -> bool:
    got = plan_at(inputs, moment)
    return not changes_nothing(got, got.record, inputs.recorded)


def test_a_busy_agent_is_quiet_until_its_stale_deadline_then_goes_stale() -> None:
    desired = claude(stale={"after": "5m", "action": "none"})
    inputs = settled(inputs_for(desired, CLAUDE_BUSY, running_record(desired)), T0)
    assert inputs.recorded is not None and inputs.recorded.activity is Activity.BUSY
    due = assert_quiet_until_due(inputs, T0 + 10)
    assert due == pytest.approx(T0 + 300)
    stale = plan_at(inputs, due).record
    assert stale is not None and stale.state is AgentState.STALE


def test_an_idle_agent_is_quiet_until_its_idle_nudge() -> None:
    desired = claude(idle={"after": "30m", "action": "nudge", "nudge": "next"})
    inputs = settled(inputs_for(desired, CLAUDE_IDLE, running_record(desired)), T0)
    due = assert_quiet_until_due(inputs, T0 + 1)
    assert due == pytest.approx(T0 + 1800)
    assert changes_at(inputs, due)


def test_an_idle_agent_without_deadlines_is_quiet_for_good() -> None:
    desired = claude(stale={"after": "5m", "action": "restart"})
    inputs = settled(inputs_for(desired, CLAUDE_IDLE, running_record(desired)), T0)
    assert assert_quiet_until_due(inputs, T0 + 1) == float("inf")


def test_a_signal_contradicted_by_the_screen_is_planned_again_at_the_crosscheck() -> None:
    desired = claude()
    record = running_record(desired, signal_activity="Busy", signal_at=T0)
    inputs = settled(inputs_for(desired, CLAUDE_IDLE, record), T0 + 1)
    assert inputs.recorded is not None and inputs.recorded.activity is Activity.BUSY
    due = assert_quiet_until_due(inputs, T0 + 2)
    assert due == pytest.approx(T0 + 21)  # 20 s after the screen said Idle
    assert changes_at(inputs, due)


def test_a_cooldown_in_force_ends_the_quiet() -> None:
    desired = claude()
    inputs = settled(inputs_for(desired, CLAUDE_IDLE, running_record(desired)), T0)
    inputs = replace(inputs, cooldowns={"budget:other": T0 + 50})
    assert assert_quiet_until_due(inputs, T0 + 1) == pytest.approx(T0 + 50)


@pytest.mark.parametrize(
    "fields",
    [
        {"crash_times": (T0 - 5,)},
        {"replaying": True},
        {"state": AgentState.STARTING},
        {"pending_keys": ("Enter",), "keys_due": T0 + 1},
        {"cooldown_until": T0 + 60, "state": AgentState.COOLING_DOWN},
    ],
)
def test_agents_in_motion_are_planned_every_pass(fields: dict[str, Any]) -> None:
    desired = claude()
    inputs = inputs_for(desired, CLAUDE_IDLE, running_record(desired, **fields))
    plan = plan_at(inputs, T0 + 1)
    assert quiet_until(inputs, plan, inputs.recorded, T0 + 1) is None


def test_the_memo_skips_only_identical_inputs_before_their_due_time() -> None:
    desired = claude(stale={"after": "5m", "action": "none"})
    inputs = settled(inputs_for(desired, CLAUDE_BUSY, running_record(desired)), T0)
    memo = PlanMemo()
    plan = plan_at(inputs, T0 + 10)
    memo.remember("executor", inputs, plan, plan.record, T0 + 10)
    assert memo.due("executor", inputs, T0 + 11) == pytest.approx(T0 + 300)
    assert memo.due("executor", inputs, T0 + 300) is None
    moved = replace(inputs, observation=on_screen(CLAUDE_IDLE, desired, T0))
    assert memo.due("executor", moved, T0 + 11) is None
    memo.forget("executor")
    assert memo.due("executor", inputs, T0 + 11) is None
