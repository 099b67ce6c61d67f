"""Pure: what a live agent's screen calls for — a cooldown, an answer, a human, a nudge, a restart.

Called by the planner for an agent whose process runs. It reads the screen verdict (from
`screen.classify`), the record and the clock, fires the machine's screen-driven edges
(Running <-> Stale, CoolingDown, AwaitingHuman) and asks for at most one keystroke action.
A prompt already acted on is remembered, so it fires once while it stays on screen; limit lines
are counted, so only a limit line that is new since the start, the resume or the last cooldown
starts one. Quiet is stuck only for a busy agent: an idle one is never Stale (`idle` may nudge).
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.api.actions import SendKeys
from reconciler.api.activity import Activity
from reconciler.api.duration import human_duration
from reconciler.api.localtime import local_time
from reconciler.api.manifest import AgentSpec
from reconciler.api.status import AgentRecord, AgentState, ConditionStatus
from reconciler.core.activity import counts_as_busy
from reconciler.core.agent_plan import AgentObservation, DesiredAgent, GuardReport, PlanBuilder
from reconciler.core.cli_log import LogLimit
from reconciler.core.screen import PromptSeen, ScreenVerdict
from reconciler.core.usage import budget_key

#: Pause between typing a short text (answer, nudge, resume) and its Enter: agents that batch
#: fast input treat an Enter within ~120 ms of it as a newline.
TYPE_SETTLE_SECONDS = 0.2
#: The resume text when an agent has no rateLimit spec (cooling down for an account or profile).
DEFAULT_RESUME = "continue"
#: The cooldown when a limit names no reset time and the spec gives none.
DEFAULT_COOLDOWN_SECONDS = 900.0
#: How long an answer or key whose sending was never confirmed may take to show on screen.
ANSWER_GRACE_SECONDS = 1.0
#: Pause between the keys of one rule: dialogs that redraw after a key drop a key sent at once
#: (Claude's API-key dialog after `Up`).
KEY_PAUSE_SECONDS = 0.3
#: A restart that resumes a conversation redraws it, old limit lines included: that replay is
#: over once the screen, having drawn something, stays unchanged this long (or orch types).
REPLAY_QUIET_SECONDS = 2.0


def read_screen(
    b: PlanBuilder, observed: AgentObservation, input_drawn: bool
) -> ScreenVerdict | None:
    """Date the screen's last real change and forget handled texts that left it; `input_drawn`:
    the CLI's input is on screen (its ready pattern), which ends a restart's replay.

    The verdict is the controller's: it classifies each screen once per spec generation and
    cursor row (`classify`), and the planner only reads it, so the screen is classified in one
    place.
    """
    verdict = observed.verdict
    if verdict is None:
        return None
    record = b.record
    if verdict.digest != record.screen_digest or record.screen_changed_at is None:
        b.update(screen_digest=verdict.digest, screen_changed_at=b.now)
    if record.state is not AgentState.AWAITING_HUMAN:
        b.update(handled_prompt=_follow_prompt(record.handled_prompt, verdict))
    drawn = input_drawn and bool(observed.screen and observed.screen.strip())
    if record.replaying and drawn and _replay_over(b):
        b.update(replaying=False)
    limit_lines = verdict.limit.lines if verdict.limit else 0
    if limit_lines < b.record.limit_lines or b.record.replaying:
        # Lines that scrolled away are no longer counted; replayed history is all old.
        b.update(limit_lines=limit_lines)
    return verdict


def _replay_over(b: PlanBuilder) -> bool:
    """Whether a restart finished redrawing its conversation: past start-up, the screen drew
    something and then stayed unchanged for REPLAY_QUIET_SECONDS. The caller checks that what it
    drew is the CLI's input: Claude shows a blank screen, or only a notice about tmux, for
    seconds after `--continue`, then the whole conversation and its input at once."""
    record = b.record
    changed, started = record.screen_changed_at, record.started_at
    return (
        record.state is not AgentState.STARTING
        and changed is not None
        and started is not None
        and changed > started
        and b.now - changed >= REPLAY_QUIET_SECONDS
    )


def _follow_prompt(handled: str, verdict: ScreenVerdict) -> str:
    """The handled prompt as it now reads on screen, or "" once it is gone.

    An answer typed at a prompt lands on the prompt's own line (`Proceed? [y/N] n`): that line
    is still the prompt already handled, and it is tracked as it grows, so that only a prompt
    printed anew (even with the same words) fires again.
    """
    seen = verdict.prompt.text if verdict.prompt else ""
    return seen if handled and seen.startswith(handled) else ""


def finish_typing(b: PlanBuilder) -> bool:
    """Press the next pending key once it is due (one key per pass, so a pause between keys never
    blocks the loop); True while keys are pending.

    Written ahead: the key stays pending, with `keys_sent_at` set, until the controller saw it go
    out (`settle_keys`), so a controller killed in between resolves it from the screen
    (`resolve_keys`) instead of pressing it twice.
    """
    keys, due = b.record.pending_keys, b.record.keys_due
    if not keys:
        return False
    if due is not None and b.now < due:
        b.requeue(due - b.now)
        return True
    b.actions.append(SendKeys(b.record.name, keys=keys[:1]))
    b.update(keys_sent_at=b.now)
    if len(keys) > 1:
        b.requeue(KEY_PAUSE_SECONDS)
    return True


def _press_later(b: PlanBuilder, keys: tuple[str, ...], pause: float) -> None:
    """Leave `keys` for the next passes, the first after `pause`."""
    b.update(pending_keys=keys, keys_due=b.now + pause if keys else None)
    if keys:
        b.requeue(pause)


def plan_health(
    b: PlanBuilder,
    desired: DesiredAgent,
    verdict: ScreenVerdict | None,
    hands_off: bool = False,
    log_limit: LogLimit | None = None,
) -> bool:
    """Screen-driven edges for a live agent past start-up; True when it asks for a restart.

    `hands_off`: a person is attached, so no keys are sent (only their own answer is noticed).
    `log_limit`: a limit in the new lines of the CLI's own debug log (`core.cli_log`).
    """
    spec = desired.agent.spec
    state = b.record.state
    if log_limit is not None and not _limits_watched(spec):
        log_limit = None
    if state is AgentState.COOLING_DOWN:
        if log_limit is not None:
            _limit_again(b, spec, log_limit)
        _plan_cooling(b, spec, verdict)
        return False
    if state is AgentState.AWAITING_HUMAN:
        _plan_awaiting(b, spec, verdict, may_answer=not hands_off)
        return False
    if log_limit is not None:
        _cool_for_log(b, spec, log_limit)
        return False
    if _start_cooldown(b, spec, verdict) or _handle_prompt(b, spec, verdict):
        return False
    if state is AgentState.STALE:
        _plan_stale(b, spec)
        return False
    if _plan_idle(b, spec):
        return False
    return _check_stall(b, spec)


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
    return local_time(timestamp, b.ctx.timezone)


def _log_deadline(b: PlanBuilder, spec: AgentSpec, limit: LogLimit) -> tuple[float, str]:
    """Until when a limit from the CLI's log cools the agent down, and what that rests on."""
    if limit.until is not None and limit.until > b.now:
        return limit.until, "the CLI's own retry" if limit.retrying else "the reset time in its log"
    cooldown = spec.rate_limit.cooldown if spec.rate_limit else DEFAULT_COOLDOWN_SECONDS
    return b.now + cooldown, "the spec's cooldown"


def _cool_for_log(b: PlanBuilder, spec: AgentSpec, limit: LogLimit) -> None:
    """Running/Stale -> CoolingDown: the CLI's debug log reported a limit.

    A CLI that retries by itself (Gemini) is CoolingDown until its own retry had time to
    answer; a failed retry is a new entry in its log and extends the cooldown (`_limit_again`).
    """
    deadline, named = _log_deadline(b, spec, limit)
    account = _account(spec)
    b.update(cooldown_until=deadline, cooldown_retrying=limit.retrying)
    if account:
        b.cooldowns[account] = max(deadline, b.ctx.cooldowns.get(account, 0.0))
    b.take(
        "rate_limit",
        "RateLimited",
        f"limit in the CLI's log: {limit.text!r}; cooling down until {_local(b, deadline)} "
        f"({named})",
        warning=True,
    )
    b.requeue(deadline - b.now)


def _limit_again(b: PlanBuilder, spec: AgentSpec, limit: LogLimit) -> None:
    """A CoolingDown agent's CLI reported the limit again (its own retry failed): wait on."""
    deadline, named = _log_deadline(b, spec, limit)
    if deadline <= (b.record.cooldown_until or 0.0):
        return
    b.update(cooldown_until=deadline, cooldown_retrying=limit.retrying)
    account = _account(spec)
    if account:
        b.cooldowns[account] = max(deadline, b.ctx.cooldowns.get(account, 0.0))
    b.event(
        "RateLimitedAgain",
        f"limit in the CLI's log again: {limit.text!r}; cooling down until "
        f"{_local(b, deadline)} ({named})",
    )


def _start_cooldown(b: PlanBuilder, spec: AgentSpec, verdict: ScreenVerdict | None) -> bool:
    """Running/Stale -> CoolingDown: a new limit text on screen, or a deadline still in force."""
    limit = verdict.limit if verdict and _limits_watched(spec) else None
    account = _account(spec)
    if limit is not None and limit.lines > b.record.limit_lines:
        cooldown = spec.rate_limit.cooldown if spec.rate_limit else DEFAULT_COOLDOWN_SECONDS
        reset = limit.reset_at.timestamp() if limit.reset_at else None
        deadline = reset if reset is not None and reset > b.now else b.now + cooldown
        b.update(limit_lines=limit.lines, cooldown_until=deadline, cooldown_retrying=False)
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
    # The limit still on screen is old now: only one printed after the resume counts.
    still_shown = verdict.limit.lines if verdict and verdict.limit else 0
    retrying = b.record.cooldown_retrying
    b.update(cooldown_until=None, limit_lines=still_shown, cooldown_retrying=False)
    if retrying:
        # The CLI retried the refused turn by itself: a resume text would be a second request.
        b.take("cooled", "CooldownEnded", "cooldown over; the CLI retried by itself: no resume")
        return
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
        b.event("Answered", f"answered {_answer(b, spec, prompt.rule_index)} to: {prompt.text}")
        return True
    blocked = " (a menu no rule may answer)" if prompt.blocked else ""
    b.take(
        "await_human", "AwaitingHuman", f"waiting for a human: {prompt.text}{blocked}", warning=True
    )
    return True


def resolve_keys(b: PlanBuilder, verdict: ScreenVerdict | None, digest_before: str) -> bool:
    """Keys written ahead but never settled: the controller died while sending them.

    The keys are an answer to a prompt (its first key or its text), or the next pending key (an
    Enter after a typed text, a rule's later key: then `keys_due` is at or before
    `keys_sent_at`). The screen decides: if it changed since they were intended, they arrived;
    if it still shows the same screen after ANSWER_GRACE_SECONDS, they never did and are sent
    again (the prompt answered anew, or the key pressed again). True while waiting to tell.
    """
    record = b.record
    sent = record.keys_sent_at
    if sent is None or verdict is None:
        return False
    if verdict.digest == digest_before and b.now - sent < ANSWER_GRACE_SECONDS:
        b.requeue(ANSWER_GRACE_SECONDS - (b.now - sent))
        return True
    lost = verdict.digest == digest_before
    if lost and _key_in_flight(record):
        key = record.pending_keys[0]
        b.event("KeyRetried", f"key {key} cut off by a controller restart never arrived; again")
    elif lost:
        b.event("AnswerRetried", "an answer cut off by a controller restart never arrived; again")
    settled = settle_keys(record, failed=lost)
    b.update(
        keys_sent_at=None,
        handled_prompt=settled.handled_prompt,
        pending_keys=settled.pending_keys,
        keys_due=settled.keys_due,
    )
    if settled.keys_due is not None:
        b.requeue(max(settled.keys_due - b.now, 0.0))
    return False


def settle_keys(record: AgentRecord, failed: bool) -> AgentRecord:
    """The record once written-ahead keys went out, or tmux refused them (then they are sent
    again: a refused answer answers the prompt anew, a refused pending key stays pending)."""
    sent = record.keys_sent_at
    if sent is None:
        return record
    if _key_in_flight(record):
        if failed:
            return replace(record, keys_sent_at=None)
        rest = record.pending_keys[1:]
        due = sent + KEY_PAUSE_SECONDS if rest else None
        return replace(record, keys_sent_at=None, pending_keys=rest, keys_due=due)
    if failed:
        return replace(record, keys_sent_at=None, handled_prompt="", pending_keys=(), keys_due=None)
    return replace(record, keys_sent_at=None)


def _key_in_flight(record: AgentRecord) -> bool:
    """The keys in flight are the next pending key (not an answer, whose own later keys are due
    after it was sent)."""
    due, sent = record.keys_due, record.keys_sent_at
    return bool(record.pending_keys) and sent is not None and (due is None or due <= sent)


def _answer(b: PlanBuilder, spec: AgentSpec, rule_index: int) -> str:
    """Send rule `rule_index`'s answer (keys one per pass, KEY_PAUSE_SECONDS apart); says what."""
    rule = spec.prompts[rule_index]
    # Written ahead of the keys; cleared once they went out (settle_keys).
    b.update(replaying=False, keys_sent_at=b.now)
    if rule.keys:
        b.actions.append(SendKeys(b.record.name, keys=tuple(rule.keys[:1])))
        _press_later(b, tuple(rule.keys[1:]), KEY_PAUSE_SECONDS)
        return "keys " + " ".join(rule.keys)
    if rule.enter:
        type_text(b, rule.answer or "")
    else:
        b.actions.append(SendKeys(b.record.name, literal=rule.answer or ""))
    return repr(rule.answer or "")


def _plan_awaiting(
    b: PlanBuilder, spec: AgentSpec, verdict: ScreenVerdict | None, may_answer: bool
) -> None:
    """AwaitingHuman -> Running once the screen moved on and the prompt is gone, or once a rule
    answers the prompt (rules are read again whenever the manifest changes; not while a person
    is attached: `may_answer` False)."""
    record = b.record
    prompt: PromptSeen | None = verdict.prompt if verdict else None
    still = prompt is not None and prompt.text == record.handled_prompt
    rule = prompt.rule_index if prompt is not None and not prompt.blocked else None
    if may_answer and still and prompt is not None and rule is not None:
        answer = _answer(b, spec, rule)
        b.take("answered", "Answered", f"answered {answer} by a rule to: {prompt.text}")
        return
    moved = record.screen_changed_at is not None and record.screen_changed_at > record.since
    if moved and not still:
        b.update(handled_prompt=_follow_prompt(record.handled_prompt, verdict) if verdict else "")
        b.take("answered", "PromptAnswered", "the screen moved on: someone answered")


def _plan_idle(b: PlanBuilder, spec: AgentSpec) -> bool:
    """An idle agent: nudged every idle.after when the spec asks for it; True while idle."""
    record = b.record
    if record.activity is not Activity.IDLE:
        return False
    idle = spec.idle
    if idle is None or idle.action == "none" or record.activity_since is None:
        return True
    since = max(record.activity_since, record.nudged_at or 0.0)
    waited = b.now - since
    if waited < idle.after:
        b.requeue(idle.after - waited)
        return True
    b.update(nudged_at=b.now)
    b.event("IdleNudged", f"idle for {human_duration(waited)}; sent {idle.nudge!r}")
    type_text(b, idle.nudge)
    return True


def _check_stall(b: PlanBuilder, spec: AgentSpec) -> bool:
    """Running -> Stale when a busy (or unknown) agent's screen has not changed for stale.after;
    True: restart it."""
    stale = spec.stale
    changed = b.record.screen_changed_at
    if stale is None or changed is None or not counts_as_busy(b.record.activity):
        return False
    # Quiet counts from the latest of the last change, the moment the agent became busy and its
    # last signal (a signal is progress).
    changed = max(changed, b.record.activity_since or changed, b.record.signal_at or changed)
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
    """Stale -> Running when the screen moves or the agent is idle; meanwhile nudge again every
    stale.after."""
    record = b.record
    stale = spec.stale
    if record.screen_changed_at is not None and record.screen_changed_at > record.since:
        b.take("recover", "Recovered", "the screen moved again")
        return
    if record.signal_at is not None and record.signal_at > record.since:
        b.take("recover", "Recovered", "the agent signalled again")
        return
    if record.activity is Activity.IDLE:
        b.take("recover", "Recovered", "the agent waits at its empty input")
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
    b.update(replaying=False)
    _press_later(b, ("Enter",), TYPE_SETTLE_SECONDS)


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


#: The Idle condition's reason and message for each activity.
IDLE_CONDITION = {
    Activity.IDLE: ("EmptyInput", "the agent waits at its empty input for a task"),
    Activity.BUSY: ("Busy", "a turn is in progress"),
    Activity.WAITING: ("Waiting", "a question waits for a human"),
    Activity.UNKNOWN: ("Unknown", "the screen does not tell whether a turn is in progress"),
}


def publish_conditions(b: PlanBuilder, alive: bool, guard: GuardReport | None) -> None:
    """SessionReady, Idle, AwaitingInput, Stalled, RateLimited (and GuardTripped for guarded
    agents)."""
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
    activity = record.activity if alive else Activity.UNKNOWN
    reason, message = IDLE_CONDITION[activity]
    b.condition("Idle", ConditionStatus(str(activity is Activity.IDLE)), reason, message)
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
