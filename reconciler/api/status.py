"""What the controller records about each agent: its state, counters and conditions.

Pure data. The controller is the only writer of these records (the CLI only reads them), and each
record is immutable: the planner returns a new one instead of editing what the store gave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from reconciler.api.activity import Activity


class AgentState(StrEnum):
    """What the supervisor is doing with an agent (the contract's states)."""

    STARTING = "Starting"
    RUNNING = "Running"
    STALE = "Stale"
    COOLING_DOWN = "CoolingDown"
    CRASH_LOOPING = "CrashLooping"
    AWAITING_HUMAN = "AwaitingHuman"
    STOPPED = "Stopped"


#: States in which the agent's process is supposed to be alive.
LIVE_STATES = (
    AgentState.STARTING,
    AgentState.RUNNING,
    AgentState.STALE,
    AgentState.AWAITING_HUMAN,
    AgentState.COOLING_DOWN,
)


class RunState(StrEnum):
    """Where a playbook run is (the contract's run states)."""

    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_HUMAN = "AwaitingHuman"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    """Kubernetes-style tri-state of a condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


#: The observations published on every agent, in display order.
CONDITION_TYPES = (
    "SessionReady",
    "Idle",
    "AwaitingInput",
    "Stalled",
    "RateLimited",
    "Attached",
    "GuardTripped",
    "ReconcileError",
)


@dataclass(frozen=True)
class Condition:
    """One observation about an agent, with when it last changed status."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: float


def holds(
    conditions: tuple[Condition, ...],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
) -> bool:
    """Whether `conditions` already say exactly this (`set_condition` would change nothing)."""
    for old in conditions:
        if old.type == type_:
            return (old.status, old.reason, old.message) == (status, reason, message)
    return False


def set_condition(conditions: tuple[Condition, ...], new: Condition) -> tuple[Condition, ...]:
    """Return `conditions` with `new` merged in by type.

    The transition time is kept while the status does not change, so `describe` shows how long a
    condition has held rather than when it was last looked at.
    """
    old = next((c for c in conditions if c.type == new.type), None)
    if old is not None and old.status == new.status:
        if (old.reason, old.message) == (new.reason, new.message):
            return conditions  # nothing to say: the common case on an idle pass
        new = replace(new, last_transition_time=old.last_transition_time)
    merged = {c.type: c for c in conditions}
    merged[new.type] = new
    return tuple(sorted(merged.values(), key=_condition_order))


def _condition_order(condition: Condition) -> int:
    try:
        return CONDITION_TYPES.index(condition.type)
    except ValueError:
        return len(CONDITION_TYPES)


@dataclass(frozen=True)
class AgentRecord:
    """Everything the controller remembers about one agent between passes and across restarts.

    `screen_digest`/`screen_changed_at` date the last real change of the screen (for Stale);
    `activity`/`activity_since` say what the agent does and since when (for idle.after);
    `screen_activity`/`screen_activity_since` what its screen alone says and since when (a
    screen that contradicts a signal long enough wins over it);
    `signals` says where the activity comes from (`hooks`: the CLI's own signals are wired, else
    `screen`); the `signal_*` fields are the latest of those signals folded in (up to id
    `signal_id`), `turn_started_at` the last turn start they reported, `session_id` the CLI's own
    session id; `conversation`: the agent took a turn under orch (a turn-start signal or a
    delivered message), so its restart command has a conversation to resume. `handled_prompt`
    is the prompt text already acted on, so it does not fire twice while it stays on screen;
    `limit_lines` counts the limit lines on screen that are old (there at the start, the resume
    or the last cooldown), so only a new one starts a cooldown;
    `replaying`: a restart is redrawing the conversation it resumed, so limit lines on screen are
    history (until orch types into it, or its screen settles);
    `cooldown_until` survives restarts of the agent and of the controller; `cooldown_retrying`:
    the limit came from a CLI that retries by itself (Gemini's debug log), so its end types no
    resume text; `pending_keys` are
    keys still to press, the next at `keys_due` (an Enter after typed text, keys of a rule with
    pauses between them); `keys_sent_at` is set (written ahead) while a prompt answer or the
    next pending key is on its way, so a controller that died meanwhile never sends them twice;
    `request_seen` is the last `orch restart|start` served, and `manual_restarts` counts those
    restarts apart from crashes.
    """

    name: str
    state: AgentState
    since: float
    reason: str = ""
    message: str = ""
    restarts: int = 0
    generation: int = 0
    launch_id: str = ""
    launch_hash: str = ""
    pid: int | None = None
    started_at: float | None = None
    exit_code: int | None = None
    crash_times: tuple[float, ...] = ()
    backoff: float = 0.0
    backoff_until: float | None = None
    screen_digest: str = ""
    screen_changed_at: float | None = None
    activity: Activity = Activity.UNKNOWN
    activity_since: float | None = None
    screen_activity: str = ""
    screen_activity_since: float | None = None
    handled_prompt: str = ""
    limit_lines: int = 0
    replaying: bool = False
    cooldown_until: float | None = None
    cooldown_retrying: bool = False
    nudged_at: float | None = None
    signals: str = "screen"
    signal_id: int = 0
    signal_activity: str = ""
    signal_at: float | None = None
    turn_started_at: float | None = None
    session_id: str = ""
    conversation: bool = False
    pending_keys: tuple[str, ...] = ()
    keys_due: float | None = None
    keys_sent_at: float | None = None
    request_seen: int = 0
    manual_restarts: int = 0
    conditions: tuple[Condition, ...] = field(default=())
    uid: str = ""  # the agent object this record is about ("" in records older than uids)

    @classmethod
    def new(cls, name: str, now: float) -> AgentRecord:
        """The record of an agent the controller has never handled: not yet started."""
        return cls(name=name, state=AgentState.STOPPED, since=now, reason="Pending")
