"""A live agent's observation as the controller hands it to the planner: its pane, its screen and
the screen's verdict, classified once (the controller classifies; the planner only reads it)."""

from __future__ import annotations

from datetime import UTC

from reconciler.api.observation import PaneObservation
from reconciler.core.agent_plan import AgentObservation, DesiredAgent
from reconciler.core.health import local_time
from reconciler.core.screen import classify


def observed(
    screen: str, desired: DesiredAgent, now: float, pane: PaneObservation | None = None
) -> AgentObservation:
    """The observation of `desired` showing `screen` at `now` (UTC) in `pane` (a plain one by
    default), with the verdict the controller would make of it."""
    pane = pane or PaneObservation("executor", "%1", 100, False, 0, 0)
    verdict = classify(screen, desired.agent.spec, local_time(now, UTC), pane.cursor_y)
    return AgentObservation(pane, None, screen, verdict)
