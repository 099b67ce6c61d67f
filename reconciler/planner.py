"""Pure planning: from desired, observed and recorded state at `now`, decide what to do next.

`plan_agent` is level-triggered: it looks at the whole picture of one agent every time and never
asks what woke the loop, so a missed event or a controller restart costs nothing. It performs no
I/O; it returns the new record, the actions for the executor, the events and transitions to
persist, and when it wants to look again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any

from reconciler.actions import Action, Forget, Launch, Stop
from reconciler.duration import format_duration
from reconciler.lifecycle import LIVE_STATES, AgentState, next_state
from reconciler.manifest import Agent
from reconciler.observation import PaneObservation
from reconciler.status import (
    AgentRecord,
    Condition,
    ConditionStatus,
    Event,
    EventType,
    Transition,
    set_condition,
)


@dataclass(frozen=True)
class DesiredAgent:
    """An applied Agent and the generation of its spec (bumped on every change)."""

    agent: Agent
    generation: int


@dataclass(frozen=True)
class AgentObservation:
    """What tmux shows of one agent: its pane (None: no session) and how its process ended."""

    pane: PaneObservation | None = None
    exit_code: int | None = None
    screen: str | None = None

    @property
    def alive(self) -> bool:
        """The agent's session exists and its process has not exited."""
        return self.pane is not None and not self.pane.dead


@dataclass(frozen=True)
class AgentPlan:
    """The outcome of one planning step for one agent."""

    record: AgentRecord | None
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    transitions: tuple[Transition, ...] = ()
    requeue_after: float | None = None


def launch_hash(agent: Agent) -> str:
    """A digest of what a launch depends on: a change to any of it means a new process."""
    spec = agent.spec
    basis = {
        "command": spec.command,
        "workdir": spec.workdir,
        "env": dict(sorted(spec.env.items())),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


class _Step:
    """Accumulates one plan: the record as it evolves, plus actions, events and transitions."""

    def __init__(self, record: AgentRecord, now: float) -> None:
        self.record = record
        self.now = now
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.transitions: list[Transition] = []
        self.requeue_after: float | None = None

    @property
    def target(self) -> str:
        """The event object this plan is about, as `agent/NAME`."""
        return f"agent/{self.record.name}"

    def take(self, trigger: str, reason: str, message: str, warning: bool = False) -> None:
        """Fire `trigger` on the machine and record the edge, its event and the status reason."""
        source = self.record.state
        dest = next_state(source, trigger)
        self.record = replace(
            self.record, state=dest, since=self.now, reason=reason, message=message
        )
        self.transitions.append(Transition(self.target, source, dest, trigger, reason, message))
        self.event(reason, message, warning)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        kind = EventType.WARNING if warning else EventType.NORMAL
        self.events.append(Event(self.target, kind, reason, message))

    def update(self, **changes: Any) -> None:
        self.record = replace(self.record, **changes)

    def requeue(self, after: float) -> None:
        after = max(after, 0.0)
        self.requeue_after = after if self.requeue_after is None else min(self.requeue_after, after)

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        new = Condition(type_, status, reason, message, self.now)
        self.update(conditions=set_condition(self.record.conditions, new))

    def plan(self) -> AgentPlan:
        return AgentPlan(
            self.record,
            tuple(self.actions),
            tuple(self.events),
            tuple(self.transitions),
            self.requeue_after,
        )


def plan_agent(
    name: str,
    desired: DesiredAgent | None,
    observed: AgentObservation,
    recorded: AgentRecord | None,
    now: float,
) -> AgentPlan:
    """Decide the next move for agent `name`; at most one mutating action per call."""
    if desired is None:
        return _plan_deletion(name, observed, recorded, now)
    step = _Step(recorded or AgentRecord.new(name, now), now)
    state = step.record.state
    if state is AgentState.STOPPED:
        _plan_stopped(step, desired, observed, is_new=recorded is None)
    elif state is AgentState.CRASH_LOOPING:
        _plan_crash_looping(step, desired, observed)
    elif not observed.alive:
        _plan_exit(step, desired, observed)
    elif step.record.launch_hash != launch_hash(desired.agent):
        _relaunch(step, desired, "SpecChanged", "spec changed; restarting with the new command")
    else:
        _plan_alive(step, desired, observed)
    _publish_session_ready(step, observed)
    return step.plan()


def _plan_deletion(
    name: str, observed: AgentObservation, recorded: AgentRecord | None, now: float
) -> AgentPlan:
    """A deleted agent: stop whatever still runs, then forget it."""
    if recorded is None:
        return AgentPlan(None, (Stop(name, "", None),) if observed.pane else ())
    step = _Step(recorded, now)
    if observed.pane is not None or step.record.state in LIVE_STATES:
        pid = observed.pane.pid if observed.pane else recorded.pid
        step.actions.append(Stop(name, recorded.launch_id, pid))
        if step.record.state is not AgentState.STOPPED:
            step.take("stop", "Deleted", "agent deleted; stopping its session and processes")
        step.update(pid=None)
        step.requeue(0.0)
        return step.plan()
    step.actions.append(Forget(name))
    return AgentPlan(
        None,
        tuple(step.actions),
        events=(Event(step.target, EventType.NORMAL, "Forgotten", "agent stopped and removed"),),
    )


def _plan_stopped(
    step: _Step, desired: DesiredAgent, observed: AgentObservation, is_new: bool
) -> None:
    """Stopped, or never started: start it when it is new or its spec changed since it stopped."""
    record = step.record
    if observed.alive and is_new:
        # (new) -> Starting -> Running: a live session with our agent's name and no record, as
        # after a lost store; adopt it rather than kill a healthy agent.
        assert observed.pane is not None
        step.take("start", "Adopted", f"adopted the live session (pid {observed.pane.pid})")
        step.update(
            launch_id=observed.pane.launch_id,
            pid=observed.pane.pid,
            started_at=step.now,
            generation=desired.generation,
            launch_hash=launch_hash(desired.agent),
        )
        return
    if is_new or desired.generation != record.generation:
        _launch(
            step,
            desired,
            desired.agent.spec.command,
            "start",
            "Launching",
            f"starting: {desired.agent.spec.command}",
        )


def _plan_crash_looping(step: _Step, desired: DesiredAgent, observed: AgentObservation) -> None:
    """CrashLooping -> Starting once the backoff ends (at once if the spec changed)."""
    record = step.record
    spec_changed = desired.generation != record.generation
    due = record.backoff_until is None or step.now >= record.backoff_until
    if not (due or spec_changed):
        assert record.backoff_until is not None
        step.requeue(record.backoff_until - step.now)
        return
    step.update(restarts=record.restarts + 1)
    _launch(
        step,
        desired,
        _restart_command(desired),
        "retry",
        "BackoffEnded",
        "backoff ended; restarting" if due else "spec changed; restarting",
    )


def _plan_exit(step: _Step, desired: DesiredAgent, observed: AgentObservation) -> None:
    """The process exited or the session is gone: restart, back off, or stop, per policy."""
    spec = desired.agent.spec
    record = step.record
    code = observed.exit_code
    what = f"exited with code {code}" if code is not None else "session disappeared"
    step.update(exit_code=code, pid=None)
    if spec.restart_policy == "Never" or (spec.restart_policy == "OnFailure" and code == 0):
        step.actions.append(Stop(record.name, record.launch_id, record.pid, kill_session=False))
        step.take(
            "stop",
            "Completed" if code == 0 else "Exited",
            f"{what}; restartPolicy {spec.restart_policy} does not restart it",
        )
        return
    policy = spec.crash_loop
    recent = (*(t for t in record.crash_times if t > step.now - policy.window), step.now)
    step.update(crash_times=recent)
    if len(recent) > policy.max_restarts:
        backoff = min(max(record.backoff * 2, policy.backoff), policy.max_backoff)
        step.update(backoff=backoff, backoff_until=step.now + backoff)
        step.actions.append(Stop(record.name, record.launch_id, record.pid, kill_session=False))
        step.take(
            "crash_loop",
            "CrashLoopBackOff",
            f"{what}; {len(recent)} restarts within {format_duration(policy.window)}, "
            f"next try in {format_duration(backoff)}",
            warning=True,
        )
        step.requeue(backoff)
        return
    step.update(restarts=record.restarts + 1)
    _launch(
        step,
        desired,
        _restart_command(desired),
        "restart",
        "Restarted",
        f"{what}; restarted (restart {record.restarts + 1})",
        warning=True,
    )


def _plan_alive(step: _Step, desired: DesiredAgent, observed: AgentObservation) -> None:
    """A live agent: finish its start-up, and forgive old crashes after a long healthy run."""
    assert observed.pane is not None
    record = step.record
    if record.pid != observed.pane.pid or record.generation != desired.generation:
        step.update(pid=observed.pane.pid, generation=desired.generation)
    if observed.pane.launch_id and observed.pane.launch_id != record.launch_id:
        # The session belongs to a launch the store never recorded (the controller died between
        # starting it and committing): the session is the truth.
        step.update(launch_id=observed.pane.launch_id)
    if record.state is AgentState.STARTING:
        startup = desired.agent.spec.startup
        started = record.started_at if record.started_at is not None else step.now
        ready_seen = bool(
            startup.ready and observed.screen and _search(startup.ready, observed.screen)
        )
        if ready_seen or step.now - started >= startup.after:
            how = (
                "ready pattern seen"
                if ready_seen
                else f"alive for {format_duration(startup.after)}"
            )
            step.take("ready", "Started", f"running: {how}")
        else:
            step.requeue(started + startup.after - step.now)
        return
    reset_after = desired.agent.spec.crash_loop.reset_after
    if record.crash_times and step.now - record.since >= reset_after:
        # Healthy for resetAfter: earlier crashes no longer count toward CrashLooping.
        step.update(crash_times=(), backoff=0.0, backoff_until=None)


def _relaunch(step: _Step, desired: DesiredAgent, reason: str, message: str) -> None:
    _launch(
        step, desired, desired.agent.spec.command, "restart", reason, message, replace_session=True
    )


def _launch(
    step: _Step,
    desired: DesiredAgent,
    command: str,
    trigger: str,
    reason: str,
    message: str,
    warning: bool = False,
    replace_session: bool = False,
) -> None:
    """Start a fresh launch of the agent (ending the previous one) and take `trigger`."""
    record = step.record
    spec = desired.agent.spec
    launch_id = f"{record.name}-{uuid.uuid4().hex[:12]}"
    step.actions.append(
        Launch(
            agent=record.name,
            command=command,
            workdir=spec.workdir,
            env=dict(spec.env),
            launch_id=launch_id,
            previous_launch=record.launch_id,
            previous_pid=record.pid,
            replace_session=replace_session,
        )
    )
    step.take(trigger, reason, message, warning)
    step.update(
        launch_id=launch_id,
        launch_hash=launch_hash(desired.agent),
        pid=None,
        started_at=step.now,
        generation=desired.generation,
        backoff_until=None,
    )
    step.requeue(spec.startup.after)


def _restart_command(desired: DesiredAgent) -> str:
    spec = desired.agent.spec
    return spec.restart_command or spec.command


def _search(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.MULTILINE) is not None


def _publish_session_ready(step: _Step, observed: AgentObservation) -> None:
    """SessionReady: True while the agent's process runs and has finished starting."""
    state = step.record.state
    if state is AgentState.RUNNING and observed.alive:
        step.condition("SessionReady", ConditionStatus.TRUE, "Running", "the agent's process runs")
    elif state is AgentState.STARTING:
        step.condition("SessionReady", ConditionStatus.FALSE, "Starting", "the agent is starting")
    elif state in (AgentState.STOPPED, AgentState.CRASH_LOOPING):
        step.condition(
            "SessionReady", ConditionStatus.FALSE, step.record.reason, step.record.message
        )
