"""The agent's activity from what it says (signals) and what its screen shows.

Pure. Today only the screen speaks: `current_activity` is the seam where the agent's own signals
(hooks, notify commands; CONTRACT.md "Signals") will be weighed against the screen's verdict, so
the rest of orch reads one answer and never asks where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.api.activity import Activity


@dataclass(frozen=True, slots=True)
class Signal:
    """One event the agent reported about itself (`orch signal AGENT EVENT`)."""

    event: str
    at: float


def current_activity(signals: Sequence[Signal], screen: Activity) -> Activity:
    """The activity to act on, from the agent's last `signals` and the screen's verdict.

    No signal source is wired yet, so the screen decides. When signals arrive, a fresh one wins
    over the screen and the screen stays the cross-check (a hook that stops arriving must not
    freeze the state): that rule belongs here and nowhere else.
    """
    del signals  # the seam: no CLI's signals are wired yet
    return screen


def counts_as_busy(activity: Activity) -> bool:
    """Whether quiet means stuck: a busy agent, or one whose screen cannot tell (a generic
    program falls back to the screen hash, as before activity existed)."""
    return activity in (Activity.BUSY, Activity.UNKNOWN)
