"""The store reads of a controller pass, taken again only when the store changed.

An idle pass read the same rows every second (desired objects, records, queued messages,
cooldowns, intents, applied files). Whether anything changed is one `PRAGMA data_version` for
other connections' commits (the CLI's), plus this connection's own commit count; while both stay
put, the last answers stand. A commit landing during a pass is seen by the next one, which the
writer's wake-up brings at once, as if it had landed a moment later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reconciler.adapters.store import Store
from reconciler.api.intents import AgentIntent
from reconciler.api.messages import QueuedMessage
from reconciler.api.status import AgentRecord

T = TypeVar("T")


class StoreReads:
    """Cached reads of one store, valid for one data version and one own-commit count."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._version = -1
        self._kept: dict[str, tuple[tuple[int, int], object]] = {}

    def begin_pass(self) -> None:
        """Ask the store once whether another connection committed since the last pass."""
        self._version = self._store.data_version()

    def mark(self) -> tuple[int, int]:
        """The store's state as of now: equal marks, equal reads."""
        return (self._version, self._store.commits)

    def kept(self, what: str, read: Callable[[], T]) -> T:
        """`read()`'s answer, read again only once the store changed since it was kept under
        `what` (the controller keeps what it derives from the store this way too)."""
        mark = self.mark()
        kept = self._kept.get(what)
        if kept is not None and kept[0] == mark:
            return kept[1]  # type: ignore[return-value]
        value = read()
        self._kept[what] = (mark, value)
        return value

    def agent_versions(self) -> list[tuple[str, str, int]]:
        """(name, uid, generation) of every desired Agent."""
        return list(self.kept("versions", lambda: self._store.object_versions("Agent")))

    def agent_records_checked(self) -> tuple[dict[str, AgentRecord], dict[str, str]]:
        """Every agent record, and why each unreadable one could not be read."""
        records, unreadable = self.kept("records", self._store.agent_records_checked)
        return dict(records), dict(unreadable)

    def pending_messages(self) -> dict[str, QueuedMessage]:
        """Each agent's next queued message."""
        return dict(self.kept("messages", self._store.pending_messages))

    def cooldowns(self) -> dict[str, float]:
        """Account and budget cooldowns in force."""
        return dict(self.kept("cooldowns", self._store.cooldowns))

    def intents(self) -> dict[str, AgentIntent]:
        """The last restart/stop/start asked of each agent."""
        return dict(self.kept("intents", self._store.intents))

    def sources(self) -> list[str]:
        """The applied manifest files, watched for live edits."""
        return list(self.kept("sources", self._store.sources))
