"""Screen-driven edges of the agent machine, with an injected clock and screen texts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.api.actions import Launch, PressEnter, SendKeys
from reconciler.api.manifest import Agent
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, AgentState, ConditionStatus, EventType
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent, PlanContext
from reconciler.core.health import settle_keys
from reconciler.core.planner import launch_hash, plan_agent

T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp()
S = AgentState
IDLE = "welcome\n› \n"
LIMIT = "working...\nYou've hit your usage limit · resets 3pm\n› \n"
PROMPT = "about to run rm -rf build\nDo you want to proceed? [y/N]\n"


def agent(**spec: Any) -> DesiredAgent:
    document = {
        "apiVersion": "orch/v1",
        "kind": "Agent",
        "metadata": {"name": "executor"},
        "spec": {"command": "claude", "workdir": "/work", "profile": "claude", **spec},
    }
    return DesiredAgent(Agent.model_validate(document), 1)


def running(desired: DesiredAgent, **fields: Any) -> AgentRecord:
    base = AgentRecord(
        name="executor",
        state=S.RUNNING,
        since=T0,
        launch_id="executor-1",
        launch_hash=launch_hash(desired.agent),
        pid=100,
        started_at=T0,
        generation=1,
    )
    return replace(base, **fields)


def seen(screen: str) -> AgentObservation:
    return AgentObservation(PaneObservation("executor", "%1", 100, False, 0, 0), None, screen)


def plan(
    desired: DesiredAgent,
    screen: str,
    record: AgentRecord,
    now: float,
    **ctx: Any,
) -> AgentPlan:
    return plan_agent("executor", desired, seen(screen), record, PlanContext(now, UTC, **ctx))


def settle(desired: DesiredAgent, screen: str, record: AgentRecord, now: float) -> AgentRecord:
    """One pass that just looks (records the screen digest), as the controller does first."""
    got = plan(desired, screen, record, now)
    assert got.record is not None
    return got.record


def condition(record: AgentRecord | None, type_: str) -> ConditionStatus:
    assert record is not None
    return next(c.status for c in record.conditions if c.type == type_)


def test_running_to_cooling_down_until_reset_time_on_screen() -> None:
    desired = agent()
    got = plan(desired, LIMIT, running(desired), T0 + 1)
    assert got.record is not None and got.record.state is S.COOLING_DOWN
    reset = datetime(2026, 7, 1, 15, 0, tzinfo=UTC).timestamp()
    assert got.record.cooldown_until == reset
    assert got.requeue_after == pytest.approx(reset - T0 - 1)
    assert got.events[-1].type is EventType.WARNING
    assert condition(got.record, "RateLimited") is ConditionStatus.TRUE


def test_limit_without_reset_time_uses_spec_cooldown() -> None:
    desired = agent(rateLimit={"patterns": ["(?i)slow down"], "cooldown": "10m"})
    got = plan(desired, "please slow down\n", running(desired), T0)
    assert got.record is not None and got.record.cooldown_until == T0 + 600


def test_generic_program_printing_rate_limit_is_not_cooled() -> None:
    desired = agent(profile="generic", command="vim")
    got = plan(desired, "fixing the rate limit bug\n", running(desired), T0)
    assert got.record is not None and got.record.state is S.RUNNING


def test_cooling_down_keeps_deadline_and_never_goes_stale() -> None:
    desired = agent(stale={"after": "1m"})
    record = running(
        desired,
        state=S.COOLING_DOWN,
        cooldown_until=T0 + 3600,
        screen_changed_at=T0 - 7200,
        handled_limit="x",
    )
    got = plan(desired, LIMIT, record, T0)
    assert got.record is not None and got.record.state is S.COOLING_DOWN
    assert got.actions == ()
    assert got.requeue_after == pytest.approx(3600)


def test_cooling_down_to_running_at_deadline_sends_resume() -> None:
    desired = agent(rateLimit={"resume": "go on"})
    text = "You've hit your usage limit · resets 3pm"
    record = running(desired, state=S.COOLING_DOWN, cooldown_until=T0 - 1, handled_limit=text)
    got = plan(desired, LIMIT, record, T0)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == (SendKeys("executor", literal="go on"),)
    enter = plan(desired, LIMIT, got.record, T0 + 1)
    assert enter.actions == (PressEnter("executor"),)
    assert enter.record is not None and enter.record.state is S.RUNNING  # old text: no re-trigger


def test_agents_of_one_account_share_the_cooldown() -> None:
    desired = agent(rateLimit={"account": "team"})
    first = plan(desired, LIMIT, running(desired), T0)
    assert first.cooldowns["team"] is not None
    other = plan(
        desired, IDLE, running(desired), T0 + 1, cooldowns={"team": first.cooldowns["team"]}
    )
    assert other.record is not None and other.record.state is S.COOLING_DOWN
    assert other.record.reason == "AccountCoolingDown"


def test_prompt_answered_by_rule_then_enter() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "answer": "y"}])
    got = plan(desired, PROMPT, running(desired), T0)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == (SendKeys("executor", literal="y"),)
    assert got.events[-1].reason == "Answered"
    assert got.record.keys_sent_at == T0  # written ahead of the keys
    sent = settle_keys(got.record, failed=False)  # as the controller does once they went out
    assert sent.keys_sent_at is None
    again = plan(desired, PROMPT, sent, T0 + 1)
    assert again.actions == (PressEnter("executor"),)
    assert again.record is not None and again.record.keys_sent_at == T0 + 1
    pressed = settle_keys(again.record, failed=False)
    assert pressed.enter_due is None
    still = plan(desired, PROMPT, pressed, T0 + 2)
    assert still.actions == ()  # the handled prompt does not fire twice


def test_enter_cut_off_by_a_controller_kill_is_pressed_again_only_if_it_never_arrived() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "answer": "y"}])
    answered = plan(desired, PROMPT, running(desired), T0).record
    assert answered is not None
    typed = settle_keys(answered, failed=False)
    intent = plan(desired, PROMPT, typed, T0 + 1).record
    assert intent is not None and intent.keys_sent_at == T0 + 1  # the controller died here
    arrived = plan(desired, "answered: yes\n› \n", intent, T0 + 1.2)
    assert arrived.actions == ()
    assert arrived.record is not None and arrived.record.enter_due is None
    lost = plan(desired, PROMPT, intent, T0 + 2.5)
    assert lost.actions == (PressEnter("executor"),)


def test_answer_refused_by_tmux_is_tried_again() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "keys": ["Enter"]}])
    got = plan(desired, PROMPT, running(desired), T0)
    assert got.record is not None
    failed = settle_keys(got.record, failed=True)
    again = plan(desired, PROMPT, failed, T0 + 1)
    assert again.actions == (SendKeys("executor", keys=("Enter",)),)


def test_answer_cut_off_by_a_controller_kill_is_not_sent_twice_once_it_shows() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "keys": ["Enter"]}])
    intent = plan(desired, PROMPT, running(desired), T0).record
    assert intent is not None and intent.keys_sent_at == T0  # the controller died here
    moved = plan(desired, PROMPT + "y\nproceeding\n", intent, T0 + 0.2)
    assert moved.actions == ()
    assert moved.record is not None and moved.record.keys_sent_at is None


def test_answer_cut_off_before_it_was_sent_is_sent_after_the_grace() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "keys": ["Enter"]}])
    intent = plan(desired, PROMPT, running(desired), T0).record
    assert intent is not None
    early = plan(desired, PROMPT, intent, T0 + 0.5)
    assert early.actions == () and early.requeue_after == pytest.approx(0.5)
    late = plan(desired, PROMPT, intent, T0 + 1.5)
    assert late.actions == (SendKeys("executor", keys=("Enter",)),)
    assert [e.reason for e in late.events][:1] == ["AnswerRetried"]


def test_attached_pane_gets_no_answer_until_detached() -> None:
    desired = agent(prompts=[{"match": "Do you want to proceed", "keys": ["Enter"]}])
    pane = PaneObservation("executor", "%1", 100, False, 0, 0, attached=True)
    observed = AgentObservation(pane, None, PROMPT)
    got = plan_agent("executor", desired, observed, running(desired), PlanContext(T0, UTC))
    assert got.actions == ()
    assert condition(got.record, "Attached") is ConditionStatus.TRUE
    detached = plan(desired, PROMPT, got.record or running(desired), T0 + 1)
    assert detached.actions == (SendKeys("executor", keys=("Enter",)),)
    assert condition(detached.record, "Attached") is ConditionStatus.FALSE


def test_prompt_rule_with_keys_sends_keys() -> None:
    desired = agent(prompts=[{"match": "proceed", "keys": ["Down", "Enter"]}])
    got = plan(desired, PROMPT, running(desired), T0)
    assert got.actions == (SendKeys("executor", keys=("Down", "Enter")),)


def test_running_to_awaiting_human_on_unanswered_prompt() -> None:
    desired = agent()
    got = plan(desired, PROMPT, running(desired), T0)
    assert got.record is not None and got.record.state is S.AWAITING_HUMAN
    assert "Do you want to proceed" in got.record.message
    assert got.events[-1].type is EventType.WARNING
    assert condition(got.record, "AwaitingInput") is ConditionStatus.TRUE


def test_awaiting_human_to_running_when_screen_moves_on() -> None:
    desired = agent(stale={"after": "1s"})
    held = plan(desired, PROMPT, running(desired), T0).record
    assert held is not None
    waiting = plan(desired, PROMPT, held, T0 + 600)
    assert waiting.record is not None and waiting.record.state is S.AWAITING_HUMAN
    moved = plan(desired, "ok, running the command\n› \n", waiting.record, T0 + 601)
    assert moved.record is not None and moved.record.state is S.RUNNING


def test_running_to_stale_after_unchanged_screen_restarts() -> None:
    desired = agent(stale={"after": "5m", "action": "restart"})
    record = settle(desired, IDLE, running(desired), T0)
    assert plan(desired, IDLE, record, T0 + 299).record.state is S.RUNNING  # type: ignore[union-attr]
    got = plan(desired, IDLE, record, T0 + 301)
    assert got.record is not None and got.record.state is S.STARTING
    assert [t.dest for t in got.transitions] == [S.STALE, S.STARTING]
    (launch,) = got.actions
    assert isinstance(launch, Launch) and launch.command == "claude --continue"
    assert got.record.restarts == 1


def test_spinner_and_timer_do_not_count_as_progress() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = settle(desired, "✻ Thinking… (1m 2s · ↓ 4.8k tokens)\n", running(desired), T0)
    got = plan(desired, "✳ Thinking… (6m 9s · ↓ 4.8k tokens)\n", record, T0 + 301)
    assert got.record is not None and got.record.state is S.STALE


def test_stale_nudge_types_the_nudge_text() -> None:
    desired = agent(stale={"after": "5m", "action": "nudge", "nudge": "keep going"})
    record = settle(desired, IDLE, running(desired), T0)
    got = plan(desired, IDLE, record, T0 + 301)
    assert got.record is not None and got.record.state is S.STALE
    assert got.actions == (SendKeys("executor", literal="keep going"),)


def test_stale_to_running_when_screen_moves() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = settle(desired, IDLE, running(desired), T0)
    stale = plan(desired, IDLE, record, T0 + 301).record
    assert stale is not None and stale.state is S.STALE
    got = plan(desired, "new output\n› \n", stale, T0 + 302)
    assert got.record is not None and got.record.state is S.RUNNING


def test_no_resume_is_typed_into_a_menu_after_the_cooldown() -> None:
    desired = agent()
    menu = "What do you want to do?\n❯ 1. Stop and wait for limit to reset\n2. Upgrade your plan\n"
    record = running(desired, state=S.COOLING_DOWN, cooldown_until=T0 - 1)
    got = plan(desired, menu, record, T0)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == ()
