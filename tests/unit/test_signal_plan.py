"""Signals in the plan: folded onto the record, published as activity, and acted on (an idle agent
is never Stale, a turn start confirms a delivery, a session start ends Starting), with an injected
clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any

from reconciler.api.actions import Launch, PressEnter
from reconciler.api.activity import Activity
from reconciler.api.messages import Phase, QueuedMessage
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent, PlanContext
from reconciler.core.launch import launch_hash
from reconciler.core.planner import plan_agent
from reconciler.core.signals import AgentSignal
from tests.helpers import T0
from tests.helpers import on_screen as seen
from tests.helpers import running_record as running
from tests.unit.test_health import IDLE, PROMPT, SCREENS, agent

S = AgentState


def sig(id_: int, event: str, at: float, **fields: str) -> AgentSignal:
    return AgentSignal(id_, "executor", event, fields, at)


def plan(
    desired: DesiredAgent,
    record: AgentRecord | None,
    now: float,
    screen: str | None = IDLE,
    signals: tuple[AgentSignal, ...] = (),
    **ctx: Any,
) -> AgentPlan:
    observed = seen(screen, desired, now) if screen is not None else AgentObservation()
    return plan_agent(
        "executor", desired, observed, record, PlanContext(now, UTC, signals=signals, **ctx)
    )


def test_signals_are_folded_onto_the_record_and_published() -> None:
    desired = agent()
    got = plan(
        desired,
        running(desired),
        T0 + 5,
        signals=(
            sig(1, "SessionStart", T0 + 1, session_id="s1"),
            sig(2, "UserPromptSubmit", T0 + 2, session_id="s1"),
        ),
    )
    record = got.record
    assert record is not None
    assert (record.signal_id, record.signal_activity, record.signal_at) == (2, "Busy", T0 + 2)
    assert (record.session_id, record.turn_started_at) == ("s1", T0 + 2)
    assert (record.activity, record.activity_since) == (Activity.BUSY, T0 + 5)
    stopped = plan(desired, replace(record), T0 + 6, signals=(sig(3, "Stop", T0 + 6),))
    assert stopped.record is not None and stopped.record.activity is Activity.IDLE


def test_signals_from_before_the_launch_only_move_the_cursor() -> None:
    desired = agent()
    record = running(desired, started_at=T0 + 10)
    got = plan(desired, record, T0 + 11, signals=(sig(7, "UserPromptSubmit", T0 + 1),))
    assert got.record is not None
    assert (got.record.signal_id, got.record.signal_activity) == (7, "")
    assert got.record.activity is Activity.UNKNOWN


def test_a_question_on_screen_is_waiting_whatever_was_signalled() -> None:
    desired = agent()
    record = running(desired, signal_activity="Busy", signal_at=T0, signal_id=1)
    got = plan(desired, record, T0 + 1, screen=PROMPT)
    assert got.record is not None and got.record.activity is Activity.WAITING


def test_an_agent_not_running_has_unknown_activity() -> None:
    desired = agent()
    record = running(desired, signal_activity="Idle", signal_at=T0, activity=Activity.IDLE)
    got = plan(desired, record, T0 + 1, screen=None)
    assert got.record is not None and got.record.activity is Activity.UNKNOWN


def test_an_idle_agent_is_never_stale() -> None:
    """The contract: stale applies only to a busy agent; an idle one is never restarted."""
    desired = agent(stale={"after": "5m", "action": "restart"})
    record = running(
        desired,
        screen_changed_at=T0,
        signal_activity="Idle",
        signal_at=T0,
        activity=Activity.IDLE,
        activity_since=T0,
    )
    first = plan(desired, record, T0 + 1)
    assert first.record is not None
    later = plan(desired, first.record, T0 + 3 * 300)
    assert later.record is not None and later.record.state is S.RUNNING
    assert later.actions == ()


def test_a_busy_agent_without_screen_or_signal_progress_is_stale() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = running(desired, screen_changed_at=T0, signal_activity="Busy", signal_at=T0)
    first = plan(desired, record, T0 + 1)
    assert first.record is not None
    later = plan(desired, first.record, T0 + 301)
    assert later.record is not None and later.record.state is S.STALE


def test_a_signal_counts_as_progress_for_a_busy_agent() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = running(desired, screen_changed_at=T0, signal_activity="Busy", signal_at=T0)
    first = plan(desired, record, T0 + 1)
    assert first.record is not None
    # a tool ran 4 minutes in: the screen alone would say stale at T0+5m, the signal says not
    later = plan(desired, first.record, T0 + 301, signals=(sig(9, "PostToolUse", T0 + 240),))
    assert later.record is not None and later.record.state is S.RUNNING


def test_a_stale_agent_recovers_when_it_signals() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    record = running(desired, state=S.STALE, since=T0 + 300, screen_changed_at=T0)
    got = plan(desired, record, T0 + 400, signals=(sig(3, "PostToolUse", T0 + 399),))
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.record.reason == "Recovered"


def test_a_turn_start_signal_after_enter_confirms_the_delivery() -> None:
    desired = agent()
    record = running(desired, screen_digest="same")
    message = QueuedMessage(
        1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, "same", enters=1
    )
    seen_screen = plan(desired, record, T0 + 1.1, message=message)
    assert seen_screen.record is not None
    got = plan(
        desired,
        seen_screen.record,
        T0 + 1.2,
        message=message,
        signals=(sig(4, "UserPromptSubmit", T0 + 1.05),),
    )
    assert got.message is not None and got.message.phase is Phase.DELIVERED
    assert not any(isinstance(a, PressEnter) for a in got.actions)


def test_a_turn_start_before_the_enter_confirms_nothing() -> None:
    desired = agent()
    looked = plan(desired, running(desired, turn_started_at=T0 + 0.5, signal_id=4), T0 + 1)
    assert looked.record is not None
    digest = looked.record.screen_digest  # the screen has not moved since the Enter
    message = QueuedMessage(1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, digest)
    got = plan(desired, looked.record, T0 + 1.1, message=message)
    assert got.message is None or got.message.phase is not Phase.DELIVERED


def test_a_session_start_signal_ends_starting() -> None:
    desired = agent(startup={"after": "30s"})
    record = running(desired, state=S.STARTING, started_at=T0)
    got = plan(desired, record, T0 + 2, signals=(sig(1, "SessionStart", T0 + 1),))
    assert got.record is not None and got.record.state is S.RUNNING
    assert got.record.message == "running: the agent signalled it is ready"


def test_launch_carries_the_profile_and_whether_to_wire_signals() -> None:
    for signals, wired in (("auto", True), ("off", False)):
        desired = agent(signals=signals)
        got = plan(desired, None, T0, screen=None)
        (launch,) = [a for a in got.actions if isinstance(a, Launch)]
        assert (launch.profile, launch.signals) == ("claude", wired)


def test_signals_off_changes_the_launch_hash_and_auto_keeps_the_old_one() -> None:
    assert launch_hash(agent().agent) == launch_hash(agent(signals="auto").agent)
    assert launch_hash(agent().agent) != launch_hash(agent(signals="off").agent)


def test_a_delivered_message_makes_a_cli_without_turn_signals_busy() -> None:
    """aider says only when it waits again: a message it took starts a turn (Busy), so a hang
    after it still counts as stuck."""
    desired = agent(profile="aider", command="aider")
    record = running(desired, signal_activity="Idle", signal_at=T0, screen_digest="old")
    message = QueuedMessage(1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, "old")
    got = plan(desired, record, T0 + 2, message=message)
    assert got.message is not None and got.message.phase is Phase.DELIVERED
    assert got.record is not None and got.record.activity is Activity.BUSY
    done = plan(desired, got.record, T0 + 5, signals=(sig(2, "notify", T0 + 4),))
    assert done.record is not None and done.record.activity is Activity.IDLE


def test_a_delivery_confirmed_after_the_turn_ended_keeps_idle() -> None:
    desired = agent()
    record = running(desired, signal_activity="Idle", signal_at=T0 + 1.5, signal_id=3)
    message = QueuedMessage(1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, "old")
    got = plan(desired, record, T0 + 2, message=message)
    assert got.message is not None and got.message.phase is Phase.DELIVERED
    assert got.record is not None and got.record.activity is Activity.IDLE


def test_a_turn_start_signal_or_a_delivered_message_means_a_conversation_to_resume() -> None:
    desired = agent()
    quiet = plan(desired, running(desired), T0 + 2, signals=(sig(1, "SessionStart", T0 + 1),))
    assert quiet.record is not None and not quiet.record.conversation  # started, never talked
    talked = plan(desired, quiet.record, T0 + 3, signals=(sig(2, "UserPromptSubmit", T0 + 3),))
    assert talked.record is not None and talked.record.conversation
    message = QueuedMessage(1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, "old")
    took = plan(desired, running(desired, screen_digest="old"), T0 + 2, message=message)
    assert took.message is not None and took.message.phase is Phase.DELIVERED
    assert took.record is not None and took.record.conversation


def test_a_screen_that_contradicts_an_old_signal_long_enough_wins() -> None:
    # aider's notify said Idle when its last turn ended; the next turn hangs on its spinner.
    from reconciler.core.signals import CROSSCHECK_SECONDS

    desired = agent(profile="aider", command="aider")
    hang = (SCREENS / "aider" / "real-hang.txt").read_text()
    record = running(desired, signal_activity="Idle", signal_at=T0, signal_id=1)
    first = plan(desired, record, T0 + 1, screen=hang)
    assert first.record is not None and first.record.activity is Activity.IDLE
    assert (first.record.screen_activity, first.record.screen_activity_since) == ("Busy", T0 + 1)
    later = plan(desired, first.record, T0 + 1 + CROSSCHECK_SECONDS, screen=hang)
    assert later.record is not None and later.record.activity is Activity.BUSY


def test_a_delivered_message_leaves_a_cli_whose_hooks_are_silent_to_its_screen() -> None:
    """Gemini CLI without hooks firing (untrusted folder, or relaunched after the trust dialog):
    no signal of this launch, so a delivery invents no Busy that only a signal could end."""
    desired = agent(profile="gemini", command="gemini")
    idle = (SCREENS / "gemini" / "real-answered-idle.txt").read_text()
    record = running(desired, started_at=T0 - 5, signal_activity="Idle", signal_at=T0 - 60)
    message = QueuedMessage(1, "executor", "human", "hi", T0, Phase.SUBMITTED, T0 + 1, "old")
    got = plan(desired, record, T0 + 2, screen=idle, message=message)
    assert got.message is not None and got.message.phase is Phase.DELIVERED
    assert got.record is not None and got.record.signal_activity == "Idle"
    assert got.record.activity is Activity.IDLE
