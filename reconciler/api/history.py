"""What happened to objects: events (`orch events`) and the edges agents' machines took, as the
controller records them and as the store gives them back (with their id and time).

Apart from `status` so that the commands that only read records (`get agents`, `send`) do not
build these dataclasses at start-up (about a millisecond each): the controller writes them,
`describe` and `events` read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.api.status import AgentState


class EventType(StrEnum):
    """Kubernetes event types: Warning means a person may want to look."""

    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Event:
    """Something that happened to an object, as `orch events` shows it."""

    object: str
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    """One edge taken by an agent's machine, persisted as history."""

    object: str
    source: AgentState
    dest: AgentState
    trigger: str
    reason: str
    message: str


@dataclass(frozen=True)
class StoredEvent:
    """An event as persisted, with its id and time."""

    id: int
    time: float
    object: str
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class StoredTransition:
    """A machine transition as persisted, with its time."""

    id: int
    time: float
    transition: Transition
