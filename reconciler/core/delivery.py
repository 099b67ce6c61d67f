"""Delivering a queued message to an agent, one small step per pass, each keystroke written ahead.

Pure. A delivery is a little state machine persisted on the message itself, so a controller
restart resumes it where it was:

    queued --paste--> pasting --done--> pasted --(input drawn, screen quiet)--Enter--> entering
      --done--> submitted --(screen moved / turn started)--> delivered
                          --(not moved: one more Enter, then)--> unconfirmed

`pasting` and `entering` are *intents*: the controller commits them to the store before it
touches tmux and settles them (`settle`) right after, so a message found in an intent phase at
the start of a pass means the controller died (or tmux failed) between the two. An unsettled
paste is resolved from evidence, the agent's pane log after the position recorded with the
intent (`judge_echo`): the paste's echo there means it arrived (-> pasted), no output at all means
it did not (-> queued, pasted again), anything else cannot decide (-> uncertain, shown in
`describe` and a Warning event; never pasted again, never dropped silently). An unsettled Enter
is not counted: pressing Enter on an input that already went out is harmless, a paste twice is not.

A paste waits for the CLI's input to be drawn (the profile's or spec's ready pattern), never goes
into a question for a human, and in the first STARTUP_WINDOW_SECONDS of a launch also waits until
the screen has been quiet for STARTUP_QUIET_SECONDS: a CLI may draw its input and then a dialog
over it (Gemini CLI's folder-trust dialog comes about a second after its composer, and keys typed
into that dialog pick its options). Enter waits until the paste has been drawn, so the
confirmation compares against a capture taken after the paste. Where the profile can read the
CLI's input (`AgentView.echo`, `AgentView.input_empty`), Enter is pressed only once the message
shows there, and the delivery is confirmed only once the input is empty again: a screen that
merely moved proves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from reconciler.api.actions import Paste, PressEnter
from reconciler.api.duration import human_size
from reconciler.api.messages import Phase, QueuedMessage
from reconciler.api.regex import compile_pattern

#: Base pause between the paste and Enter; long pastes get more (see `settle_seconds`).
PASTE_SETTLE_SECONDS = 0.15
#: Extra pause per MiB pasted: agents re-render their input box after a large paste.
SETTLE_SECONDS_PER_MIB = 1.0
#: The screen must have been quiet this long before Enter: the paste is drawn completely.
QUIET_SECONDS = 0.15
#: Enter is pressed even if the paste never showed on screen after this long.
DRAW_TIMEOUT_SECONDS = 3.0
#: How long after Enter the screen may take to move before Enter is pressed once more.
CONFIRM_SECONDS = 1.0
#: Enter presses at most per message (the first, plus one retry when the screen did not move).
MAX_ENTERS = 2
#: How long a CLI that gets no second Enter may take to show that it took the first.
SLOW_CONFIRM_SECONDS = 15.0
#: How often a held message looks again whether the agent can take it.
HOLD_SECONDS = 0.25
#: The first seconds of a launch, during which a paste also waits for a quiet screen.
STARTUP_WINDOW_SECONDS = 120.0
#: How long the screen must not have changed, early in a launch, before a paste.
STARTUP_QUIET_SECONDS = 3.0
#: Non-blank lines at the bottom of the screen where the CLI's input (and a paste's echo) is.
INPUT_LINES = 8
#: A paste tmux refused is tried again after this long.
RETRY_SECONDS = 1.0
#: The pane log lags the pane a little (pipe-pane): evidence is read this long after the intent.
EVIDENCE_GRACE_SECONDS = 1.0
#: Characters of the message (whitespace left out) looked for in the agent's echo.
ECHO_SLICE_CHARS = 24
#: What agent CLIs print for a paste they fold into a placeholder ("[Pasted text #1 +40 lines]",
#: Codex: "[Pasted Content 102416 chars]"),
#: matched with whitespace left out.
PASTE_PLACEHOLDER = re.compile(r"(?i)\[pasted_?(?:text|content)")
#: Terminal escape sequences (CSI, OSC/DCS strings, charset selection, two-byte escapes).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]+[0-~]|\x1b[0-~]?"
)
#: Whitespace and control characters: left out when comparing an echo with the message, since
#: TUIs draw spaces and line ends as cursor movements.
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


class Evidence(StrEnum):
    """What the agent's pane log says about a paste whose outcome was not recorded."""

    ARRIVED = "arrived"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AgentView:
    """What the delivery machine needs to know about the agent in this pass.

    `digest` and `changed_at` come from a capture this pass (or one still current); `ready`: the
    CLI's input is drawn; `question`: a prompt for a human is on screen; `turn_started_at`: the
    last turn-start signal of the agent's own hooks, when it has them; `evidence`: the pane log's
    verdict on an unsettled paste; `started_at`: when the agent's process was launched; `echo`:
    the message shows in the CLI's input (None: the profile cannot read its input);
    `input_empty`: the CLI's input is drawn empty (None: the profile cannot tell);
    `retry_enter`: a second Enter may be pressed when the first seems not taken.
    """

    digest: str
    changed_at: float | None = None
    ready: bool = True
    question: bool = False
    turn_started_at: float | None = None
    evidence: Evidence | None = None
    started_at: float | None = None
    echo: bool | None = None
    input_empty: bool | None = None
    retry_enter: bool = True


@dataclass(frozen=True)
class Notice:
    """An event the delivery step asks for."""

    reason: str
    message: str
    warning: bool = False


DeliveryAction = Paste | PressEnter


@dataclass(frozen=True)
class DeliveryStep:
    """One step of a delivery: what to do, the message as it will be, when to look again."""

    action: DeliveryAction | None
    message: QueuedMessage
    requeue_after: float | None
    notice: Notice | None = None


def settle_seconds(text: str) -> float:
    """How long to let the agent digest a paste before pressing Enter."""
    return PASTE_SETTLE_SECONDS + SETTLE_SECONDS_PER_MIB * len(text.encode()) / 2**20


def step_delivery(message: QueuedMessage, view: AgentView, now: float) -> DeliveryStep:
    """The next step of delivering `message` to a live agent able to take messages."""
    if message.phase is Phase.QUEUED:
        return _paste(message, view, now)
    if message.phase is Phase.PASTING:
        return _resolve_paste(message, view, now)
    if message.phase is Phase.PASTED:
        return _enter(message, view, now)
    if message.phase is Phase.ENTERING:
        # An Enter intent nobody settled: it may never have been pressed, so it is not counted.
        return _confirm(
            replace(message, phase=Phase.SUBMITTED, enters=message.enters - 1), view, now
        )
    if message.phase is Phase.SUBMITTED:
        return _confirm(message, view, now)
    return DeliveryStep(None, message, None)


def _paste(message: QueuedMessage, view: AgentView, now: float) -> DeliveryStep:
    """queued -> pasting, once the input is drawn and no question is on screen."""
    if message.phase_at is not None and now - message.phase_at < RETRY_SECONDS:
        return DeliveryStep(None, message, RETRY_SECONDS - (now - message.phase_at))
    if not view.ready or view.question:
        return DeliveryStep(None, message, HOLD_SECONDS)
    unsettled = _startup_unsettled(view, now)
    if unsettled > 0:
        return DeliveryStep(None, message, unsettled)
    pasting = replace(message, phase=Phase.PASTING, phase_at=now, screen_digest=view.digest)
    return DeliveryStep(Paste(message.agent, message.text), pasting, settle_seconds(message.text))


def _startup_unsettled(view: AgentView, now: float) -> float:
    """Seconds still to wait, early in a launch, for the screen to have been quiet long enough."""
    if view.started_at is None or now - view.started_at >= STARTUP_WINDOW_SECONDS:
        return 0.0
    changed = view.changed_at if view.changed_at is not None else view.started_at
    return max(0.0, STARTUP_QUIET_SECONDS - (now - changed))


def _resolve_paste(message: QueuedMessage, view: AgentView, now: float) -> DeliveryStep:
    """An unsettled paste: arrived, absent or uncertain, as the pane log says."""
    waited = now - (message.phase_at or now)
    if waited < EVIDENCE_GRACE_SECONDS or view.evidence is None:
        return DeliveryStep(None, message, max(EVIDENCE_GRACE_SECONDS - waited, HOLD_SECONDS))
    if view.evidence is Evidence.ARRIVED:
        pasted = replace(message, phase=Phase.PASTED, phase_at=now)
        note = Notice("PasteRecovered", f"message {message.id}: the pane log shows the paste")
        return DeliveryStep(None, pasted, 0.0, note)
    if view.evidence is Evidence.ABSENT:
        queued = replace(
            message, phase=Phase.QUEUED, phase_at=None, log_inode=None, log_offset=None
        )
        note = Notice("PasteRetried", f"message {message.id}: the paste never reached the agent")
        return DeliveryStep(None, queued, 0.0, note)
    uncertain = replace(message, phase=Phase.UNCERTAIN)
    note = Notice(
        "DeliveryUncertain",
        f"message {message.id}: whether the paste reached the agent cannot be told from its log; "
        "not pasting it again",
        warning=True,
    )
    return DeliveryStep(None, uncertain, 0.0, note)


def _enter(message: QueuedMessage, view: AgentView, now: float) -> DeliveryStep:
    """pasted -> entering, once the paste is drawn and the screen is quiet."""
    since = now - (message.phase_at or now)
    wait = settle_seconds(message.text) - since
    if wait > 0:
        return DeliveryStep(None, message, wait)
    drawn = view.digest != message.screen_digest
    if not drawn and since < DRAW_TIMEOUT_SECONDS:
        return DeliveryStep(None, message, HOLD_SECONDS)
    quiet_for = now - (view.changed_at if view.changed_at is not None else now - QUIET_SECONDS)
    if drawn and quiet_for < QUIET_SECONDS:
        return DeliveryStep(None, message, QUIET_SECONDS - quiet_for)
    if view.question:
        return DeliveryStep(None, message, HOLD_SECONDS)
    if view.echo is False:
        # The input does not show the message: it went elsewhere (a dialog drawn over the
        # input) or is not drawn yet. Enter now could answer that dialog.
        if since < DRAW_TIMEOUT_SECONDS:
            return DeliveryStep(None, message, HOLD_SECONDS)
        why = "the paste never showed in the agent's input; Enter not pressed"
        return DeliveryStep(None, *_unconfirmed(message, why))
    entering = replace(
        message, phase=Phase.ENTERING, phase_at=now, screen_digest=view.digest, enters=1
    )
    return DeliveryStep(PressEnter(message.agent), entering, CONFIRM_SECONDS)


def _confirm(message: QueuedMessage, view: AgentView, now: float) -> DeliveryStep:
    """submitted -> delivered once the agent took it; else one more Enter, then unconfirmed."""
    entered_at = message.phase_at or now
    turn_started = view.turn_started_at is not None and view.turn_started_at >= entered_at
    # Where the input can be read, it held the message at Enter (and no question was up): empty
    # now, or a question drawn in its place (a tool the turn wants to run), it was taken.
    # Elsewhere all the screen can tell is that it moved.
    if view.input_empty is None:
        took = view.digest != message.screen_digest
    else:
        took = view.input_empty or view.question
    if turn_started or took:
        delivered = replace(message, phase=Phase.DELIVERED, delivered_at=now)
        size = human_size(len(message.text.encode()))
        note = Notice("Delivered", f"message {message.id} from {message.sender} ({size}) delivered")
        return DeliveryStep(None, delivered, 0.0, note)
    since = now - entered_at
    window = CONFIRM_SECONDS if view.retry_enter else SLOW_CONFIRM_SECONDS
    if since < window:
        return DeliveryStep(None, message, min(CONFIRM_SECONDS, window - since))
    if message.enters < MAX_ENTERS and view.retry_enter and not view.question:
        # The screen did not move: the Enter was swallowed or landed too early. Once more.
        again = replace(message, phase=Phase.ENTERING, phase_at=now, enters=message.enters + 1)
        return DeliveryStep(PressEnter(message.agent), again, CONFIRM_SECONDS)
    return DeliveryStep(None, *_unconfirmed(message, "the agent did not take it after Enter"))


def _unconfirmed(message: QueuedMessage, why: str) -> tuple[QueuedMessage, float, Notice]:
    note = Notice("DeliveryUnconfirmed", f"message {message.id}: {why}", warning=True)
    return replace(message, phase=Phase.UNCONFIRMED), 0.0, note


def settle(message: QueuedMessage, failed: bool, definite: bool, now: float) -> QueuedMessage:
    """The message once its intended keystroke was carried out (or failed).

    A paste tmux definitely refused goes back to the queue (tried again after RETRY_SECONDS); one
    whose fate is unknown (a timeout) stays an intent, resolved from evidence like a crash. A
    failed Enter is not counted and is tried again.
    """
    if message.phase is Phase.PASTING:
        if not failed:
            return replace(message, phase=Phase.PASTED, phase_at=now)
        if definite:
            return replace(message, phase=Phase.QUEUED, phase_at=now)
        return replace(message, phase_at=now)
    if message.phase is Phase.ENTERING:
        if not failed:
            return replace(message, phase=Phase.SUBMITTED, phase_at=now)
        back = Phase.SUBMITTED if message.enters > 1 else Phase.PASTED
        return replace(message, phase=back, enters=message.enters - 1)
    return message


def interrupted(message: QueuedMessage) -> tuple[QueuedMessage, Notice | None]:
    """A delivery whose agent went away.

    A paste never submitted goes back to the queue: the new process never saw it. A message
    whose Enter was pressed but not yet confirmed is unconfirmed: sending it again could make an
    agent do the same work twice, and calling it delivered would be a guess.
    """
    if message.phase in (Phase.PASTING, Phase.PASTED):
        return replace(message, phase=Phase.QUEUED, phase_at=None), None
    if message.phase in (Phase.ENTERING, Phase.SUBMITTED):
        unconfirmed, _, note = _unconfirmed(message, "the agent's process ended after Enter")
        return unconfirmed, note
    return message, None


def input_ready(screen: str, pattern: str | None, lines: int = 8) -> bool:
    """Whether the CLI's input is drawn: `pattern` in the last `lines` non-blank screen lines.

    Without a pattern (a generic program) the screen is taken as ready.
    """
    if pattern is None:
        return True
    bottom = [line for line in screen.splitlines() if line.strip()][-lines:]
    return compile_pattern(pattern).search("\n".join(bottom)) is not None


def input_empty(screen: str, pattern: str | None) -> bool | None:
    """Whether the CLI's empty input (`pattern`, the profile's) is in the last INPUT_LINES
    non-blank lines; None without a pattern (the profile cannot tell)."""
    if pattern is None:
        return None
    return input_ready(screen, pattern, INPUT_LINES)


def echo_shown(screen: str, text: str) -> bool:
    """Whether the last INPUT_LINES non-blank lines of `screen` show `text` or a paste
    placeholder. Looked for: the start of its first line and the end of its last line,
    whitespace and box borders left out (TUIs wrap and frame it, and may prefix each line)."""
    bottom = [line for line in screen.splitlines() if line.strip()][-INPUT_LINES:]
    shown = _BLANKS.sub("", "".join(bottom).replace("│", ""))
    lines = [_BLANKS.sub("", line) for line in text.splitlines()]
    lines = [line for line in lines if line] or [""]
    slices = {lines[0][:ECHO_SLICE_CHARS], lines[-1][-ECHO_SLICE_CHARS:]} - {""}
    return bool(PASTE_PLACEHOLDER.search(shown)) or any(piece in shown for piece in slices)


def judge_echo(output: bytes | None, text: str) -> Evidence:
    """What the pane's output since a paste intent says about that paste.

    ARRIVED: the output shows the start or the end of the message (whitespace left out: TUIs
    draw it as cursor moves) or a paste placeholder. ABSENT: the agent printed nothing visible at
    all, so it did not echo any input. UNKNOWN: it printed something else, or there is no log.
    """
    if output is None:
        return Evidence.UNKNOWN
    shown = _BLANKS.sub("", _ESCAPES.sub("", output.decode(errors="replace")))
    if not shown:
        return Evidence.ABSENT
    wanted = _BLANKS.sub("", text)
    slices = {wanted[:ECHO_SLICE_CHARS], wanted[-ECHO_SLICE_CHARS:]} - {""}
    if PASTE_PLACEHOLDER.search(shown) or any(piece in shown for piece in slices):
        return Evidence.ARRIVED
    return Evidence.UNKNOWN
