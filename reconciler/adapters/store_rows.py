"""Rows of the store that only some commands and the controller read: what an apply declares
and changes, usage records, runs, intents and run signals.

Apart from `store` so that the commands users and agents call most (`get agents`, `describe
agent`, `send`) do not build these dataclasses at start-up (about a millisecond each); the store
imports each where it makes one.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any

    from reconciler.api.messages import QueuedMessage
    from reconciler.api.status import AgentRecord
    from reconciler.core.runs import RunRecord
    from reconciler.core.usage import UsageEntry


@dataclass(frozen=True)
class Change:
    """What an apply does (or would do) to one object."""

    kind: str
    name: str
    verb: str  # created | configured | unchanged | deleted
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True)
class Declaration:
    """An object an apply declares: kind, name, its document and where it is written."""

    kind: str
    name: str
    document: dict[str, Any]
    source: str
    line: int | None


@dataclass(frozen=True)
class StoredUsage:
    """One model call of an agent, with what it was working for when it made it."""

    agent: str
    time: float
    entry: UsageEntry
    account: str | None = None
    run: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class StoredRun:
    """A run as stored: its playbook snapshot and its checkpoint."""

    name: str
    playbook: str
    spec: dict[str, Any]
    record: RunRecord
    created: float
    cancelled: bool


@dataclass(frozen=True)
class Intent:
    """A side effect recorded as intended and never settled: what was about to be done
    (`actions`, as dicts with their `kind`) and what would hold once it was."""

    id: int
    object: str
    uid: str
    actions: tuple[dict[str, Any], ...]
    record: AgentRecord | None
    message: QueuedMessage | None
    created: float


@dataclass(frozen=True)
class RunSignal:
    """An `orch approve` or `orch step done` not acted on yet."""

    id: int
    run: str
    kind: str  # approve | done
    step: str
    created: float
    attempt: int = 0
