"""One way to build a plan: a record moved along its machine's edges, and the events it tells.

The agent planner (`agent_plan.PlanBuilder`) and the run planner (`runs.RunBuilder`) both
accumulate their plan on this; each adds what its own plan carries (actions, prompts, ...).
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from reconciler.api.history import Event, EventType

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    class _Record(DataclassInstance, Protocol):
        """A frozen record with a name and a machine state (AgentRecord, RunRecord)."""

        @property
        def name(self) -> str: ...

        @property
        def state(self) -> StrEnum: ...


R = TypeVar("R", bound="_Record")


class RecordBuilder(Generic[R]):
    """Accumulates one plan's record as it evolves, and the events it tells about its object."""

    kind: ClassVar[str]
    """The kind of object, as events name it (`agent/NAME`, `run/NAME`)."""

    def __init__(self, record: R, now: float) -> None:
        self.record = record
        self.now = now
        self.events: list[Event] = []

    @property
    def target(self) -> str:
        """The event object this plan is about, as `KIND/NAME`."""
        return f"{self.kind}/{self.record.name}"

    def next_state(self, trigger: str) -> StrEnum:
        """Where `trigger` leads the record, as its machine says (raises for a missing edge)."""
        raise NotImplementedError

    def take(self, trigger: str, reason: str, message: str, warning: bool = False) -> None:
        """Fire `trigger` on the machine, set the record's state and reason, tell the event."""
        dest = self.next_state(trigger)
        self.update(state=dest, since=self.now, reason=reason, message=message)
        self.event(reason, message, warning)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        """Record an event about this plan's object."""
        kind = EventType.WARNING if warning else EventType.NORMAL
        self.events.append(Event(self.target, kind, reason, message))

    def update(self, **changes: Any) -> None:
        """Change fields of the record being built (a no-op when nothing differs: idle passes
        update nothing, and `replace` is most of their cost)."""
        if any(getattr(self.record, name) != value for name, value in changes.items()):
            self.record = replace(self.record, **changes)
