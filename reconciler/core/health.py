"""Pure: what a live agent's screen calls for — a cooldown, an answer, a human, a nudge, a restart.

Called by the planner for an agent whose process runs. It reads the screen verdict (from
`screen.classify`), the record and the clock, fires the machine's screen-driven edges
(Running <-> Stale, CoolingDown, AwaitingHuman) and asks for at most one keystroke action.
Texts already acted on are remembered, so a limit or a prompt that stays on screen fires once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, tzinfo

from reconciler.api.actions import PressEnter, SendKeys
from reconciler.api.activity import Activity
from reconciler.api.duration import human_duration
from reconciler.api.manifest import AgentSpec
from reconciler.api.status import AgentRecord, AgentState, ConditionStatus
from reconciler.core.agent_plan import AgentObservation, DesiredAgent, GuardReport, PlanBuilder
from reconciler.core.screen import ScreenVerdict, classify
from reconciler.core.usage import budget_key

#: Pause between typing a short text (answer, nudge, resume) and its Enter: agents that batch
#: fast input treat an Enter within ~120 ms of it as a newline.
TYPE_SETTLE_SECONDS = 0.2
#: The resume text when an agent has no rateLimit spec (cooling down for an account or profile).
DEFAULT_RESUME = "continue"
#: The cooldown when a limit names no reset time and the spec gives none.
DEFAULT_COOLDOWN_SECONDS = 900.0
#: How long an answer whose sending was never confirmed may take to show on screen.
ANSWER_GRACE_SECONDS = 1.0


def read_screen(
    b: PlanBuilder, desired: DesiredAgent, observed: AgentObservation
) -> ScreenVerdict | None:
    """Classify the screen and date its last real change; forget handled texts that left it.

    The controller passes the verdict it keeps for a screen that has not changed (classifying
    twenty unchanged screens every second is most of an idle pass); without one it is made here.
    """
    if observed.screen is None:
        return None
    verdict = observed.verdict or classify(
        observed.screen, desired.agent.spec, local_time(b.now, b.ctx.timezone)
    )
    record = b.record
    if verdict.digest != record.screen_digest or record.screen_changed_at is None:
        b.update(screen_digest=verdict.digest, screen_changed_at=b.now)
    if record.state is not AgentState.AWAITING_HUMAN:
        b.update(handled_prompt=_follow_prompt(record.handled_prompt, verdict))
    limit_text = verdict.limit.text if verdict.limit else ""
    if record.handled_limit and limit_text != record.handled_limit:
        b.update(handled_limit="")
    return verdict


def _follow_prompt(handled: str, verdict: ScreenVerdict) -> str:
    """The handled prompt as it now reads on screen, or "" once it is gone.

    An answer typed at a prompt lands on the prompt's own line (`Proceed? [y/N] n`): that line
    is still the prompt already handled, and it is tracked as it grows, so that only a prompt
    printed anew (even with the same words) fires again.
    """
    seen = verdict.prompt.text if verdict.prompt else ""
    return seen if handled and seen.startswith(handled) else ""


def finish_typing(b: PlanBuilder) -> bool:
    """Press the Enter a typed text is waiting for; True while one is pending."""
    due = b.record.enter_due
    if due is None:
        return False
    if b.now < due:
        b.requeue(due - b.now)
        return True
    b.actions.append(PressEnter(b.record.name))
    b.update(keys_sent_at=b.now)  # written ahead; `enter_due` is cleared once it was pressed
    return True


def plan_health(b: PlanBuilder, desired: DesiredAgent, verdict: ScreenVerdict | None) -> bool:
    """Screen-driven edges for a live agent past start-up; True when it asks for a restart."""
    spec = desired.agent.spec
    state = b.record.state
    if state is AgentState.COOLING_DOWN:
        _plan_cooling(b, spec, verdict)
        return False
    if state is AgentState.AWAITING_HUMAN:
        _plan_awaiting(b, verdict)
        return False
    if _start_cooldown(b, spec, verdict) or _handle_prompt(b, spec, verdict):
        return False
    if state is AgentState.STALE:
        _plan_stale(b, spec)
        return False
    return _check_stall(b, spec)


def local_time(timestamp: float, timezone: tzinfo | None) -> datetime:
    """An aware datetime in `timezone` (the machine's when None): what reset times are read in."""
    return datetime.fromtimestamp(timestamp, timezone).astimezone(timezone)


def _limits_watched(spec: AgentSpec) -> bool:
    """Limit texts count for agents with a rateLimit spec or a real agent CLI profile.

    A generic program that merely prints "rate limit" (say, while coding one) is not cooled down.
    """
    return spec.rate_limit is not None or spec.profile != "generic"


def _account(spec: AgentSpec) -> str | None:
    return spec.rate_limit.account if spec.rate_limit else None


def _deadline(b: PlanBuilder, spec: AgentSpec) -> float:
    """The cooldown deadline in force: the agent's own, its account's or its budget's, whichever
    is latest."""
    account = _account(spec)
    shared = b.ctx.cooldowns.get(account, 0.0) if account else 0.0
    return max(b.record.cooldown_until or 0.0, shared, _budget_deadline(b))


def _budget_deadline(b: PlanBuilder) -> float:
    """When a spent budget's window frees up (0 when no budget is spent)."""
    return b.ctx.cooldowns.get(budget_key(b.record.name), 0.0)


def _local(b: PlanBuilder, timestamp: float) -> str:
    """A deadline as people read it, in the pass's time zone (as a number when out of range)."""
    try:
        return local_time(timestamp, b.ctx.timezone).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, ValueError, OSError):
        return f"{timestamp:.0f} (epoch seconds)"


def _start_cooldown(b: PlanBuilder, spec: AgentSpec, verdict: ScreenVerdict | None) -> bool:
    """Running/Stale -> CoolingDown: a new limit text on screen, or a deadline still in force."""
    limit = verdict.limit if verdict and _limits_watched(spec) else None
    account = _account(spec)
    if limit is not None and limit.text != b.record.handled_limit:
        cooldown = spec.rate_limit.cooldown if spec.rate_limit else DEFAULT_COOLDOWN_SECONDS
        reset = limit.reset_at.timestamp() if limit.reset_at else None
        deadline = reset if reset is not None and reset > b.now else b.now + cooldown
        b.update(handled_limit=limit.text, cooldown_until=deadline)
        if account:
            b.cooldowns[account] = max(deadline, b.ctx.cooldowns.get(account, 0.0))
        named = "the reset time on screen" if reset is not None else "the spec's cooldown"
        b.take(
            "rate_limit",
            "RateLimited",
            f"limit on screen: {limit.text!r}; cooling down until {_local(b, deadline)} ({named})",
            warning=True,
        )
        b.requeue(deadline - b.now)
        return True
    deadline = _deadline(b, spec)
    if deadline > b.now:
        own = b.record.cooldown_until or 0.0
        budget = deadline == _budget_deadline(b) and deadline > own
        shared = not budget and account is not None and deadline > own
        b.update(cooldown_until=deadline)
        reason, why = (
            ("BudgetExhausted", "its budget is spent")
            if budget
            else ("AccountCoolingDown", f"account {account} is cooling down")
            if shared
            else ("CooldownContinues", "the cooldown is still in force")
        )
        b.take("rate_limit", reason, f"{why}; waiting until {_local(b, deadline)}", warning=True)
        b.requeue(deadline - b.now)
        return True
    return False


def _plan_cooling(b: PlanBuilder, spec: AgentSpec, verdict: ScreenVerdict | None) -> None:
    """CoolingDown -> Running once the deadline passed; the resume text is typed.

    Not into a prompt, though (a limit menu asking what to do): that is left to the prompt rules
    or to a human on the next pass.
    """
    deadline = _deadline(b, spec)
    if b.now < deadline:
        b.requeue(deadline - b.now)
        return
    account = _account(spec)
    if account and account in b.ctx.cooldowns:
        b.cooldowns[account] = None
    if budget_key(b.record.name) in b.ctx.cooldowns:
        b.cooldowns[budget_key(b.record.name)] = None
    resume = spec.rate_limit.resume if spec.rate_limit else DEFAULT_RESUME
    b.update(cooldown_until=None)
    if verdict is not None and verdict.prompt is not None:
        b.take("cooled", "CooldownEnded", "cooldown over; a prompt is on screen, no resume sent")
        return
    b.take("cooled", "CooldownEnded", f"cooldown over; sending {resume!r}")
    type_text(b, resume)


def _handle_prompt(b: PlanBuilder, spec: AgentSpec, verdict: ScreenVerdict | None) -> bool:
    """A new prompt: answer it by rule, or Running -> AwaitingHuman."""
    prompt = verdict.prompt if verdict else None
    if prompt is None or prompt.text == b.record.handled_prompt:
        return False
    b.update(handled_prompt=prompt.text)
    if prompt.rule_index is not None and not prompt.blocked:
        rule = spec.prompts[prompt.rule_index]
        b.update(keys_sent_at=b.now)  # written ahead of the keys; cleared once they went out
        if rule.keys:
            b.actions.append(SendKeys(b.record.name, keys=tuple(rule.keys)))
            answer = "keys " + " ".join(rule.keys)
        else:
            answer = repr(rule.answer or "")
            if rule.enter:
                type_text(b, rule.answer or "")
            else:
                b.actions.append(SendKeys(b.record.name, literal=rule.answer or ""))
        b.event("Answered", f"answered {answer} to: {prompt.text}")
        return True
    blocked = " (a menu no rule may answer)" if prompt.blocked else ""
    b.take(
        "await_human", "AwaitingHuman", f"waiting for a human: {prompt.text}{blocked}", warning=True
    )
    return True


def resolve_keys(b: PlanBuilder, verdict: ScreenVerdict | None, digest_before: str) -> bool:
    """Keys written ahead but never settled: the controller died while sending them.

    The keys are an answer to a prompt, or the Enter after a typed text (then `enter_due` is at
    or before `keys_sent_at`). The screen decides: if it changed since they were intended, they
    arrived; if it still shows the same screen after ANSWER_GRACE_SECONDS, they never did and are
    sent again (the prompt answered again, or Enter pressed again). True while waiting to tell.
    """
    sent = b.record.keys_sent_at
    if sent is None or verdict is None:
        return False
    enter = _enter_in_flight(b.record)
    if verdict.digest != digest_before:
        b.update(keys_sent_at=None, enter_due=None if enter else b.record.enter_due)
        return False
    if b.now - sent < ANSWER_GRACE_SECONDS:
        b.requeue(ANSWER_GRACE_SECONDS - (b.now - sent))
        return True
    if enter:
        b.update(keys_sent_at=None)
        b.event("EnterRetried", "an Enter cut off by a controller restart never arrived; again")
    else:
        b.update(keys_sent_at=None, handled_prompt="", enter_due=None)
        b.event("AnswerRetried", "an answer cut off by a controller restart never arrived; again")
    return False


def settle_keys(record: AgentRecord, failed: bool) -> AgentRecord:
    """The record once written-ahead keys went out, or tmux refused them (then they are sent
    again: a refused answer answers the prompt anew, a refused Enter stays due)."""
    if record.keys_sent_at is None:
        return record
    if _enter_in_flight(record):
        return replace(record, keys_sent_at=None, enter_due=record.enter_due if failed else None)
    if failed:
        return replace(record, keys_sent_at=None, handled_prompt="", enter_due=None)
    return replace(record, keys_sent_at=None)


def _enter_in_flight(record: AgentRecord) -> bool:
    """The keys in flight are the Enter after a typed text (not an answer's own keys)."""
    due, sent = record.enter_due, record.keys_sent_at
    return due is not None and sent is not None and due <= sent


def _plan_awaiting(b: PlanBuilder, verdict: ScreenVerdict | None) -> None:
    """AwaitingHuman -> Running once the screen moved on and the prompt is gone."""
    record = b.record
    moved = record.screen_changed_at is not None and record.screen_changed_at > record.since
    still = (
        verdict is not None
        and verdict.prompt is not None
        and (verdict.prompt.text == record.handled_prompt)
    )
    if moved and not still:
        b.update(handled_prompt=_follow_prompt(record.handled_prompt, verdict) if verdict else "")
        b.take("answered", "PromptAnswered", "the screen moved on: someone answered")


def _check_stall(b: PlanBuilder, spec: AgentSpec) -> bool:
    """Running -> Stale when the screen has not changed for stale.after; True: restart it."""
    stale = spec.stale
    changed = b.record.screen_changed_at
    if stale is None or changed is None:
        return False
    # signals: an agent that says it is idle or asking is not stuck, and a signal is progress.
    if b.record.activity in (Activity.IDLE, Activity.WAITING):
        return False
    changed = max(changed, b.record.signal_at or changed)
    idle = b.now - changed
    if idle < stale.after:
        b.requeue(stale.after - idle)
        return False
    b.take(
        "stall",
        "Stalled",
        f"screen unchanged for {human_duration(idle)}; action {stale.action}",
        warning=True,
    )
    if stale.action == "nudge":
        _nudge(b, spec)
    return stale.action == "restart"


def _plan_stale(b: PlanBuilder, spec: AgentSpec) -> None:
    """Stale -> Running when the screen moves; meanwhile nudge again every stale.after."""
    record = b.record
    stale = spec.stale
    if record.screen_changed_at is not None and record.screen_changed_at > record.since:
        b.take("recover", "Recovered", "the screen moved again")
        return
    if record.signal_at is not None and record.signal_at > record.since:
        b.take("recover", "Recovered", "the agent signalled again")
        return
    if stale is None or stale.action != "nudge":
        return
    last = record.nudged_at or record.since
    if b.now - last >= stale.after:
        _nudge(b, spec)
    else:
        b.requeue(stale.after - (b.now - last))


def _nudge(b: PlanBuilder, spec: AgentSpec) -> None:
    text = spec.stale.nudge if spec.stale else DEFAULT_RESUME
    b.update(nudged_at=b.now)
    b.event("Nudged", f"sent {text!r} to a silent agent")
    type_text(b, text)


def type_text(b: PlanBuilder, text: str) -> None:
    """Type a short text now and press Enter after TYPE_SETTLE_SECONDS (next pass)."""
    b.actions.append(SendKeys(b.record.name, literal=text))
    b.update(enter_due=b.now + TYPE_SETTLE_SECONDS)
    b.requeue(TYPE_SETTLE_SECONDS)


#: Conditions that hold exactly while the agent is in one state: type, state, reason when True,
#: reason and message when False (when True, the message is the state's own).
STATE_CONDITIONS = (
    (
        "AwaitingInput",
        AgentState.AWAITING_HUMAN,
        "PromptShown",
        "NoPrompt",
        "no prompt waiting for a human",
    ),
    ("Stalled", AgentState.STALE, "ScreenUnchanged", "ScreenMoving", "the screen changes"),
    ("RateLimited", AgentState.COOLING_DOWN, "UsageLimit", "NoLimit", "no limit in force"),
)


def publish_conditions(b: PlanBuilder, alive: bool, guard: GuardReport | None) -> None:
    """SessionReady, AwaitingInput, Stalled, RateLimited (and GuardTripped for guarded agents)."""
    record = b.record
    state = record.state
    if state is AgentState.STARTING:
        b.condition("SessionReady", ConditionStatus.FALSE, "Starting", "the agent is starting")
    elif alive and state is not AgentState.STOPPED:
        b.condition("SessionReady", ConditionStatus.TRUE, "Running", "the agent's process runs")
    else:
        b.condition(
            "SessionReady",
            ConditionStatus.FALSE,
            record.reason or "NotRunning",
            record.message or "no process",
        )
    for type_, held_in, reason_true, reason_false, message_false in STATE_CONDITIONS:
        held = state is held_in
        if held and type_ == "RateLimited" and record.cooldown_until:
            message = f"until {_local(b, record.cooldown_until)}"
        else:
            message = record.message if held else message_false
        b.condition(
            type_, ConditionStatus(str(held)), reason_true if held else reason_false, message
        )
    if guard is not None:
        inactive = guard.reason == "GuardInactive"
        b.condition(
            "GuardInactive",
            ConditionStatus(str(inactive)),
            guard.reason if inactive else "GitRepository",
            guard.message if inactive else "the guards watch a git work tree",
        )
        b.condition(
            "GuardTripped", ConditionStatus(str(guard.tripped)), guard.reason, guard.message
        )
