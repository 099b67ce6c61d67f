"""Agent CLIs' own signals: what real payloads mean, folded per agent, weighed against the screen.

The payloads are the ones the installed CLIs sent (tests/fixtures/signals/<cli>/, captured with
Claude Code 2.1.332, Codex 0.171.0, Gemini CLI 0.61.0, aider 0.86.2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.signal_inbox import parse_payload
from reconciler.api.activity import Activity
from reconciler.core.signals import (
    CROSSCHECK_SECONDS,
    FIELD_CHARS,
    AgentSignal,
    Meaning,
    SignalState,
    compact,
    fold,
    interpret,
    weigh,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "signals"
B, ID, W, U = Activity.BUSY, Activity.IDLE, Activity.WAITING, Activity.UNKNOWN
CODEX_SESSION = "01a22c1d-e906-7123-9101-2f594258da47"


def payload(cli: str, name: str) -> dict[str, str]:
    """A captured payload as `orch signal` keeps it (read as raw bytes, like the hook's stdin)."""
    data: dict[str, Any] = json.loads((FIXTURES / cli / f"{name}.json").read_text())
    raw = data["stdin"] if isinstance(data["stdin"], dict) else data["argv"][-1]
    return parse_payload(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("cli", "fixture", "event", "activity", "turn_started"),
    [
        ("claude", "SessionStart-startup", "SessionStart", ID, False),
        ("claude", "SessionStart-resume", "SessionStart", ID, False),
        ("claude", "UserPromptSubmit", "UserPromptSubmit", B, True),
        ("claude", "PreToolUse", "PreToolUse", B, False),
        ("claude", "PermissionRequest", "PermissionRequest", W, False),
        ("claude", "Notification-permission_prompt", "Notification", W, False),
        ("claude", "Notification-idle_prompt", "Notification", ID, False),
        ("claude", "PostToolUse", "PostToolUse", B, False),
        ("claude", "Stop", "Stop", ID, False),
        ("claude", "StopFailure-rate_limit", "StopFailure", ID, False),
        ("claude", "SessionEnd-prompt_input_exit", "SessionEnd", U, False),
        ("codex", "SessionStart-startup", "SessionStart", None, False),
        ("codex", "UserPromptSubmit", "UserPromptSubmit", B, True),
        ("codex", "PermissionRequest", "PermissionRequest", W, False),
        ("codex", "PostToolUse", "PostToolUse", B, False),
        ("codex", "Stop", "Stop", ID, False),
        ("codex", "notify-agent-turn-complete", "notify", ID, False),
        ("codex", "SessionEnd-other", "SessionEnd", U, False),
        ("gemini", "SessionStart", "SessionStart", ID, False),
        ("gemini", "BeforeAgent", "BeforeAgent", B, True),
        ("gemini", "AfterTool", "AfterTool", B, False),
        ("gemini", "Notification", "Notification", W, False),
        ("gemini", "AfterAgent", "AfterAgent", ID, False),
        ("gemini", "AfterModel", "AfterModel", None, False),
        ("gemini", "SessionEnd", "SessionEnd", U, False),
    ],
)
def test_real_payloads_mean(
    cli: str, fixture: str, event: str, activity: Activity | None, turn_started: bool
) -> None:
    meaning = interpret(cli, event, payload(cli, fixture))
    assert meaning.activity == activity
    assert meaning.turn_started == turn_started
    assert meaning.session_id  # every hook payload names the CLI's session


def test_claude_stop_failure_carries_the_error() -> None:
    assert interpret("claude", "StopFailure", payload("claude", "StopFailure-billing_error")) == (
        Meaning(ID, session_id=payload("claude", "Stop")["session_id"], error="billing_error")
    )


def test_aider_notification_has_no_payload_and_means_waiting_for_the_user() -> None:
    assert interpret("aider", "notify", {}) == Meaning(ID)
    assert interpret("aider", "other", {}) == Meaning()


def test_unknown_profile_or_event_means_nothing() -> None:
    assert interpret("generic", "Stop", {}) == Meaning()
    assert interpret("claude", "Nonsense", {"session_id": "s"}) == Meaning(session_id="s")


def sig(id_: int, event: str, at: float, **fields: str) -> AgentSignal:
    return AgentSignal(id_, "dev", event, fields, at)


def test_fold_keeps_the_latest_activity_turn_start_and_session() -> None:
    state = fold(
        "claude",
        SignalState(),
        [
            sig(1, "SessionStart", 10.0, session_id="s1"),
            sig(2, "UserPromptSubmit", 11.0, session_id="s1"),
            sig(3, "Stop", 15.0, session_id="s1"),
        ],
    )
    assert state == SignalState(3, ID, 15.0, 11.0, "s1")


def test_fold_skips_signals_already_folded() -> None:
    state = SignalState(5, ID, 15.0, None, "s1")
    assert fold("claude", state, [sig(4, "UserPromptSubmit", 16.0, session_id="s1")]) == state


def test_codex_title_thread_notify_is_left_out() -> None:
    """Codex's title generator is its own thread: its turn-complete must not end the turn."""
    turn = payload("codex", "UserPromptSubmit")
    title = payload("codex", "notify-agent-turn-complete-title-thread")
    done = payload("codex", "notify-agent-turn-complete")
    state = fold(
        "codex",
        SignalState(),
        [sig(1, "UserPromptSubmit", 10.0, **turn), sig(2, "notify", 11.0, **title)],
    )
    assert (state.activity, state.session_id, state.last_id) == (B, CODEX_SESSION, 2)
    state = fold("codex", state, [sig(3, "notify", 12.0, **done)])
    assert (state.activity, state.activity_at) == (ID, 12.0)


def test_codex_notify_before_the_session_is_known_is_left_out() -> None:
    done = payload("codex", "notify-agent-turn-complete")
    assert fold("codex", SignalState(), [sig(1, "notify", 1.0, **done)]).activity is None


def test_gemini_session_id_follows_the_latest_hook() -> None:
    """Gemini CLI changes its session id mid-session: the latest is the one to resume."""
    state = fold(
        "gemini",
        SignalState(),
        [sig(1, "BeforeAgent", 1.0, session_id="a"), sig(2, "AfterAgent", 2.0, session_id="b")],
    )
    assert state.session_id == "b"


@pytest.mark.parametrize("session", ["", "-rf", "a b", "x\x1b[2J", "a" * 200, "$(id)"])
def test_a_hostile_session_id_is_never_recorded(session: str) -> None:
    state = fold("claude", SignalState(), [sig(1, "Stop", 1.0, session_id=session)])
    assert (state.session_id, state.activity, state.last_id) == ("", ID, 1)


# -- weighing signals against the screen ---------------------------------------------------------


def state(activity: Activity | None, at: float = 100.0) -> SignalState:
    return SignalState(1, activity, at if activity else None)


@pytest.mark.parametrize(
    ("signals", "screen", "changed_at", "now", "screen_since", "expected"),
    [
        # no signal: the screen decides
        (state(None), U, None, 200.0, None, U),
        (state(None), ID, None, 200.0, None, ID),
        # a question on screen is Waiting, whatever the signal says
        (state(B), W, None, 101.0, None, W),
        (state(ID), W, None, 101.0, None, W),
        # the signal speaks where the screen cannot tell
        (state(B), U, 100.0, 5000.0, None, B),
        (state(ID), U, 100.0, 5000.0, None, ID),
        # a Waiting signal holds until the screen moves after it: then the turn goes on
        (state(W), U, 100.5, 110.0, None, W),
        (state(W), U, 105.0, 110.0, None, B),
        # a screen contradicting the signal wins only after CROSSCHECK_SECONDS
        (state(B), ID, 100.0, 100.0 + CROSSCHECK_SECONDS - 1, 100.0, B),
        (state(B), ID, 100.0, 100.0 + CROSSCHECK_SECONDS, 100.0, ID),
        (state(ID), B, 100.0, 100.0 + CROSSCHECK_SECONDS, 90.0, B),
        # ... counted from the signal, not from an older screen verdict
        (state(B, at=150.0), ID, 100.0, 160.0, 100.0, B),
        # a screen that has said so since later counts from then
        (state(B), ID, 100.0, 130.0, 125.0, B),
        # an ended session leaves it to the screen
        (state(U), ID, None, 101.0, None, ID),
    ],
)
def test_weigh(
    signals: SignalState,
    screen: Activity,
    changed_at: float | None,
    now: float,
    screen_since: float | None,
    expected: Activity,
) -> None:
    assert weigh(signals, screen, changed_at, now, screen_since) == expected


# -- hostile payloads ----------------------------------------------------------------------------


def test_compact_keeps_known_short_fields_only() -> None:
    kept = compact(
        {
            "session_id": "s" * 10_000,
            "prompt": "a secret prompt",
            "last_assistant_message": "long reply",
            "error": ["not", "a", "string"],
            "notification_type": True,
            "type": 3,
        }
    )
    assert kept == {"session_id": "s" * FIELD_CHARS, "type": "3"}


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 100_000, b'{"a": NaN'],
)
def test_parse_payload_survives_garbage(raw: bytes) -> None:
    assert parse_payload(raw) == {"invalid": "true"}


@given(st.binary(max_size=2000))
def test_parse_payload_never_raises(raw: bytes) -> None:
    result = parse_payload(raw)
    assert all(isinstance(v, str) and len(v) <= FIELD_CHARS for v in result.values())
