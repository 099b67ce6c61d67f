"""Pure: an agent's new signals folded into its record, and `status.activity` published from them.

Called by the planner once per agent and pass. The signals are those `orch signal` stored since
the record's `signal_id`; `fold` (core.signals) reads them per CLI, and `weigh` sets them
against what the screen shows, which decides where no signal speaks.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.api.activity import Activity
from reconciler.api.messages import QueuedMessage
from reconciler.api.status import AgentState
from reconciler.core.agent_plan import PlanBuilder
from reconciler.core.screen import ScreenVerdict
from reconciler.core.signals import SignalState, fold, weigh


def signal_state(b: PlanBuilder) -> SignalState:
    """The folded signals kept on the record."""
    record = b.record
    return SignalState(
        last_id=record.signal_id,
        activity=Activity(record.signal_activity) if record.signal_activity else None,
        activity_at=record.signal_at,
        turn_started_at=record.turn_started_at,
        session_id=record.session_id,
    )


def take_signals(b: PlanBuilder, profile: str) -> None:
    """Fold the agent's new signals into its record.

    Signals sent before the current launch started (a previous process's late hooks, or an
    agent of the same name deleted earlier) only move the cursor on.
    """
    signals = b.ctx.signals
    if not signals:
        return
    state = signal_state(b)
    started = b.record.started_at or 0.0
    current = [s for s in signals if s.at >= started]
    folded = fold(profile, state, current)
    folded = replace(folded, last_id=max(folded.last_id, max(s.id for s in signals)))
    if folded.turn_started_at is not None and folded.turn_started_at != state.turn_started_at:
        b.update(conversation=True)  # a turn of its own: there is a conversation to resume
    if folded != state:
        b.update(
            signal_id=folded.last_id,
            signal_activity=folded.activity.value if folded.activity else "",
            signal_at=folded.activity_at,
            turn_started_at=folded.turn_started_at,
            session_id=folded.session_id,
        )


def publish_activity(b: PlanBuilder, alive: bool, verdict: ScreenVerdict | None) -> None:
    """Set `status.activity`: the signals weighed against the screen (Unknown when not alive).

    The screen's own verdict (its profile's busy and idle markers) is the fallback and the
    cross-check; a prompt on screen, or an agent AwaitingHuman, is Waiting. Without a verdict
    this pass (the screen was not read) the signals are weighed against an unknown screen.
    """
    record = b.record
    if not alive or record.state is AgentState.STOPPED:
        activity = Activity.UNKNOWN
    else:
        question = record.state is AgentState.AWAITING_HUMAN or bool(verdict and verdict.prompt)
        seen = verdict.activity if verdict is not None else Activity.UNKNOWN
        screen = Activity.WAITING if question else seen
        if verdict is not None and screen.value != record.screen_activity:
            b.update(screen_activity=screen.value, screen_activity_since=b.now)
        activity = weigh(
            signal_state(b),
            screen,
            record.screen_changed_at,
            b.now,
            b.record.screen_activity_since if b.record.screen_activity == screen.value else None,
        )
    if activity != record.activity or record.activity_since is None:
        b.update(activity=activity, activity_since=b.now)


def took_message(b: PlanBuilder, message: QueuedMessage) -> None:
    """A delivered message started a turn: Busy, unless the agent signalled since its Enter.

    CLIs without a turn-start signal (aider) are then Busy until they say they wait again, so a
    hang after a message still counts as stuck; a CLI that already said Stop keeps its Idle.
    Only for an agent whose signals arrive in this launch: one whose hooks do not fire (Gemini
    CLI runs none in an untrusted folder, nor in the process it relaunches after the trust
    dialog) would never say it waits again, and its screen decides instead.
    Either way the agent now has a conversation its restart command can resume.
    """
    b.update(conversation=True)
    entered = message.phase_at
    signalled = b.record.signal_at
    if signalled is None or signalled < (b.record.started_at or 0.0):
        return
    if entered is not None and signalled >= entered:
        return
    b.update(signal_activity=Activity.BUSY.value, signal_at=b.now, turn_started_at=b.now)
