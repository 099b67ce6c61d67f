"""Pure planning: from desired, observed and recorded state, decide an agent's next move.

`plan_agent` is level-triggered: it looks at the whole picture of one agent every time and never
asks what woke the loop, so a missed event or a controller restart costs nothing. This module
owns the process side of the lifecycle (launch, exit, restart policy, crash-loop backoff,
deletion); `health` owns what the screen calls for, and `messages` the delivery of queued text.
No I/O happens here.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from reconciler.api.actions import Forget, Launch, Stop
from reconciler.api.activity import Activity
from reconciler.api.duration import format_duration
from reconciler.api.history import Event, EventType
from reconciler.api.intents import AnswerOutcome
from reconciler.api.localtime import local_datetime, local_time
from reconciler.api.manifest import Agent
from reconciler.api.messages import Phase
from reconciler.api.status import LIVE_STATES, AgentRecord, AgentState, ConditionStatus
from reconciler.core.agent_plan import (
    AgentObservation,
    AgentPlan,
    DesiredAgent,
    PlanBuilder,
    PlanContext,
)
from reconciler.core.answers import plan_answer
from reconciler.core.delivery import (
    AgentView,
    DeliveryStep,
    echo_shown,
    input_empty,
    input_ready,
    interrupted,
    step_delivery,
)
from reconciler.core.health import (
    finish_typing,
    plan_health,
    publish_conditions,
    read_screen,
    resolve_keys,
)
from reconciler.core.profiles import Profile, profile_for, resume_command
from reconciler.core.signal_plan import (
    publish_activity,
    take_signals,
    took_message,
)
from reconciler.core.usage import budget_stop_key

#: How soon a guarded agent waiting for its guards' baseline is looked at again.
GUARD_BASELINE_WAIT = 0.2


def restart_command(agent: Agent) -> str:
    """The command that restarts an agent with its conversation: the spec's, else the profile's."""
    spec = agent.spec
    return resume_command(spec.command, spec.profile, spec.restart_command)


def relaunch_command(agent: Agent, record: AgentRecord) -> tuple[str, str]:
    """The command a restart runs, and a note for its event when that is not the restart
    command: the restart command once the agent has a conversation to resume (it took a turn
    under orch), else its plain command. Before the first turn there is nothing to resume, and
    a resume flag may refuse to start at all (`claude --continue`: "No conversation found to
    continue", exit 1, again on every restart)."""
    resume = restart_command(agent)
    if record.conversation or resume == agent.spec.command:
        return resume, ""
    return agent.spec.command, " (no conversation to resume yet: its command, not the restart one)"


def plan_agent(
    name: str,
    desired: DesiredAgent | None,
    observed: AgentObservation,
    recorded: AgentRecord | None,
    ctx: PlanContext,
) -> AgentPlan:
    """Decide the next move for agent `name`; at most one mutating action per call."""
    if desired is None:
        return _plan_deletion(name, observed, recorded, ctx)
    if _awaits_guard_baseline(desired, observed, recorded):
        return AgentPlan(recorded, requeue_after=GUARD_BASELINE_WAIT)
    if recorded is not None and recorded.uid and recorded.uid != desired.uid:
        return _plan_recreated(name, desired, recorded, ctx)
    b = PlanBuilder(recorded or AgentRecord.new(name, ctx.now), ctx)
    b.update(uid=desired.uid)  # records older than uids take their agent's
    take_signals(b, desired.agent.spec.profile)
    state = b.record.state
    intent = ctx.intent
    if intent.held:
        _plan_held(b, observed)
    elif intent.request_seq > b.record.request_seen:
        _plan_requested_start(b, desired, observed)
    elif ctx.cooldowns.get(budget_stop_key(name), 0.0) > ctx.now:
        _plan_budget_stop(b, observed)
    elif state is AgentState.STOPPED and b.record.reason == "BudgetExhausted":
        _plan_budget_freed(b, desired, observed)
    elif state is AgentState.STOPPED:
        _plan_stopped(b, desired, observed, is_new=recorded is None)
    elif state is AgentState.CRASH_LOOPING:
        _plan_crash_looping(b, desired)
    elif not observed.alive:
        _plan_exit(b, desired, observed)
    elif b.record.launch_hash != desired.launch_hash:
        _launch(
            b,
            desired,
            desired.agent.spec.command,
            "restart",
            "SpecChanged",
            "spec changed; restarting with the new command",
            replace_session=True,
        )
    else:
        _plan_alive(b, desired, observed)
    _refuse_answer(b)
    _plan_message(b, desired, observed)
    publish_activity(b, observed.alive, observed.verdict)
    publish_conditions(b, observed.alive, observed.guard)
    _publish_attached(b, observed)
    return b.build()


def _awaits_guard_baseline(
    desired: DesiredAgent, observed: AgentObservation, recorded: AgentRecord | None
) -> bool:
    """A guarded agent is (re)started for a generation only once its guards hold the protected
    files as they are then: whatever it changes from its first keystroke counts as a change."""
    if not desired.agent.spec.guards:
        return False
    guard = observed.guard
    if guard is not None and guard.baseline == (desired.uid, desired.generation):
        return False
    return (
        not observed.alive
        or recorded is None
        or recorded.uid != desired.uid
        or recorded.launch_hash != desired.launch_hash
    )


def _plan_deletion(
    name: str, observed: AgentObservation, recorded: AgentRecord | None, ctx: PlanContext
) -> AgentPlan:
    """A deleted agent: stop whatever still runs, then forget it."""
    if recorded is None:
        return AgentPlan(None, (Stop(name, "", None),) if observed.pane else ())
    b = PlanBuilder(recorded, ctx)
    if observed.pane is not None or b.record.state in LIVE_STATES:
        pid = observed.pane.pid if observed.pane else recorded.pid
        b.actions.append(Stop(name, recorded.launch_id, pid))
        if b.record.state is not AgentState.STOPPED:
            b.take("stop", "Deleted", "agent deleted; stopping its session and processes")
        b.update(pid=None)
        b.requeue(0.0)
        return b.build()
    if observed.stopping_until is not None:
        # Stopping: SIGTERM was sent; what is left gets SIGKILL at the deadline, off the loop.
        kill_at = local_datetime(observed.stopping_until, ctx.timezone).strftime("%H:%M:%S")
        b.update(reason="Stopping", message=f"waiting for its processes to end (SIGKILL {kill_at})")
        b.requeue(max(observed.stopping_until - ctx.now, 0.05))
        return b.build()
    forgotten = Event(b.target, EventType.NORMAL, "Forgotten", "agent stopped and removed")
    return AgentPlan(None, (Forget(name),), events=(forgotten,))


def _plan_recreated(
    name: str, desired: DesiredAgent, recorded: AgentRecord, ctx: PlanContext
) -> AgentPlan:
    """The record is of an earlier agent of this name (deleted, then applied again): a new
    object, started afresh with its own spec; the earlier one's session and processes end."""
    fresh = replace(AgentRecord.new(name, ctx.now), uid=desired.uid, launch_id=recorded.launch_id)
    b = PlanBuilder(fresh, ctx)
    command = desired.agent.spec.command
    _launch(
        b,
        desired,
        command,
        "start",
        "Recreated",
        f"a new agent of this name: starting {command}",
        replace_session=True,
    )
    publish_conditions(b, False, None)
    return b.build()


def _plan_held(b: PlanBuilder, observed: AgentObservation) -> None:
    """`orch stop`: end whatever runs and stay Stopped, saying who stopped it, until `start`."""
    intent = b.ctx.intent
    record = b.record
    when = f" at {local_time(intent.held_at, b.ctx.timezone)}" if intent.held_at else ""
    message = f"stopped by {intent.held_by}{when}; `orch start agent {record.name}` starts it"
    b.update(request_seen=intent.request_seq)
    if observed.pane is not None or record.state is not AgentState.STOPPED:
        b.actions.append(
            Stop(record.name, record.launch_id, observed.pane.pid if observed.pane else record.pid)
        )
        b.update(pid=None, pending_keys=(), keys_due=None, keys_sent_at=None, backoff_until=None)
    if record.state is not AgentState.STOPPED:
        # any state -> Stopped: a person asked for it
        b.take("stop", "StoppedByUser", message)
    elif record.reason != "StoppedByUser":
        b.update(reason="StoppedByUser", message=message)


def _plan_budget_stop(b: PlanBuilder, observed: AgentObservation) -> None:
    """A budget with `action: stop` is spent: end whatever runs and stay Stopped until the window
    frees up (or a person starts it); the spec and any `orch stop` hold stay as they are."""
    record = b.record
    until = b.ctx.cooldowns[budget_stop_key(record.name)]
    when = local_time(until, b.ctx.timezone)
    message = (
        f"its budget is spent; stopped until {when} (the window frees up); "
        f"`orch start agent {record.name}` starts it now"
    )
    if observed.pane is not None or record.state is not AgentState.STOPPED:
        b.actions.append(
            Stop(record.name, record.launch_id, observed.pane.pid if observed.pane else record.pid)
        )
        b.update(pid=None, pending_keys=(), keys_due=None, keys_sent_at=None, backoff_until=None)
    if record.state is not AgentState.STOPPED:
        # any state -> Stopped: its budget is spent
        b.take("stop", "BudgetExhausted", message, warning=True)
    b.requeue(until - b.now)


def _plan_budget_freed(b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation) -> None:
    """Stopped by its budget and the window freed up: Stopped -> Starting, resuming its work."""
    b.cooldowns[budget_stop_key(b.record.name)] = None
    command = restart_command(desired.agent) if b.record.launch_id else desired.agent.spec.command
    message = f"budget window freed up: {command}"
    _launch(
        b, desired, command, "start", "BudgetFreed", message, replace_session=bool(observed.pane)
    )


def _plan_requested_start(
    b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation
) -> None:
    """`orch restart|start`: start it now; a person's restart (no crash counted, backoff reset)."""
    intent = b.ctx.intent
    record = b.record
    if intent.request_verb == "start" and record.state in LIVE_STATES:
        b.update(request_seen=intent.request_seq)  # already running: nothing to start
        return
    b.update(request_seen=intent.request_seq, crash_times=(), backoff=0.0, backoff_until=None)
    if b.ctx.cooldowns.get(budget_stop_key(record.name), 0.0) > b.now:
        # a person's start overrides the budget: its deadline is kept, expired, so that a
        # restarted controller knows the budget is still spent and does not stop it again
        b.cooldowns[budget_stop_key(record.name)] = b.now
    verb = "restarted" if intent.request_verb == "restart" else "started"
    command, note = relaunch_command(desired.agent, record)
    if record.state is AgentState.STOPPED:
        trigger = "start"  # Stopped -> Starting
    elif record.state is AgentState.CRASH_LOOPING:
        trigger = "retry"  # CrashLooping -> Starting, without waiting out the backoff
    else:
        trigger = "restart"  # live -> Starting
    if intent.request_verb == "restart":
        b.update(manual_restarts=record.manual_restarts + 1)
    _launch(
        b,
        desired,
        command,
        trigger,
        "Restarted" if intent.request_verb == "restart" else "StartedByUser",
        f"{verb} by {intent.request_by}: {command}{note}",
        replace_session=observed.pane is not None,
    )


def _plan_stopped(
    b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation, is_new: bool
) -> None:
    """Stopped, or never started: start it when it is new or its spec changed since it stopped."""
    if observed.pane is not None and observed.pane.installation != b.ctx.installation:
        # A session of this name that this installation did not start (another state dir on the
        # same socket, a person's session): neither adopted nor started over, nor killed.
        if b.record.reason != "ForeignSession":
            message = "a tmux session of this name that this orch did not start runs there"
            b.update(reason="ForeignSession", message=f"{message}; end or rename it")
            b.event("ForeignSession", f"{message}: not adopted, not started", warning=True)
        b.requeue(5.0)
        return
    if observed.alive and is_new:
        assert observed.pane is not None
        # (new) -> Starting: a live session with our agent's name and no record, as after a lost
        # store; adopt it rather than kill a healthy agent.
        b.take("start", "Adopted", f"adopted the live session (pid {observed.pane.pid})")
        b.update(
            launch_id=observed.pane.launch_id,
            pid=observed.pane.pid,
            started_at=b.now,
            generation=desired.generation,
            launch_hash=desired.launch_hash,
        )
        return
    if is_new or desired.generation != b.record.generation:
        command = desired.agent.spec.command
        _launch(b, desired, command, "start", "Launching", f"starting: {command}")


def _plan_crash_looping(b: PlanBuilder, desired: DesiredAgent) -> None:
    """CrashLooping -> Starting once the backoff ends (at once if the spec changed)."""
    record = b.record
    spec_changed = desired.generation != record.generation
    due = record.backoff_until is None or b.now >= record.backoff_until
    if not (due or spec_changed):
        assert record.backoff_until is not None
        b.requeue(record.backoff_until - b.now)
        return
    b.update(restarts=record.restarts + 1)
    command, note = relaunch_command(desired.agent, record)
    why = "backoff ended" if due else "spec changed"
    _launch(b, desired, command, "retry", "BackoffEnded", f"{why}; restarting{note}")


def _plan_exit(b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation) -> None:
    """The process exited or the session is gone: restart, back off, or stop, per policy."""
    spec = desired.agent.spec
    record = b.record
    code = observed.exit_code
    what = f"exited with code {code}" if code is not None else "session disappeared"
    b.update(
        exit_code=code,
        pid=None,
        pending_keys=(),
        keys_due=None,
        keys_sent_at=None,
        activity=Activity.UNKNOWN,
        activity_since=None,
    )
    if spec.restart_policy == "Never" or (spec.restart_policy == "OnFailure" and code == 0):
        b.actions.append(Stop(record.name, record.launch_id, record.pid, kill_session=False))
        b.take(
            "stop",
            "Completed" if code == 0 else "Exited",
            f"{what}; restartPolicy {spec.restart_policy} does not restart it",
        )
        return
    policy = spec.crash_loop
    recent = (*(t for t in record.crash_times if t > b.now - policy.window), b.now)
    b.update(crash_times=recent)
    if len(recent) > policy.max_restarts:
        backoff = min(max(record.backoff * 2, policy.backoff), policy.max_backoff)
        b.update(backoff=backoff, backoff_until=b.now + backoff)
        b.actions.append(Stop(record.name, record.launch_id, record.pid, kill_session=False))
        b.take(
            "crash_loop",
            "CrashLoopBackOff",
            f"{what}; exited {len(recent)} times within {format_duration(policy.window)} "
            f"(restarted {record.restarts} times so far), next try in {format_duration(backoff)}",
            warning=True,
        )
        b.requeue(backoff)
        return
    # The session is usually gone already; only a dead pane still holding it needs killing.
    _restart(
        b,
        desired,
        "Restarted",
        f"{what}; restarted (restart {record.restarts + 1})",
        replace_session=observed.pane is not None,
    )


def _plan_alive(b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation) -> None:
    """A live agent: finish start-up, then whatever its screen calls for."""
    assert observed.pane is not None
    record = b.record
    if record.pid != observed.pane.pid or record.generation != desired.generation:
        b.update(pid=observed.pane.pid, generation=desired.generation)
    if observed.pane.launch_id and observed.pane.launch_id != record.launch_id:
        # The session belongs to a launch the store never recorded (the controller died between
        # starting it and committing): the session is the truth.
        b.update(launch_id=observed.pane.launch_id)
    digest_before = record.screen_digest
    drawn = input_ready(observed.screen or "", ready_pattern(desired.agent))
    verdict = read_screen(b, observed, input_drawn=drawn)
    if resolve_keys(b, verdict, digest_before):
        return
    if observed.pane.attached and b.record.state is not AgentState.STARTING:
        # Hands off: a person at the pane gets no keystrokes from orch until they detach. Only
        # their own answer to a question is noticed.
        if b.record.state is AgentState.AWAITING_HUMAN:
            plan_health(b, desired, verdict, hands_off=True)
        return
    if finish_typing(b) or plan_answer(b):
        return
    if b.record.state is AgentState.STARTING:
        _plan_starting(b, desired, observed)
        return
    if plan_health(b, desired, verdict, log_limit=observed.log_limit):
        _restart(b, desired, "StaleRestarted", "restarted a silent agent", replace_session=True)
        return
    reset_after = desired.agent.spec.crash_loop.reset_after
    if b.record.crash_times and b.now - b.record.since >= reset_after:
        # Healthy for resetAfter: earlier crashes no longer count toward CrashLooping.
        b.update(crash_times=(), backoff=0.0, backoff_until=None)


def _plan_starting(b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation) -> None:
    """Starting -> Running once alive past startup.after, or at once when `ready` is on screen."""
    startup = desired.agent.spec.startup
    started = b.record.started_at if b.record.started_at is not None else b.now
    pattern = ready_pattern(desired.agent)
    ready_seen = bool(pattern and observed.screen and input_ready(observed.screen, pattern))
    # The CLI's own session-start (or any idle) signal since this launch: its input is drawn.
    signalled = b.record.signal_activity == "Idle" and (b.record.signal_at or 0.0) >= started
    if ready_seen or signalled or b.now - started >= startup.after:
        how = (
            "ready pattern seen"
            if ready_seen
            else "the agent signalled it is ready"
            if signalled
            else f"alive for {format_duration(startup.after)}"
        )
        b.take("ready", "Started", f"running: {how}")
    else:
        b.requeue(started + startup.after - b.now)


def _refuse_answer(b: PlanBuilder) -> None:
    """An answer the agent's state cannot take (no live prompt) is refused, not kept for later."""
    answer = b.ctx.intent.answer
    if answer is not None and b.answer is None and b.record.state is not AgentState.AWAITING_HUMAN:
        b.answer = AnswerOutcome(
            answer.id, False, f"no prompt waits: the agent is {b.record.state}"
        )


def ready_pattern(agent: Agent) -> str | None:
    """What on screen means the agent's input is drawn: the spec's, else its profile's."""
    return agent.spec.startup.ready or profile_for(agent.spec.profile).ready


def _plan_message(b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation) -> None:
    """Move this agent's next message one step.

    Keystrokes go only to a Running or Stale agent (a Stale one may be idle at its input), in a
    pass that does nothing else to it, with no typed text waiting for its Enter and no person
    attached. A submitted message is confirmed whatever the agent does next (its answer may well
    be a question for a human).
    """
    message = b.ctx.message
    if message is None:
        return
    if not observed.alive:
        back, notice = interrupted(message)
        _step(b, DeliveryStep(None, back, None, notice))
        return
    assert observed.pane is not None
    may_type = (
        b.record.state in (AgentState.RUNNING, AgentState.STALE)
        and not (b.acted or b.transitions or observed.pane.attached)
        and not b.record.pending_keys
        and b.record.keys_sent_at is None
    )
    if not may_type and message.phase not in (Phase.ENTERING, Phase.SUBMITTED):
        return
    verdict = observed.verdict
    ready = ready_pattern(desired.agent)
    view = AgentView(
        digest=b.record.screen_digest,
        changed_at=b.record.screen_changed_at,
        ready=input_ready(observed.screen or "", ready),
        # A question still unanswered: one orch or a person already answered may linger on
        # screen (the live-prompt reading of the screen narrows this further).
        question=verdict is not None
        and verdict.prompt is not None
        and verdict.prompt.text != b.record.handled_prompt,
        turn_started_at=b.record.turn_started_at,
        evidence=b.ctx.evidence,
        # A program without an input to draw (no ready pattern) has no start-up to settle.
        started_at=b.record.started_at if ready else None,
        retry_enter=profile_for(desired.agent.spec.profile).retry_enter,
        **_input_view(profile_for(desired.agent.spec.profile), observed.screen, message.text),
    )
    step = step_delivery(message, view, b.now)
    if may_type or step.action is None:
        _step(b, step)


def _input_view(profile: Profile, screen: str | None, text: str) -> dict[str, bool | None]:
    """What the screen shows of the CLI's input, where its profile can read it: the message's
    echo there, and (for a full-screen CLI, whose input stays in place) whether it is empty."""
    if profile.empty_input is None or screen is None:
        return {}
    return {
        "echo": echo_shown(screen, text),
        "input_empty": None if profile.line_mode else input_empty(screen, profile.empty_input),
    }


def _step(b: PlanBuilder, step: DeliveryStep) -> None:
    """Take a delivery step into the plan: its action, the message as it is now, its event."""
    if step.action is not None:
        b.actions.append(step.action)
        b.update(replaying=False)
    if step.message != b.ctx.message:
        b.message = step.message
        if step.message.delivered_at is not None and b.ctx.message is not None:
            took_message(b, b.ctx.message)
    if step.notice is not None:
        b.event(step.notice.reason, step.notice.message, step.notice.warning)
    if step.requeue_after is not None:
        b.requeue(step.requeue_after)


def _publish_attached(b: PlanBuilder, observed: AgentObservation) -> None:
    """The Attached condition: while True, orch sends the agent no keystrokes."""
    if observed.pane is not None and observed.pane.attached:
        b.condition(
            "Attached",
            ConditionStatus.TRUE,
            "ClientAttached",
            "a person is attached; messages, answers and nudges wait until they detach",
        )
    else:
        b.condition("Attached", ConditionStatus.FALSE, "Detached", "no client attached")


def _restart(
    b: PlanBuilder, desired: DesiredAgent, reason: str, message: str, replace_session: bool
) -> None:
    """Restart, resuming the conversation if there is one (`relaunch_command`); counted."""
    b.update(restarts=b.record.restarts + 1)
    command, note = relaunch_command(desired.agent, b.record)
    _launch(
        b,
        desired,
        command,
        "restart",
        reason,
        message + note,
        warning=True,
        replace_session=replace_session,
    )


def _launch(
    b: PlanBuilder,
    desired: DesiredAgent,
    command: str,
    trigger: str,
    reason: str,
    message: str,
    warning: bool = False,
    replace_session: bool = False,
) -> None:
    """Start a fresh launch of the agent (ending the previous one) and take `trigger`."""
    record = b.record
    spec = desired.agent.spec
    launch_id = f"{record.name}-{uuid.uuid4().hex[:12]}"
    b.actions.append(
        Launch(
            agent=record.name,
            command=command,
            workdir=spec.workdir,
            env={name: value for name, value in spec.env.items() if isinstance(value, str)},
            launch_id=launch_id,
            previous_launch=record.launch_id,
            replace_session=replace_session,
            secret_files={
                name: value.value_from.file
                for name, value in spec.env.items()
                if not isinstance(value, str)
            },
            profile=spec.profile,
            signals=spec.signals == "auto",
        )
    )
    b.take(trigger, reason, message, warning)
    b.update(
        launch_id=launch_id,
        launch_hash=desired.launch_hash,
        pid=None,
        started_at=b.now,
        generation=desired.generation,
        backoff_until=None,
        screen_changed_at=b.now,
        handled_prompt="",
        limit_lines=0,
        # A restart command resumes the conversation and redraws it: its limit lines are old.
        replaying=command != spec.command,
        pending_keys=(),
        keys_due=None,
        keys_sent_at=None,
        nudged_at=None,
        signal_activity="",
        signal_at=None,
        turn_started_at=None,
        activity=Activity.UNKNOWN,
        activity_since=None,
    )
    b.requeue(spec.startup.after)
