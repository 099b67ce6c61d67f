"""Screen-driven edges of the agent machine, with an injected clock and screen texts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.manifest_files import load_files
from reconciler.api.actions import Launch, SendKeys
from reconciler.api.activity import Activity
from reconciler.api.history import EventType
from reconciler.api.manifest import Agent
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, AgentState, ConditionStatus
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent, PlanContext
from reconciler.core.health import KEY_PAUSE_SECONDS, settle_keys
from reconciler.core.planner import plan_agent
from tests.helpers import T0, desired_agent
from tests.helpers import on_screen as seen
from tests.helpers import plan_screen as plan
from tests.helpers import running_record as running

S = AgentState
IDLE = "welcome\n› \n"
LIMIT = "working...\nYou've hit your usage limit · resets 3pm\n› \n"
PROMPT = "about to run rm -rf build\nDo you want to proceed? [y/N]\n"
ENTER = SendKeys("executor", keys=("Enter",))


def agent(**spec: Any) -> DesiredAgent:
    """The agent the health tests plan: Claude Code unless `spec` says."""
    return desired_agent(**{"command": "claude", "profile": "claude", **spec})


def settle(desired: DesiredAgent, screen: str, record: AgentRecord, now: float) -> AgentRecord:
    """One pass that just looks (records the screen digest), as the controller does first."""
    got = plan(desired, screen, record, now)
    assert got.record is not None
    return got.record


def went_out(got: AgentPlan) -> AgentRecord:
    """The plan's record once its keystrokes went out, as the controller settles it."""
    assert got.record is not None
    return settle_keys(got.record, failed=False)


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
        limit_lines=1,
    )
    got = plan(desired, LIMIT, record, T0)
    assert got.record is not None and got.record.state is S.COOLING_DOWN
    assert got.actions == ()
    assert got.requeue_after == pytest.approx(3600)


def test_cooling_down_to_running_at_deadline_sends_resume() -> None:
    desired = agent(rateLimit={"resume": "go on"})
    record = running(desired, state=S.COOLING_DOWN, cooldown_until=T0 - 1, limit_lines=1)
    got = plan(desired, LIMIT, record, T0)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == (SendKeys("executor", literal="go on"),)
    enter = plan(desired, LIMIT, got.record, T0 + 1)
    assert enter.actions == (ENTER,)
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
    assert again.actions == (ENTER,)
    assert again.record is not None and again.record.keys_sent_at == T0 + 1
    assert again.record.pending_keys == ("Enter",)  # pending until it went out
    pressed = settle_keys(again.record, failed=False)
    assert pressed.pending_keys == () and pressed.keys_due is None
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
    assert arrived.record is not None and arrived.record.pending_keys == ()
    assert arrived.record.keys_sent_at is None
    lost = plan(desired, PROMPT, intent, T0 + 2.5)
    assert lost.actions == (ENTER,)
    assert [e.reason for e in lost.events][:1] == ["KeyRetried"]


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
    got = plan_agent(
        "executor",
        desired,
        seen(PROMPT, desired, T0, attached=True),
        running(desired),
        PlanContext(T0, UTC),
    )
    assert got.actions == ()
    assert condition(got.record, "Attached") is ConditionStatus.TRUE
    detached = plan(desired, PROMPT, got.record or running(desired), T0 + 1)
    assert detached.actions == (SendKeys("executor", keys=("Enter",)),)
    assert condition(detached.record, "Attached") is ConditionStatus.FALSE


def test_prompt_rule_with_keys_sends_them_one_per_pass_with_a_pause_between() -> None:
    desired = agent(prompts=[{"match": "proceed", "keys": ["Up", "Enter"]}])
    got = plan(desired, PROMPT, running(desired), T0)
    assert got.actions == (SendKeys("executor", keys=("Up",)),)
    assert got.requeue_after == pytest.approx(KEY_PAUSE_SECONDS)
    early = plan(desired, PROMPT, went_out(got), T0 + KEY_PAUSE_SECONDS / 2)
    assert early.actions == ()  # the pause is a requeue, never a sleep in the loop
    assert early.requeue_after == pytest.approx(KEY_PAUSE_SECONDS / 2)
    due = plan(desired, PROMPT, went_out(got), T0 + KEY_PAUSE_SECONDS)
    assert due.actions == (ENTER,)
    assert went_out(due).pending_keys == ()


def test_a_rules_later_key_cut_off_by_a_controller_kill_is_pressed_again_only_if_lost() -> None:
    desired = agent(prompts=[{"match": "proceed", "keys": ["Up", "Down", "Enter"]}])
    up = went_out(plan(desired, PROMPT, running(desired), T0))
    intent = plan(desired, PROMPT, up, T0 + 1).record  # Down written ahead; the controller died
    assert intent is not None and intent.pending_keys == ("Down", "Enter")
    assert intent.keys_sent_at == T0 + 1
    arrived = plan(desired, PROMPT + "> 2. No\n", intent, T0 + 1.2)
    assert arrived.actions == ()
    assert arrived.record is not None and arrived.record.pending_keys == ("Enter",)
    assert arrived.record.keys_due == pytest.approx(T0 + 1 + KEY_PAUSE_SECONDS)
    lost = plan(desired, PROMPT, intent, T0 + 2.5)
    assert lost.actions == (SendKeys("executor", keys=("Down",)),)
    assert [e.reason for e in lost.events][:1] == ["KeyRetried"]


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
    record = settle(desired, IDLE, running(desired, conversation=True), T0)
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


# --- activity: quiet is stuck only for a busy agent ----------------------------------------------

CLAUDE_IDLE = "● Done: added GET /healthz.\n────────\n❯ \n────────\n  ? for shortcuts\n"
CLAUDE_BUSY = "● Working on it\n✻ Thinking… (1m 2s · esc to interrupt)\n────────\n❯ \n────────\n"


def test_an_idle_agent_is_never_stale_nor_restarted() -> None:
    desired = agent(stale={"after": "5m", "action": "restart"})
    record = settle(desired, CLAUDE_IDLE, running(desired), T0)
    assert record.activity is Activity.IDLE
    for minutes in (5, 10, 15, 60):
        got = plan(desired, CLAUDE_IDLE, record, T0 + 60 * minutes + 1)
        assert got.record is not None and got.record.state is S.RUNNING
        assert got.actions == ()
    assert condition(got.record, "Idle") is ConditionStatus.TRUE


def test_a_busy_agent_without_progress_goes_stale() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = settle(desired, CLAUDE_BUSY, running(desired), T0)
    assert record.activity is Activity.BUSY
    got = plan(desired, CLAUDE_BUSY.replace("✻", "✶").replace("1m 2s", "6m 9s"), record, T0 + 301)
    assert got.record is not None and got.record.state is S.STALE
    assert condition(got.record, "Idle") is ConditionStatus.FALSE


def test_quiet_counts_from_when_the_agent_became_busy() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = settle(desired, CLAUDE_IDLE, running(desired), T0)
    record = replace(record, activity=Activity.BUSY, activity_since=T0 + 600)  # e.g. a signal
    got = plan(desired, CLAUDE_IDLE.replace("❯ ", "❯ x"), record, T0 + 601)
    assert got.record is not None and got.record.state is S.RUNNING


def test_a_hung_codex_blinking_bullet_is_not_progress() -> None:
    desired = agent(profile="codex", command="codex", stale={"after": "5m", "action": "none"})
    frame = "• Ran tests\n{} Working (2m 01s • esc to interrupt)\n› Ask Codex to do anything\n"
    record = settle(desired, frame.format("•"), running(desired), T0)
    got = plan(desired, frame.format("◦"), record, T0 + 301)
    assert got.record is not None and got.record.state is S.STALE


def test_a_stale_agent_that_is_idle_recovers() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = settle(desired, CLAUDE_IDLE, running(desired, state=S.STALE), T0)
    got = plan(desired, CLAUDE_IDLE, record, T0 + 1)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.record.reason == "Recovered"


def test_idle_nudge_is_opt_in_and_sent_once_per_idle_after() -> None:
    desired = agent(idle={"after": "30m", "action": "nudge", "nudge": "next task"})
    record = settle(desired, CLAUDE_IDLE, running(desired), T0)
    early = plan(desired, CLAUDE_IDLE, record, T0 + 1799)
    assert early.actions == ()
    assert early.requeue_after == pytest.approx(1)
    nudged = plan(desired, CLAUDE_IDLE, record, T0 + 1800)
    assert nudged.actions == (SendKeys("executor", literal="next task"),)
    assert nudged.events[-1].reason == "IdleNudged"
    assert nudged.record is not None and nudged.record.state is S.RUNNING
    entered = plan(desired, CLAUDE_IDLE, nudged.record, T0 + 1801)
    assert entered.actions == (ENTER,)
    assert entered.record is not None
    assert plan(desired, CLAUDE_IDLE, went_out(entered), T0 + 1900).actions == ()


def test_without_an_idle_spec_an_idle_agent_is_left_alone() -> None:
    desired = agent(stale={"after": "1m", "action": "nudge"})
    record = settle(desired, CLAUDE_IDLE, running(desired), T0)
    assert plan(desired, CLAUDE_IDLE, record, T0 + 7200).actions == ()


# --- live prompts: rules read again -------------------------------------------------------------


def test_a_rule_added_while_a_prompt_waits_answers_it() -> None:
    without = agent()
    waiting = plan(without, PROMPT, running(without), T0).record
    assert waiting is not None and waiting.state is S.AWAITING_HUMAN
    with_rule = DesiredAgent(
        agent(prompts=[{"match": "Do you want to proceed", "answer": "y"}]).agent, 2
    )
    got = plan(with_rule, PROMPT, replace(waiting, generation=2), T0 + 5)
    assert got.actions == (SendKeys("executor", literal="y"),)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.record.reason == "Answered"
    entered = plan(with_rule, PROMPT, went_out(got), T0 + 6)
    assert entered.actions == (ENTER,)
    assert entered.record is not None
    assert plan(with_rule, PROMPT, went_out(entered), T0 + 7).actions == ()  # answered once


def attached(desired: DesiredAgent, screen: str, record: AgentRecord, now: float) -> AgentPlan:
    return plan_agent(
        "executor",
        desired,
        seen(screen, desired, now, attached=True),
        record,
        PlanContext(now, UTC),
    )


def test_a_rule_added_while_a_person_is_attached_answers_only_once_they_detach() -> None:
    without = agent()
    waiting = plan(without, PROMPT, running(without), T0).record
    assert waiting is not None and waiting.state is S.AWAITING_HUMAN
    with_rule = DesiredAgent(
        agent(prompts=[{"match": "Do you want to proceed", "answer": "y"}]).agent, 2
    )
    held = attached(with_rule, PROMPT, replace(waiting, generation=2), T0 + 5)
    assert held.actions == ()
    assert held.record is not None and held.record.state is S.AWAITING_HUMAN
    detached = plan(with_rule, PROMPT, held.record, T0 + 6)
    assert detached.actions == (SendKeys("executor", literal="y"),)


def test_pending_keys_wait_while_a_person_is_attached() -> None:
    desired = agent(prompts=[{"match": "proceed", "keys": ["Up", "Enter"]}])
    up = went_out(plan(desired, PROMPT, running(desired), T0))
    held = attached(desired, PROMPT, up, T0 + 1)
    assert held.actions == ()
    assert held.record is not None and held.record.pending_keys == ("Enter",)
    assert plan(desired, PROMPT, held.record, T0 + 2).actions == (ENTER,)


# --- limits: only new ones ---------------------------------------------------------------------


def test_a_limit_replayed_after_a_restart_starts_no_cooldown() -> None:
    desired = agent()
    limit = LIMIT.replace("› ", "❯ ")  # with Claude's input drawn: the replay can end
    restarted = running(desired, state=S.STARTING, replaying=True, screen_changed_at=T0)
    record = settle(desired, limit, restarted, T0 + 0.5)
    assert record.state is S.RUNNING and record.replaying  # its input is drawn
    got = plan(desired, limit, record, T0 + 2)
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == ()
    settled = plan(desired, limit, got.record, T0 + 3)
    assert settled.record is not None and not settled.record.replaying  # the replay is over
    assert settled.record.state is S.RUNNING


def test_the_same_limit_again_after_a_restart_and_a_task_starts_a_cooldown() -> None:
    desired = agent()
    restarted = running(desired, replaying=True, screen_changed_at=T0)
    record = settle(desired, LIMIT, restarted, T0 + 0.5)
    assert record.replaying and record.limit_lines == 1
    record = replace(record, replaying=False)  # orch sent a task
    again = LIMIT.replace("› \n", "retry please\nYou've hit your usage limit · resets 3pm\n› \n")
    got = plan(desired, again, record, T0 + 2)
    assert got.record is not None and got.record.state is S.COOLING_DOWN


def test_a_restart_replays_and_a_fresh_start_does_not() -> None:
    desired = agent()
    crashed = running(desired, state=S.RUNNING, conversation=True)
    restart = plan_agent("executor", desired, AgentObservation(None, 1), crashed, PlanContext(T0))
    assert restart.record is not None and restart.record.replaying
    fresh = plan_agent("executor", desired, AgentObservation(None), None, PlanContext(T0))
    assert fresh.record is not None and not fresh.record.replaying


def test_a_limit_on_a_fresh_start_counts() -> None:
    desired = agent()
    starting = running(desired, state=S.STARTING, screen_changed_at=T0)
    record = settle(desired, LIMIT, starting, T0 + 0.5)
    got = plan(desired, LIMIT, replace(record, state=S.RUNNING), T0 + 1.5)
    assert got.record is not None and got.record.state is S.COOLING_DOWN


def test_the_unchanged_limit_after_a_resume_starts_no_cooldown_the_same_text_again_does() -> None:
    desired = agent()
    cooling = running(desired, state=S.COOLING_DOWN, cooldown_until=T0 - 1, limit_lines=1)
    resumed = plan(desired, LIMIT, cooling, T0).record
    assert resumed is not None and resumed.state is S.RUNNING
    entered = plan(desired, LIMIT, resumed, T0 + 1).record
    assert entered is not None
    still = plan(desired, LIMIT + "continue\n", entered, T0 + 2)
    assert still.record is not None and still.record.state is S.RUNNING
    again = LIMIT + "continue\nYou've hit your usage limit · resets 3pm\n› \n"
    hit = plan(desired, again, still.record, T0 + 3)
    assert hit.record is not None and hit.record.state is S.COOLING_DOWN


def test_a_limit_line_that_scrolled_away_and_came_back_counts_again() -> None:
    desired = agent()
    record = running(desired, limit_lines=1)
    cleared = settle(desired, IDLE, record, T0 + 1)
    assert cleared.limit_lines == 0
    got = plan(desired, LIMIT, cleared, T0 + 2)
    assert got.record is not None and got.record.state is S.COOLING_DOWN


TEAM = Path(__file__).resolve().parents[2] / "manifests" / "team.yaml"
SCREENS = Path(__file__).resolve().parents[1] / "fixtures" / "screens"


@pytest.mark.parametrize(("name", "idle_screen"), [("architect", "claude"), ("executor", "codex")])
def test_the_team_manifest_never_restarts_or_nudges_an_idle_agent(
    name: str, idle_screen: str
) -> None:
    (declared,) = [d for d in load_files([TEAM]) if d.name == name]
    assert isinstance(declared.obj, Agent)
    desired = DesiredAgent(declared.obj, 1)
    screen = (SCREENS / idle_screen / "idle.txt").read_text()
    record = settle(desired, screen, running(desired, name=name), T0)
    assert record.activity is Activity.IDLE
    stale_after = declared.obj.spec.stale.after if declared.obj.spec.stale else 0
    later = T0 + 3 * stale_after
    got = plan_agent(name, desired, seen(screen, desired, later), record, PlanContext(later, UTC))
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.actions == ()


@pytest.mark.parametrize(
    ("profile", "replayed"),
    [("claude", "real-resume-continue.txt"), ("codex", "real-resume-last.txt")],
)
def test_a_real_restart_replaying_an_old_limit_starts_no_cooldown(
    profile: str, replayed: str
) -> None:
    desired = agent(profile=profile, command=profile)
    screen = (SCREENS / profile / replayed).read_text()
    restarted = running(desired, state=S.STARTING, replaying=True, screen_changed_at=T0)
    record = settle(desired, screen, restarted, T0 + 0.5)
    assert record.limit_lines >= 1  # the old limit is on screen, and counted as history
    for now in (T0 + 2, T0 + 5, T0 + 60):
        got = plan(desired, screen, replace(record, state=S.RUNNING), now)
        assert got.record is not None and got.record.state is S.RUNNING
        record = got.record


def test_a_restart_whose_screen_stays_blank_a_while_still_replays_its_old_limit() -> None:
    """Claude 2.1 under load shows nothing, then only a notice about tmux, for seconds after
    `--continue`, then the whole conversation at once (its old 429 line included) with its
    input: what came before the input is no finished replay."""
    desired = agent()
    screen = (SCREENS / "claude" / "real-resume-continue.txt").read_text()
    notice = "tmux focus-events off · add 'set -g focus-events on' to ~/.tmux.conf\n"
    record = running(desired, state=S.STARTING, replaying=True, screen_changed_at=T0)
    record = replace(settle(desired, "", record, T0 + 0.5), state=S.RUNNING)
    for now, shown in ((T0 + 3, ""), (T0 + 4, notice), (T0 + 6.5, notice), (T0 + 9, notice)):
        record = settle(desired, shown, record, now)  # each unchanged for REPLAY_QUIET_SECONDS
        assert record.replaying
    for now in (T0 + 9.5, T0 + 12, T0 + 30):
        got = plan(desired, screen, record, now)
        assert got.record is not None and got.record.state is S.RUNNING
        record = got.record
    assert not record.replaying


def test_the_real_claude_credit_limit_printed_again_after_a_resume_cools_down() -> None:
    desired = agent()
    quota = (SCREENS / "claude" / "real-quota.txt").read_text()
    cooling = running(desired, state=S.COOLING_DOWN, cooldown_until=T0 - 1, limit_lines=1)
    resumed = plan(desired, quota, cooling, T0).record
    assert resumed is not None and resumed.state is S.RUNNING
    entered = plan(desired, quota, resumed, T0 + 1).record
    assert entered is not None
    unchanged = plan(desired, quota, entered, T0 + 2)
    assert unchanged.record is not None and unchanged.record.state is S.RUNNING
    line = "  ⎿  Credit balance too low · Add funds: https://platform.claude.com/settings/billing\n"
    placeholder = "❯\u00a0Once fixed"  # the input's placeholder, after a no-break space
    assert placeholder in quota
    again = quota.replace(placeholder, "❯ continue\n" + line + placeholder, 1)
    hit = plan(desired, again, unchanged.record, T0 + 3)
    assert hit.record is not None and hit.record.state is S.COOLING_DOWN


@pytest.mark.parametrize(
    ("name", "screen", "keys"),
    [
        ("architect", "claude/real-trust-folder.txt", ("Down", "Enter")),
        ("architect", "claude/trust-folder.txt", ("1",)),
        ("executor", "codex/real-trust-folder.txt", ("Enter",)),
        ("executor", "codex/trust-directory.txt", ("Enter",)),
    ],
)
def test_the_team_manifest_answers_each_cli_versions_trust_dialog(
    name: str, screen: str, keys: tuple[str, ...]
) -> None:
    (declared,) = [d for d in load_files([TEAM]) if d.name == name]
    assert isinstance(declared.obj, Agent)
    desired = DesiredAgent(declared.obj, 1)
    text = (SCREENS / screen).read_text()
    record = running(desired, name=name)
    got = plan_agent(name, desired, seen(text, desired, T0), record, PlanContext(T0, UTC))
    sent = [key for action in got.actions if isinstance(action, SendKeys) for key in action.keys]
    assert got.record is not None
    assert (*sent, *got.record.pending_keys) == keys


def test_the_planner_reads_only_the_controllers_verdict_of_the_screen() -> None:
    """The controller classifies each screen once; a screen without its verdict is not read."""
    desired = agent()
    unread = AgentObservation(PaneObservation("executor", "%1", 100, False, 0, 0), None, PROMPT)
    got = plan_agent("executor", desired, unread, running(desired), PlanContext(T0, UTC))
    assert got.record is not None and got.record.state is S.RUNNING
    read = plan(desired, PROMPT, running(desired), T0)
    assert read.record is not None and read.record.state is S.AWAITING_HUMAN
