"""Skip planning an agent whose inputs have not changed since a plan that did nothing.

`plan_agent` is pure: the same desired spec, record, observation and context give the same plan.
The only input that moves on its own is the clock, so a plan that changed nothing stays a plan
that changes nothing, for the same inputs, until the earliest moment the clock can matter. That
moment is the plan's own `requeue_after` for every deadline the planner waits on (stale.after,
idle.after, a crash-loop backoff, start-up, pending keys), plus the few comparisons with the
clock that do not requeue, which `quiet_until` either dates itself or refuses to skip:

- a steady agent only (Running or Stale with its process alive); anything in motion (start-up,
  a cooldown, a person's question, keys or a message in flight, a replay, crash history that
  resetAfter will clear, a signal, an answer, a limit in the CLI's log) is planned every pass;
- the signals-vs-screen cross-check (`signals.weigh`) turns at CROSSCHECK_SECONDS after the
  later of the last signal and the screen's verdict;
- a cooldown in force (an account's, a budget's) ends at its deadline.

An idle team is then planned once, and again only when something it reads changes or a deadline
comes: the controller's pass stays cheap without passing less often (the same moments).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import tzinfo

from reconciler.api.intents import AgentIntent
from reconciler.api.messages import QueuedMessage
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent
from reconciler.core.signals import CROSSCHECK_SECONDS, AgentSignal

#: The states in which a plan that changes nothing is remembered.
STEADY = (AgentState.RUNNING, AgentState.STALE)


@dataclass(frozen=True)
class PlanInputs:
    """Everything `plan_agent` reads for one agent, but the clock."""

    desired: DesiredAgent | None
    recorded: AgentRecord | None
    observation: AgentObservation
    message: QueuedMessage | None
    signals: tuple[AgentSignal, ...]
    intent: AgentIntent
    cooldowns: Mapping[str, float | None]
    timezone: tzinfo | None
    installation: str


def changes_nothing(
    plan: AgentPlan, record: AgentRecord | None, recorded: AgentRecord | None
) -> bool:
    """Whether carrying out `plan`, which left the agent's record `record`, changed nothing."""
    return (
        (record is recorded or record == recorded)
        and not plan.actions
        and not plan.events
        and not plan.transitions
        and plan.message is None
        and not plan.cooldowns
        and plan.answer is None
    )


def quiet_until(
    inputs: PlanInputs, plan: AgentPlan, record: AgentRecord | None, now: float
) -> float | None:
    """Until when planning `inputs` again (at any later time) provably changes nothing, given
    that `plan`, made from them at `now` and leaving the record `record`, changed nothing; None:
    plan them again next time."""
    observed = inputs.observation
    if (
        inputs.desired is None
        or record is None
        or record.state not in STEADY
        or not observed.alive
        or observed.log_limit is not None
        or (observed.verdict is not None and observed.verdict.prompt is not None)
        or inputs.message is not None
        or inputs.signals
        or inputs.intent.answer is not None
        or record.replaying
        or record.crash_times
        or record.pending_keys
        or record.keys_sent_at is not None
        or record.cooldown_until is not None
        or not changes_nothing(plan, record, inputs.recorded)
    ):
        return None
    due = math.inf if plan.requeue_after is None else now + plan.requeue_after
    if record.signal_at is not None and record.screen_activity_since is not None:
        crosscheck = max(record.signal_at, record.screen_activity_since) + CROSSCHECK_SECONDS
        if crosscheck > now:
            due = min(due, crosscheck)
    for until in inputs.cooldowns.values():
        if until is not None and until > now:
            due = min(due, until)
    return due


class PlanMemo:
    """The inputs of each agent's last plan that changed nothing, and until when they hold."""

    def __init__(self) -> None:
        self._quiet: dict[str, tuple[PlanInputs, float]] = {}

    def due(self, name: str, inputs: PlanInputs, now: float) -> float | None:
        """When `name` must be planned again (None: now): its inputs are those of its last
        quiet plan and the moment that plan holds until has not come."""
        kept = self._quiet.get(name)
        if kept is None or now >= kept[1] or kept[0] != inputs:
            return None
        return kept[1]

    def remember(
        self, name: str, inputs: PlanInputs, plan: AgentPlan, record: AgentRecord | None, now: float
    ) -> None:
        """Keep the inputs of `name`'s plan made at `now` (which left its record `record`), if
        skipping them later is safe."""
        until = quiet_until(inputs, plan, record, now)
        if until is None or until <= now:
            self._quiet.pop(name, None)
        else:
            # a copy: the pass goes on updating its cooldowns as later agents plan
            self._quiet[name] = (replace(inputs, cooldowns=dict(inputs.cooldowns)), until)

    def until(self, names: set[str]) -> float | None:
        """The earliest moment one of `names` must be planned again; None if one of them must
        be planned next time."""
        if any(name not in self._quiet for name in names):
            return None
        return min((self._quiet[name][1] for name in names), default=math.inf)

    def forget(self, name: str) -> None:
        """Plan `name` next time whatever its inputs (its handling failed, or ran elsewhere)."""
        self._quiet.pop(name, None)

    def keep_only(self, names: set[str]) -> None:
        """Drop agents that are gone."""
        for name in set(self._quiet) - names:
            del self._quiet[name]
