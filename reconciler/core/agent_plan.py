"""The shapes planning works with: its inputs, its output, and the builder that accumulates it.

Pure data and bookkeeping shared by the planner (processes) and health (screens): a plan is the
new record, the actions for the executor, the transitions and events to persist, the delivery
progress of a message, shared cooldowns to record, and when to look again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cached_property

from reconciler.api.actions import Action
from reconciler.api.history import Event, Transition
from reconciler.api.intents import NO_INTENT, AgentIntent, AnswerOutcome
from reconciler.api.manifest import Agent
from reconciler.api.messages import QueuedMessage
from reconciler.api.observation import PaneObservation
from reconciler.api.status import (
    AgentRecord,
    AgentState,
    Condition,
    ConditionStatus,
    holds,
    set_condition,
)
from reconciler.core.cli_log import LogLimit
from reconciler.core.delivery import Evidence
from reconciler.core.launch import launch_hash
from reconciler.core.lifecycle import next_state
from reconciler.core.record_builder import RecordBuilder
from reconciler.core.screen import ScreenVerdict
from reconciler.core.signals import AgentSignal


@dataclass(frozen=True)
class DesiredAgent:
    """An applied Agent, the generation of its spec (bumped on every change) and the uid of the
    object (new when an agent is deleted and applied again)."""

    agent: Agent
    generation: int
    uid: str = ""

    @cached_property
    def launch_hash(self) -> str:
        """The digest of what a launch depends on (core.launch), once per parsed spec."""
        return launch_hash(self.agent)


@dataclass(frozen=True)
class GuardReport:
    """The latest guard check of an agent's workdir, published as the GuardTripped condition.

    `baseline` is the (uid, generation) whose starting point the guards hold (None: not yet)."""

    tripped: bool
    reason: str
    message: str
    baseline: tuple[str, int] | None = None


@dataclass(frozen=True)
class AgentObservation:
    """What tmux shows of one agent: its pane (None: no session), how it ended, its screen."""

    pane: PaneObservation | None = None
    exit_code: int | None = None
    screen: str | None = None
    verdict: ScreenVerdict | None = None
    """What `screen` shows (`screen.classify`), classified by the controller: never in a plan."""
    guard: GuardReport | None = None
    stopping_until: float | None = None  # a launch of it is being stopped: SIGKILL then
    log_limit: LogLimit | None = None
    """A limit in the new lines of the CLI's own debug log (`cli_log`), read by the controller."""

    @property
    def alive(self) -> bool:
        """The agent's session exists and its process has not exited."""
        return self.pane is not None and not self.pane.dead


@dataclass(frozen=True)
class PlanContext:
    """Facts of the moment, shared by every agent's plan in a pass (`message` and `signals`:
    this agent's next queued message and its new signals)."""

    now: float
    timezone: tzinfo | None = None
    cooldowns: Mapping[str, float] = field(default_factory=dict)
    message: QueuedMessage | None = None
    evidence: Evidence | None = None
    """The pane log's verdict on `message` when it is an unsettled paste."""
    turn_started_at: float | None = None
    """The agent's last turn-start signal (its own hooks), when it sends them."""
    installation: str = ""  # this installation's id: only sessions stamped with it are adopted
    signals: tuple[AgentSignal, ...] = ()
    """This agent's own signals (`orch signal`) not planned yet, oldest first."""
    intent: AgentIntent = NO_INTENT
    """The last `orch restart|stop|start` asked of this agent."""


@dataclass(frozen=True)
class AgentPlan:
    """The outcome of one planning step for one agent."""

    record: AgentRecord | None
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    transitions: tuple[Transition, ...] = ()
    requeue_after: float | None = None
    message: QueuedMessage | None = None
    cooldowns: Mapping[str, float | None] = field(default_factory=dict)
    answer: AnswerOutcome | None = None


class PlanBuilder(RecordBuilder[AgentRecord]):
    """Accumulates one agent's plan: the record as it evolves, plus actions, events and
    transitions."""

    kind = "agent"

    def __init__(self, record: AgentRecord, ctx: PlanContext) -> None:
        super().__init__(record, ctx.now)
        self.ctx = ctx
        self.actions: list[Action] = []
        self.transitions: list[Transition] = []
        self.requeue_after: float | None = None
        self.message: QueuedMessage | None = None
        self.cooldowns: dict[str, float | None] = {}
        self.answer: AnswerOutcome | None = None

    @property
    def acted(self) -> bool:
        """Whether this plan already mutates something: at most one mutation per pass."""
        return bool(self.actions)

    def next_state(self, trigger: str) -> AgentState:
        """Where `trigger` leads the agent, as the agent machine says."""
        return next_state(self.record.state, trigger)

    def take(self, trigger: str, reason: str, message: str, warning: bool = False) -> None:
        """Fire `trigger`, and keep the edge as history (a transition) besides its event."""
        source = self.record.state
        super().take(trigger, reason, message, warning)
        dest = self.record.state
        self.transitions.append(Transition(self.target, source, dest, trigger, reason, message))

    def requeue(self, after: float) -> None:
        """Ask to look again within `after` seconds."""
        after = max(after, 0.0)
        self.requeue_after = after if self.requeue_after is None else min(self.requeue_after, after)

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Publish an observation as a condition (its time kept while its status holds)."""
        if holds(self.record.conditions, type_, status, reason, message):
            return  # nothing new: most conditions of most passes
        new = Condition(type_, status, reason, message, self.now)
        self.update(conditions=set_condition(self.record.conditions, new))

    def build(self) -> AgentPlan:
        """The finished plan."""
        return AgentPlan(
            self.record,
            tuple(self.actions),
            tuple(self.events),
            tuple(self.transitions),
            self.requeue_after,
            self.message,
            dict(self.cooldowns),
            self.answer,
        )
