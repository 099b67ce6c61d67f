"""The delivery machine: every edge with an injected clock, then as the planner drives it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.api.actions import Paste, PressEnter
from reconciler.api.history import EventType
from reconciler.api.messages import Phase, QueuedMessage
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import DesiredAgent
from reconciler.core.delivery import (
    CONFIRM_SECONDS,
    DRAW_TIMEOUT_SECONDS,
    EVIDENCE_GRACE_SECONDS,
    RETRY_SECONDS,
    STARTUP_QUIET_SECONDS,
    STARTUP_WINDOW_SECONDS,
    AgentView,
    Evidence,
    echo_shown,
    input_empty,
    input_ready,
    interrupted,
    judge_echo,
    settle,
    step_delivery,
)
from reconciler.core.profiles import PROFILES
from reconciler.core.sanitize import clean_message
from reconciler.core.screen import classify
from tests.helpers import T0, running_record
from tests.helpers import desired_agent as agent
from tests.helpers import plan_screen as plan

TEXT = "line one\nline two"
BEFORE = "digest-before-paste"
DRAWN = "digest-paste-drawn"
MOVED = "digest-agent-working"


def message(phase: Phase = Phase.QUEUED, **fields: Any) -> QueuedMessage:
    return replace(QueuedMessage(7, "executor", "user", TEXT, T0), phase=phase, **fields)


def view(digest: str = BEFORE, **fields: Any) -> AgentView:
    return AgentView(digest=digest, **fields)


# -- queued -> pasting ---------------------------------------------------------------------------


def test_not_ready_holds() -> None:
    step = step_delivery(message(), view(ready=False), T0)
    assert step.action is None and step.message == message()
    assert step.requeue_after is not None and step.requeue_after > 0


def test_question_on_screen_holds() -> None:
    step = step_delivery(message(), view(question=True), T0)
    assert step.action is None and step.message == message()


def test_ready_pastes_with_the_intent_and_the_screen_before() -> None:
    step = step_delivery(message(), view(), T0)
    assert step.action == Paste("executor", TEXT)
    assert step.message.phase is Phase.PASTING
    assert (step.message.phase_at, step.message.screen_digest) == (T0, BEFORE)


def test_early_in_a_launch_a_paste_waits_for_a_quiet_screen() -> None:
    # Gemini CLI draws its composer, then its folder-trust dialog over it a second later.
    just_drawn = view(started_at=T0 - 10, changed_at=T0 - 0.5)
    step = step_delivery(message(), just_drawn, T0)
    assert step.action is None
    assert step.requeue_after == pytest.approx(STARTUP_QUIET_SECONDS - 0.5)
    assert step_delivery(message(), just_drawn, T0 + STARTUP_QUIET_SECONDS).action is not None


def test_later_in_a_launch_a_paste_does_not_wait_for_quiet() -> None:
    busy = view(started_at=T0 - STARTUP_WINDOW_SECONDS, changed_at=T0)
    assert step_delivery(message(), busy, T0).action == Paste("executor", TEXT)


# -- pasting: settled by the controller, or resolved from evidence ------------------------------


def test_paste_done_is_pasted() -> None:
    done = settle(message(Phase.PASTING, phase_at=T0), failed=False, definite=True, now=T0 + 0.01)
    assert done.phase is Phase.PASTED and done.phase_at == T0 + 0.01


def test_paste_refused_goes_back_to_the_queue_and_is_retried_later() -> None:
    failed = settle(message(Phase.PASTING, phase_at=T0), failed=True, definite=True, now=T0)
    assert failed.phase is Phase.QUEUED
    assert step_delivery(failed, view(), T0 + RETRY_SECONDS / 2).action is None
    assert step_delivery(failed, view(), T0 + RETRY_SECONDS).action == Paste("executor", TEXT)


def test_paste_timed_out_stays_an_intent_for_the_evidence() -> None:
    failed = settle(message(Phase.PASTING, phase_at=T0), failed=True, definite=False, now=T0)
    assert failed.phase is Phase.PASTING
    assert step_delivery(failed, view(evidence=Evidence.ABSENT), T0 + 0.1).message == failed


@pytest.mark.parametrize(
    ("evidence", "phase", "reason", "warning"),
    [
        (Evidence.ARRIVED, Phase.PASTED, "PasteRecovered", False),
        (Evidence.ABSENT, Phase.QUEUED, "PasteRetried", False),
        (Evidence.UNKNOWN, Phase.UNCERTAIN, "DeliveryUncertain", True),
    ],
)
def test_unsettled_paste_is_resolved_from_evidence(
    evidence: Evidence, phase: Phase, reason: str, warning: bool
) -> None:
    intent = message(Phase.PASTING, phase_at=T0, log_inode=5, log_offset=100)
    waiting = step_delivery(intent, view(evidence=evidence), T0 + EVIDENCE_GRACE_SECONDS / 2)
    assert waiting.message == intent and waiting.action is None
    step = step_delivery(intent, view(evidence=evidence), T0 + EVIDENCE_GRACE_SECONDS)
    assert step.action is None  # never pasted again in the same breath
    assert step.message.phase is phase
    assert step.notice is not None and step.notice.reason == reason
    assert step.notice.warning is warning


# -- pasted -> entering: only once the paste is drawn -------------------------------------------


def pasted() -> QueuedMessage:
    return message(Phase.PASTED, phase_at=T0, screen_digest=BEFORE)


def test_enter_waits_for_the_paste_to_be_drawn() -> None:
    step = step_delivery(pasted(), view(BEFORE, changed_at=T0 - 5), T0 + 0.5)
    assert step.action is None


def test_enter_waits_for_the_screen_to_be_quiet() -> None:
    step = step_delivery(pasted(), view(DRAWN, changed_at=T0 + 0.45), T0 + 0.5)
    assert step.action is None


def test_enter_when_drawn_and_quiet_compares_against_the_drawn_screen() -> None:
    step = step_delivery(pasted(), view(DRAWN, changed_at=T0 + 0.1), T0 + 0.5)
    assert step.action == PressEnter("executor")
    assert step.message.phase is Phase.ENTERING
    assert (step.message.screen_digest, step.message.enters) == (DRAWN, 1)


def test_enter_anyway_when_the_paste_never_shows() -> None:
    step = step_delivery(pasted(), view(BEFORE, changed_at=T0 - 5), T0 + DRAW_TIMEOUT_SECONDS)
    assert step.action == PressEnter("executor")


def test_no_enter_while_the_input_does_not_show_the_paste() -> None:
    # The paste went into a dialog drawn over the input: Enter would answer the dialog.
    drawn_elsewhere = view(DRAWN, changed_at=T0 + 0.1, echo=False)
    assert step_delivery(pasted(), drawn_elsewhere, T0 + 0.5).action is None
    step = step_delivery(pasted(), drawn_elsewhere, T0 + DRAW_TIMEOUT_SECONDS)
    assert step.action is None and step.message.phase is Phase.UNCONFIRMED
    assert step.notice is not None and step.notice.reason == "DeliveryUnconfirmed"
    assert "never showed in the agent's input" in step.notice.message


def test_enter_once_the_input_shows_the_paste() -> None:
    step = step_delivery(pasted(), view(DRAWN, changed_at=T0 + 0.1, echo=True), T0 + 0.5)
    assert step.action == PressEnter("executor")


def test_enter_done_is_submitted_and_enter_refused_is_retried() -> None:
    entering = message(Phase.ENTERING, phase_at=T0, screen_digest=DRAWN, enters=1)
    assert settle(entering, False, True, T0).phase is Phase.SUBMITTED
    back = settle(entering, True, True, T0)
    assert (back.phase, back.enters) == (Phase.PASTED, 0)


# -- submitted -> delivered | one more Enter | unconfirmed --------------------------------------


def submitted(enters: int = 1) -> QueuedMessage:
    return message(Phase.SUBMITTED, phase_at=T0, screen_digest=DRAWN, enters=enters)


def test_confirmed_when_the_screen_moved() -> None:
    step = step_delivery(submitted(), view(MOVED), T0 + 0.1)
    assert step.message.phase is Phase.DELIVERED and step.message.delivered_at == T0 + 0.1
    assert step.notice is not None and step.notice.reason == "Delivered"


def test_confirmed_by_a_turn_start_signal() -> None:
    step = step_delivery(submitted(), view(DRAWN, turn_started_at=T0 + 0.05), T0 + 0.1)
    assert step.message.phase is Phase.DELIVERED


def test_turn_start_before_the_enter_does_not_confirm() -> None:
    step = step_delivery(submitted(), view(DRAWN, turn_started_at=T0 - 1), T0 + 0.1)
    assert step.message.phase is Phase.SUBMITTED


def test_not_confirmed_gets_one_more_enter_then_is_unconfirmed() -> None:
    early = step_delivery(submitted(), view(DRAWN), T0 + CONFIRM_SECONDS / 2)
    assert early.action is None
    again = step_delivery(submitted(), view(DRAWN), T0 + CONFIRM_SECONDS)
    assert again.action == PressEnter("executor") and again.message.enters == 2
    second = settle(again.message, False, True, T0 + CONFIRM_SECONDS)
    late = T0 + 2 * CONFIRM_SECONDS
    final = step_delivery(second, view(DRAWN), late)
    assert final.action is None and final.message.phase is Phase.UNCONFIRMED
    assert final.notice is not None and final.notice.reason == "DeliveryUnconfirmed"
    assert final.notice.warning


def test_where_the_input_can_be_read_a_moved_screen_is_no_confirmation() -> None:
    # The message still sits in the input: the Enter was swallowed, whatever else moved.
    still_typed = step_delivery(submitted(), view(MOVED, input_empty=False), T0 + CONFIRM_SECONDS)
    assert still_typed.message.phase is Phase.ENTERING
    assert still_typed.action == PressEnter("executor")


def test_where_the_input_can_be_read_its_emptying_confirms() -> None:
    step = step_delivery(submitted(), view(DRAWN, input_empty=True), T0 + 0.1)
    assert step.message.phase is Phase.DELIVERED


def test_where_the_input_can_be_read_a_question_in_its_place_confirms() -> None:
    # Gemini's permission box replaces the composer as soon as the turn wants a tool.
    step = step_delivery(submitted(), view(MOVED, input_empty=False, question=True), T0 + 0.1)
    assert step.message.phase is Phase.DELIVERED


def test_question_on_screen_gets_no_second_enter() -> None:
    step = step_delivery(submitted(), view(DRAWN, question=True), T0 + CONFIRM_SECONDS)
    assert step.action is None and step.message.phase is Phase.UNCONFIRMED


def test_unsettled_enter_is_not_counted() -> None:
    intent = message(Phase.ENTERING, phase_at=T0, screen_digest=DRAWN, enters=2)
    step = step_delivery(intent, view(DRAWN), T0 + CONFIRM_SECONDS)
    assert step.action == PressEnter("executor")  # the lost press is made up for
    moved = step_delivery(intent, view(MOVED), T0 + 0.1)
    assert moved.message.phase is Phase.DELIVERED


@pytest.mark.parametrize("phase", [Phase.DELIVERED, Phase.UNCONFIRMED, Phase.UNCERTAIN])
def test_finished_messages_stay_finished(phase: Phase) -> None:
    step = step_delivery(message(phase), view(), T0)
    assert step.action is None and step.message.phase is phase


@pytest.mark.parametrize(
    ("phase", "after"),
    [
        (Phase.PASTING, Phase.QUEUED),
        (Phase.PASTED, Phase.QUEUED),
        (Phase.ENTERING, Phase.UNCONFIRMED),
        (Phase.SUBMITTED, Phase.UNCONFIRMED),
        (Phase.QUEUED, Phase.QUEUED),
    ],
)
def test_agent_gone_mid_delivery(phase: Phase, after: Phase) -> None:
    back, _ = interrupted(message(phase, phase_at=T0))
    assert back.phase is after


# -- readiness and evidence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "screen", "ready"),
    [
        ("claude", "╭───╮\n│ ❯ \n╰───╯\n  ? for shortcuts\n", True),
        ("claude", "Welcome to Claude Code\nLoading…\n", False),
        ("codex", "› Ask Codex to do anything\n\n  ← for agents · ? for shortcuts\n", True),
        ("codex", ">_ OpenAI Codex\nbooting\n", False),
        ("gemini", "╭──────╮\n│ >   Type your message or @path/to/file │\n╰──────╯\n", True),
        ("gemini", "Gemini CLI\n", False),
        ("aider", "Aider v0.86\nModel: x\n>", True),
        ("aider", "Aider v0.86\n> earlier question\nthinking\n", False),
        ("generic", "anything at all\n", True),
    ],
)
def test_ready_patterns_of_the_profiles(profile: str, screen: str, ready: bool) -> None:
    assert input_ready(screen, PROFILES[profile].ready) is ready


@pytest.mark.parametrize(
    ("output", "evidence"),
    [
        (None, Evidence.UNKNOWN),
        (b"", Evidence.ABSENT),
        (b"\x1b[2K\x1b[1G  \r\n", Evidence.ABSENT),
        (b"\x1b[32mline\x1b[1Cone\r\nline two", Evidence.ARRIVED),
        (b"[Pasted text #1 +1000 lines]", Evidence.ARRIVED),
        (b"[pasted text]", Evidence.ARRIVED),
        (b"\xe2\x80\xba [Pasted Content 102416 chars]", Evidence.ARRIVED),
        (b"\xe2\xa0\x8b Working (3s)", Evidence.UNKNOWN),
    ],
)
def test_judge_echo(output: bytes | None, evidence: Evidence) -> None:
    assert judge_echo(output, TEXT) is evidence


@given(
    st.text(min_size=1, max_size=200).map(clean_message).filter(lambda t: t.strip()),
    st.integers(1, 60),
)
def test_an_echo_drawn_with_cursor_moves_is_recognised(text: str, width: int) -> None:
    shown = [ch if not ch.isspace() else "\x1b[1C" for ch in text]
    wrapped = "\r\n".join("".join(shown[i : i + width]) for i in range(0, len(shown), width))
    assert judge_echo(("› " + wrapped).encode(), text) is Evidence.ARRIVED


# -- the planner drives it ----------------------------------------------------------------------


def record(desired: DesiredAgent, **fields: Any) -> AgentRecord:
    """The Running record, long up (no start-up settling) unless `fields` say."""
    return running_record(desired, **{"started_at": T0 - 3600, **fields})


def test_planner_holds_until_the_ready_pattern_is_drawn() -> None:
    desired = agent(startup={"ready": "^› "})
    early = plan(desired, "starting up\n", record(desired), T0, message=message())
    assert early.actions == ()
    drawn = plan(desired, "banner\n› \n", record(desired), T0 + 1, message=message())
    assert drawn.actions == (Paste("executor", TEXT),)


def test_planner_delivers_to_a_stale_agent() -> None:
    desired = agent(stale={"after": "5m", "action": "none"})
    screen = "idle\n› \n"
    digest = classify(screen, desired.agent.spec, datetime.now(UTC)).digest
    stale = record(
        desired, state=AgentState.STALE, screen_digest=digest, screen_changed_at=T0 - 600
    )
    got = plan(desired, screen, stale, T0 + 1, message=message())
    assert got.record is not None and got.record.state is AgentState.STALE
    assert got.actions == (Paste("executor", TEXT),)


def test_planner_holds_while_a_person_is_attached() -> None:
    desired = agent()
    got = plan(desired, "› \n", record(desired), T0, attached=True, message=message())
    assert got.actions == () and got.message is None


def test_planner_never_pastes_into_a_question() -> None:
    desired = agent()
    got = plan(desired, "Proceed? [y/N]\n", record(desired), T0, message=message())
    assert got.actions == ()


def test_planner_reports_unconfirmed_as_a_warning() -> None:
    desired = agent()
    screen = "› line one line two\n"
    looked = plan(desired, screen, record(desired), T0).record
    assert looked is not None
    stuck = submitted(enters=2)
    got = plan(
        desired,
        screen,
        looked,
        T0 + CONFIRM_SECONDS,
        message=replace(stuck, screen_digest=looked.screen_digest),
    )
    assert got.message is not None and got.message.phase is Phase.UNCONFIRMED
    assert [(e.reason, e.type) for e in got.events] == [("DeliveryUnconfirmed", EventType.WARNING)]


# -- reading the input of the real CLIs (tests/fixtures/screens/<cli>/real-*.txt) ----------------


def real_screen(cli: str, name: str) -> str:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "fixtures" / "screens" / cli
    return (root / f"real-{name}.txt").read_text()


@pytest.mark.parametrize(
    ("name", "empty"),
    [
        ("idle-fresh", True),
        ("answered-idle", True),
        ("busy", True),  # the composer stays empty (and drawn) while a turn runs
        ("typed-unsubmitted", False),
        ("paste-100k", False),  # "[Pasted Text: 1529 lines]" in the composer
        ("first-start-trust", False),  # the trust dialog replaces the composer
        ("permission-prompt", False),
    ],
)
def test_gemini_empty_input_on_real_screens(name: str, empty: bool) -> None:
    pattern = PROFILES["gemini"].empty_input
    assert input_empty(real_screen("gemini", name), pattern) is empty


def test_gemini_echo_of_typed_and_pasted_text_on_real_screens() -> None:
    typed = real_screen("gemini", "typed-unsubmitted")
    assert echo_shown(typed, "create the marker file")
    assert not echo_shown(typed, "something else entirely, never typed")
    assert echo_shown(real_screen("gemini", "paste-100k"), "a\\n" * 2000)  # the placeholder
    assert not echo_shown(real_screen("gemini", "first-start-trust"), "create the marker file")


def test_aider_echo_of_a_long_paste_is_its_last_line() -> None:
    screen = real_screen("aider", "paste-100k")
    last = screen.strip().splitlines()[-1].removeprefix("> ")
    assert echo_shown(screen, "a first line that scrolled away\n" + last)
    assert input_empty(real_screen("aider", "first-start-ready"), PROFILES["aider"].empty_input)
    assert not input_empty(screen, PROFILES["aider"].empty_input)


def test_no_input_reading_without_a_pattern() -> None:
    assert input_empty("anything\n> \n", None) is None


def test_no_second_enter_for_a_cli_that_takes_every_enter() -> None:
    # aider under load shows nothing for seconds after an Enter; a second one would be read
    # later as the answer to its next question ("Run shell command? [Yes]").
    from reconciler.core.delivery import SLOW_CONFIRM_SECONDS

    slow = view(DRAWN, retry_enter=False)
    assert step_delivery(submitted(), slow, T0 + CONFIRM_SECONDS).action is None
    assert step_delivery(submitted(), view(MOVED, retry_enter=False), T0 + 5).message.phase is (
        Phase.DELIVERED
    )
    final = step_delivery(submitted(), slow, T0 + SLOW_CONFIRM_SECONDS)
    assert final.action is None and final.message.phase is Phase.UNCONFIRMED
    assert PROFILES["aider"].retry_enter is False and PROFILES["gemini"].retry_enter


def test_gemini_composer_drawn_before_its_trust_dialog_reads_ready() -> None:
    # Why readiness alone is not enough early in a launch: 0.8 s after this screen the trust
    # dialog replaced the composer, and a paste there picked "3. Don't trust".
    screen = real_screen("gemini", "first-start-composer-before-trust")
    profile = PROFILES["gemini"]
    assert input_ready(screen, profile.ready)
    assert input_empty(screen, profile.empty_input)
    assert not input_ready(real_screen("gemini", "first-start-trust"), profile.ready)


def test_planner_lets_a_launch_settle_only_where_an_input_is_drawn() -> None:
    fresh = {"started_at": T0 - 1, "screen_changed_at": T0 - 0.5}
    cli = agent(startup={"ready": "^› "})
    held = plan(cli, "banner\n› \n", record(cli, **fresh), T0, message=message())
    assert held.actions == ()
    program = agent(profile="generic", command="vim")
    pasted = plan(program, "anything\n", record(program, **fresh), T0, message=message())
    assert pasted.actions == (Paste("executor", TEXT),)
