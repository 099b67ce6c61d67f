"""What people ask of one agent through the CLI (or `orch top`): hold it stopped, restart or start
it, answer its live prompt.

Pure data. The CLI records an intent in the store; only the controller acts on it and writes the
agent's status, so there is one writer per fact. A hold is level-triggered (the agent stays
Stopped while it exists, across controller restarts and applies); a restart or start is a request
counted by a sequence number the agent's record remembers having served.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PendingAnswer:
    """`orch answer`: text typed (then Enter unless `enter` is False) or keys pressed."""

    id: int
    text: str
    keys: tuple[str, ...]
    enter: bool
    by: str


@dataclass(frozen=True)
class AgentIntent:
    """The standing intents about one agent."""

    held_by: str | None = None
    held_at: float | None = None
    request_seq: int = 0
    request_verb: str = ""  # restart | start
    request_by: str = ""
    answer: PendingAnswer | None = None

    @property
    def held(self) -> bool:
        """`orch stop` was asked and no `orch start` since."""
        return self.held_by is not None


NO_INTENT = AgentIntent()


@dataclass(frozen=True)
class AnswerOutcome:
    """What became of an answer: typed, or refused because no prompt waited."""

    id: int
    answered: bool
    detail: str
