"""What an agent CLI's own signals mean: its hooks and notify commands, read per CLI.

Pure (stdlib only, no pydantic: `orch signal` imports this on every hook call). A signal is one
call of `orch signal AGENT EVENT [--json …]` made by the CLI's hook; `interpret` turns the
event name and its payload into what orch acts on (busy, idle, waiting, a turn that started, a
session id), `fold` keeps the latest of that on the agent's record, and `weigh` sets it against
the screen, which stays the fallback and the cross-check: a signal the screen has contradicted
for a while never freezes an agent's activity.

Event names and payloads are those of the installed CLIs (e2e/FINDINGS-*.md, payload samples in
tests/fixtures/signals/<cli>/): Claude Code 2.1 hooks, Codex 0.171 hooks and `notify`, Gemini
CLI 0.61 hooks, aider 0.86 `--notifications-command` (no payload).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from reconciler.api.activity import Activity

#: An event name as `orch signal` accepts it (the CLIs' hook names and orch's own).
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
#: A session id orch records (and may one day pass to a resume flag): the CLIs use UUIDs.
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: Payload fields orch keeps (everything else, prompts and replies included, is dropped).
KEPT_FIELDS = (
    "hook_event_name",
    "session_id",
    "thread-id",
    "turn-id",
    "type",
    "source",
    "reason",
    "notification_type",
    "error",
    "tool_name",
    "transcript_path",
    "message",
)
#: Longest kept value; longer ones are cut (hostile or just huge).
FIELD_CHARS = 300
#: A screen that contradicts a signal for this long wins over it.
CROSSCHECK_SECONDS = 20.0
#: A Waiting signal is over once the screen moved this long after it (the prompt was answered).
WAITING_GRACE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Meaning:
    """What one signal says: an activity (None: says nothing about it), whether a turn started
    (a message was taken), the CLI's session id if it names one, and an error it reports."""

    activity: Activity | None = None
    turn_started: bool = False
    session_id: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class AgentSignal:
    """One signal as stored: its id (ordering), agent, event, kept payload fields, time."""

    id: int
    agent: str
    event: str
    payload: Mapping[str, str]
    at: float


@dataclass(frozen=True, slots=True)
class SignalState:
    """The latest of an agent's signals that the controller folded in (kept on its record)."""

    last_id: int = 0
    activity: Activity | None = None
    activity_at: float | None = None
    turn_started_at: float | None = None
    session_id: str = ""


def compact(payload: Any) -> dict[str, str]:
    """The fields orch keeps from a hook payload, each a string of at most FIELD_CHARS."""
    if not isinstance(payload, Mapping):
        return {}
    kept = {}
    for name in KEPT_FIELDS:
        value = payload.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            kept[name] = str(value)[:FIELD_CHARS]
    return kept


@dataclass(frozen=True, slots=True)
class Reading:
    """What one event of a CLI says: an activity (None: nothing about it), whether a turn
    started, and whether it reports an error (named by the payload's `error`)."""

    activity: Activity | None = None
    turn_started: bool = False
    error: bool = False


@dataclass(frozen=True, slots=True)
class SignalTable:
    """How one CLI's signals read. `events` maps an event name, or `event:kind` for events
    whose payload field `kinds[event]` says what kind they are, to what it says; an event or
    kind not listed says nothing. The session id is the payload's `session_field` (per event in
    `session_fields`; None: the CLI names no session). `foreign` events may come from another
    session of the CLI: they count only once the agent's session is known and they name it."""

    events: Mapping[str, Reading]
    kinds: Mapping[str, str] = field(default_factory=dict)
    session_field: str | None = "session_id"
    session_fields: Mapping[str, str] = field(default_factory=dict)
    foreign: frozenset[str] = frozenset()


_BUSY, _IDLE, _WAITING = Reading(Activity.BUSY), Reading(Activity.IDLE), Reading(Activity.WAITING)
_TURN = Reading(Activity.BUSY, turn_started=True)
_ENDED = Reading(Activity.UNKNOWN)

#: Per profile: how its CLI's signals read (payload samples in tests/fixtures/signals/<cli>/).
SIGNAL_TABLES: Mapping[str, SignalTable] = MappingProxyType(
    {
        "claude": SignalTable(
            {
                "SessionStart": _IDLE,
                "UserPromptSubmit": _TURN,
                "PreToolUse": _BUSY,
                "PostToolUse": _BUSY,
                "PermissionRequest": _WAITING,
                "Notification:permission_prompt": _WAITING,
                "Notification:idle_prompt": _IDLE,
                "Stop": _IDLE,
                "StopFailure": Reading(Activity.IDLE, error=True),
                "SessionEnd": _ENDED,
            },
            kinds={"Notification": "notification_type"},
        ),
        "codex": SignalTable(
            {
                "SessionStart": Reading(),  # fires at the first prompt, not at start-up
                "UserPromptSubmit": _TURN,
                "PreToolUse": _BUSY,
                "PostToolUse": _BUSY,
                "PermissionRequest": _WAITING,
                "Stop": _IDLE,
                "SessionEnd": _ENDED,
                "notify:agent-turn-complete": _IDLE,
            },
            kinds={"notify": "type"},
            session_fields={"notify": "thread-id"},
            foreign=frozenset({"notify"}),  # also fires for Codex's internal title thread
        ),
        "gemini": SignalTable(
            {
                "SessionStart": _IDLE,
                "BeforeAgent": _TURN,
                "BeforeTool": _BUSY,
                "AfterTool": _BUSY,
                "Notification:ToolPermission": _WAITING,
                "AfterAgent": _IDLE,
                "SessionEnd": _ENDED,
            },
            kinds={"Notification": "notification_type"},
        ),
        # aider runs its notifications command (no payload) when it waits for the user after a
        # model call: at its `>` input or at a question; the screen tells which (a live prompt
        # makes it Waiting).
        "aider": SignalTable({"notify": _IDLE}, session_field=None),
    }
)


def interpret(profile: str, event: str, payload: Mapping[str, str]) -> Meaning:
    """What `event` (with its kept payload) means for an agent of `profile`."""
    table = SIGNAL_TABLES.get(profile)
    if table is None:
        return Meaning()
    kind = table.kinds.get(event)
    reading = table.events.get(f"{event}:{payload.get(kind, '')}" if kind else event, Reading())
    session_key = table.session_fields.get(event, table.session_field)
    return Meaning(
        reading.activity,
        reading.turn_started,
        payload.get(session_key, "") if session_key else "",
        payload.get("error", "unknown") if reading.error else "",
    )


def fold(profile: str, state: SignalState, signals: Iterable[AgentSignal]) -> SignalState:
    """`state` with the agent's new `signals` (ids above `state.last_id`, oldest first) applied.

    A `foreign` event (Codex's `notify`, which also fires for its title generator's thread) of
    another session than the agent's is left out; before the session is known, it cannot be
    told apart and is left out too.
    A session id that is not SESSION_ID-shaped is never recorded.
    """
    table = SIGNAL_TABLES.get(profile)
    foreign = table.foreign if table else frozenset()
    for signal in signals:
        if signal.id <= state.last_id:
            continue
        meaning = interpret(profile, signal.event, signal.payload)
        if not SESSION_ID.fullmatch(meaning.session_id):
            meaning = replace(meaning, session_id="")  # hostile or absent: never recorded
        state = replace(state, last_id=signal.id)
        if signal.event in foreign:
            if not state.session_id or meaning.session_id != state.session_id:
                continue
        elif meaning.session_id:
            state = replace(state, session_id=meaning.session_id)
        if meaning.turn_started:
            state = replace(state, turn_started_at=signal.at)
        if meaning.activity is not None:
            state = replace(state, activity=meaning.activity, activity_at=signal.at)
    return state


def weigh(
    state: SignalState,
    screen: Activity,
    screen_changed_at: float | None,
    now: float,
    screen_since: float | None = None,
) -> Activity:
    """The activity to act on, from the folded signals and the screen's own verdict.

    `screen` is what the screen alone says (UNKNOWN: it cannot tell); `screen_since` when it
    started saying so; `screen_changed_at` when the screen last really changed. Rules:
    a question on screen is Waiting whatever was signalled; without a signal the screen decides;
    a Waiting signal ends when the screen moves after it (the question was answered: back to
    Busy); a screen that says something definite other than the signal, and has said it for
    CROSSCHECK_SECONDS since the signal, wins (a hook that stopped arriving never freezes it).
    """
    signalled = state.activity
    if screen is Activity.WAITING:
        return Activity.WAITING
    if signalled is None or state.activity_at is None or signalled is Activity.UNKNOWN:
        return screen
    if signalled is Activity.WAITING:
        moved = screen_changed_at is not None and (
            screen_changed_at > state.activity_at + WAITING_GRACE_SECONDS
        )
        if not moved:
            return Activity.WAITING
        signalled = Activity.BUSY
    if screen not in (Activity.UNKNOWN, signalled):
        since = max(state.activity_at, screen_since if screen_since is not None else now)
        if now - since >= CROSSCHECK_SECONDS:
            return screen
    return signalled
