"""Skip the planning of a pass whose inputs are all those of the last one, which changed nothing.

Planning reads the store (one data version and own-commit count say whether it changed), the
panes and screens tmux shows, the guard reports, the limits in the CLIs' logs, the cooldowns the
usage collector found, and the time zone. When all of them are as they were for a pass that
changed nothing, with every agent's plan known to stay quiet until some moment (core.plan_memo),
planning again changes nothing before the earliest such moment: the pass keeps what that one
found (the pids to watch) and looks again then. Only the clock moved, and it is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo

from reconciler.api.observation import PaneObservation
from reconciler.core.agent_plan import DesiredAgent, GuardReport
from reconciler.core.cli_log import LogLimit


@dataclass(frozen=True)
class PassInputs:
    """What a pass plans from, but the clock (`screens`: the controller's cached captures)."""

    store_mark: tuple[int, int]
    desired: Mapping[str, DesiredAgent]
    broken: Mapping[str, str]
    panes: Mapping[str, PaneObservation]
    screens: Mapping[str, object]
    log_limits: Mapping[str, LogLimit]
    guards: Mapping[str, GuardReport]
    cooldowns: Mapping[str, float | None]
    timezone: tzinfo | None


class QuietPass:
    """The inputs of the last pass that changed nothing, until when they hold, and its pids."""

    def __init__(self) -> None:
        self._kept: tuple[PassInputs, float, dict[int, str]] | None = None

    def holds(self, inputs: PassInputs, now: float) -> tuple[dict[int, str], float] | None:
        """(pids to watch, until when) when `inputs` are those of the kept quiet pass and its
        moment has not come; None: plan this pass."""
        if self._kept is None:
            return None
        kept, until, pids = self._kept
        if now >= until or kept != inputs:
            return None
        return dict(pids), until

    def keep(self, inputs: PassInputs, until: float | None, pids: Mapping[int, str]) -> None:
        """Keep a pass that changed nothing and stays so until `until` (None: it changed
        something, or cannot be dated: plan the next pass)."""
        self._kept = None if until is None else (inputs, until, dict(pids))
