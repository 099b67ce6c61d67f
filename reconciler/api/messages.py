"""Messages as `orch send` queues them and the controller records their way into an agent.

Pure data, apart from `core.delivery` (how a message is delivered: its screen checks and their
regexes) so that the commands that only show or wait for messages (`describe agent`, `send
--wait`) do not load those (about 15 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Where a message is on its way into the agent."""

    QUEUED = "queued"
    PASTING = "pasting"
    PASTED = "pasted"
    ENTERING = "entering"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNCONFIRMED = "unconfirmed"
    UNCERTAIN = "uncertain"


#: Phases a message never leaves: it is out of the queue.
FINISHED = (Phase.DELIVERED, Phase.UNCONFIRMED, Phase.UNCERTAIN)


@dataclass(frozen=True)
class QueuedMessage:
    """A message waiting for (or on its way into) an agent.

    `screen_digest` is the screen before the paste while pasting and pasted, and the screen after
    the paste was drawn once Enter is pressed. `log_inode`/`log_offset` mark where the pane log
    stood when the paste was intended: the evidence for an unsettled paste comes after it.
    """

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
    log_inode: int | None = None
    log_offset: int | None = None
    agent_uid: str = ""  # the agent object it was queued for ("" before uids existed)
