"""Delivering a queued message to an agent, one small step per pass.

Pure. A delivery is a little state machine persisted on the message itself, so a controller
restart resumes it where it was: `queued` -> paste the text as one bracketed paste -> `pasted`
-> after the agent's paste handling settles, press Enter -> `submitted` -> once the screen moved
on, `delivered` (if it did not move, Enter once more). Pausing between the paste and Enter is
what keeps agents that treat a fast Enter as a newline from swallowing the submission.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from reconciler.api.actions import Paste, PressEnter

#: Base pause between the paste and Enter; long pastes get more (see `settle_seconds`).
PASTE_SETTLE_SECONDS = 0.15
#: Extra pause per MiB pasted: agents re-render their input box after a large paste.
SETTLE_SECONDS_PER_MIB = 1.0
#: How long after Enter the screen must have moved for the submission to count.
CONFIRM_SECONDS = 0.4
#: Enter presses at most per message (the first, plus one retry when the screen did not move).
MAX_ENTERS = 2


class Phase(StrEnum):
    """Where a message is on its way into the agent."""

    QUEUED = "queued"
    PASTED = "pasted"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class QueuedMessage:
    """A message waiting for (or on its way into) an agent."""

    id: int
    agent: str
    sender: str
    text: str
    created: float
    phase: Phase = Phase.QUEUED
    phase_at: float | None = None
    screen_digest: str = ""
    enters: int = 0
    delivered_at: float | None = None
    agent_uid: str = ""  # the agent object it was queued for ("" before uids existed)


DeliveryAction = Paste | PressEnter


@dataclass(frozen=True)
class DeliveryStep:
    """One step of a delivery: what to do, the message as it will be, when to look again."""

    action: DeliveryAction | None
    message: QueuedMessage
    requeue_after: float | None


def settle_seconds(text: str) -> float:
    """How long to let the agent digest a paste before pressing Enter."""
    return PASTE_SETTLE_SECONDS + SETTLE_SECONDS_PER_MIB * len(text.encode()) / 2**20


def step_delivery(message: QueuedMessage, digest: str, now: float) -> DeliveryStep:
    """The next step of delivering `message` to an agent able to take it (`digest`: its screen)."""
    since = now - (message.phase_at or now)
    if message.phase is Phase.QUEUED:
        pasted = replace(message, phase=Phase.PASTED, phase_at=now)
        return DeliveryStep(
            Paste(message.agent, message.text), pasted, settle_seconds(message.text)
        )
    if message.phase is Phase.PASTED:
        wait = settle_seconds(message.text) - since
        if wait > 0:
            return DeliveryStep(None, message, wait)
        submitted = replace(
            message, phase=Phase.SUBMITTED, phase_at=now, screen_digest=digest, enters=1
        )
        return DeliveryStep(PressEnter(message.agent), submitted, CONFIRM_SECONDS)
    if message.phase is Phase.SUBMITTED:
        wait = CONFIRM_SECONDS - since
        if wait > 0:
            return DeliveryStep(None, message, wait)
        if digest == message.screen_digest and message.enters < MAX_ENTERS:
            # The screen did not move: the Enter was swallowed or landed too early. Once more.
            again = replace(message, phase_at=now, enters=message.enters + 1)
            return DeliveryStep(PressEnter(message.agent), again, CONFIRM_SECONDS)
        delivered = replace(message, phase=Phase.DELIVERED, delivered_at=now)
        return DeliveryStep(None, delivered, None)
    return DeliveryStep(None, message, None)


def interrupted(message: QueuedMessage) -> QueuedMessage:
    """A delivery whose agent went away: a paste never submitted goes back to the queue.

    A message already submitted stays submitted (and is then confirmed as delivered): sending it
    again could make an agent do the same work twice.
    """
    if message.phase is Phase.PASTED:
        return replace(message, phase=Phase.QUEUED, phase_at=None)
    return message
