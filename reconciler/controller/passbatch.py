"""What one controller pass will persist, accumulated agent by agent and committed at once.

A batch the store refused (locked, disk full, read-only) is kept: the next pass reads the store
through it (`overlay_records`, `overlay_messages`), so the controller goes on supervising from
memory, and commits it merged with its own batch once the store takes writes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.adapters.store import Store
from reconciler.api.history import Event, Transition
from reconciler.api.messages import FINISHED, QueuedMessage
from reconciler.api.status import AgentRecord
from reconciler.core.agent_plan import AgentPlan

#: Events and transitions kept in memory while the store refuses writes (the newest).
UNSAVED_HISTORY = 1000


@dataclass
class PassBatch:
    """Records (None: forget), history, delivery progress, cooldowns and intent outcomes."""

    records: dict[str, AgentRecord | None] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    messages: dict[int, QueuedMessage] = field(default_factory=dict)
    cooldowns: dict[str, float | None] = field(default_factory=dict)
    settled: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to persist."""
        return not (
            self.records
            or self.events
            or self.transitions
            or self.messages
            or self.cooldowns
            or self.settled
        )

    def add_plan(self, plan: AgentPlan) -> None:
        """Take in what a plan (whose actions all happened) persists besides its record."""
        self.events.extend(plan.events)
        self.transitions.extend(plan.transitions)
        if plan.message is not None:
            self.messages[plan.message.id] = plan.message
        self.cooldowns.update(plan.cooldowns)

    def merged(self, newer: PassBatch) -> PassBatch:
        """This unsaved batch with a newer one on top."""
        return PassBatch(
            {**self.records, **newer.records},
            [*self.events, *newer.events][-UNSAVED_HISTORY:],
            [*self.transitions, *newer.transitions][-UNSAVED_HISTORY:],
            {**self.messages, **newer.messages},
            {**self.cooldowns, **newer.cooldowns},
            {**self.settled, **newer.settled},
        )

    def commit(self, store: Store) -> None:
        """Persist everything in one transaction."""
        store.commit_pass(
            self.records,
            self.events,
            self.transitions,
            list(self.messages.values()),
            self.cooldowns,
            self.settled,
        )

    def overlay_records(self, stored: Mapping[str, AgentRecord]) -> dict[str, AgentRecord]:
        """Records as the store would hold them had this batch been committed."""
        records = dict(stored)
        for name, record in self.records.items():
            if record is None:
                records.pop(name, None)
            else:
                records[name] = record
        return records

    def overlay_messages(self, heads: Mapping[str, QueuedMessage]) -> dict[str, QueuedMessage]:
        """Queue heads as they would be had this batch been committed (a finished head is left
        out until the store knows it: its successor waits one more pass)."""
        result = dict(heads)
        for message in self.messages.values():
            head = result.get(message.agent)
            if head is not None and head.id == message.id:
                if message.phase not in FINISHED:
                    result[message.agent] = message
                else:
                    del result[message.agent]
        return result
