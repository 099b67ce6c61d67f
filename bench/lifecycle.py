"""Figure 12: what one state machine edge costs — `next_state` and `next_run_state`, µs per call.

In-process. `transitions` stays the engine: each kind's Machine is built once and answers every
call from the edges it declared (reconciler.core.lifecycle). Each sample is the mean of a batch of
calls cycling through every edge of the kind's table, so the figure is the per-call cost a pass
pays, not the first call's machine build (which happens before timing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from bench.report import Budget, Figure
from reconciler.core.lifecycle import (
    AGENT_TRANSITIONS,
    RUN_TRANSITIONS,
    next_run_state,
    next_state,
)

BATCHES = 200
BATCH = 500
#: "next_state in microseconds" (issue 13): a pass fires a few edges per agent.
BUDGET_US = 10.0


def run(batches: int = BATCHES) -> list[Figure]:
    """Per-call µs of next_state over every agent edge, and of next_run_state over run edges."""
    agent = _edges(AGENT_TRANSITIONS)
    runs = _edges(RUN_TRANSITIONS)
    return [
        Figure(
            "next_state(), one agent edge",
            "µs",
            _time(next_state, agent, batches),
            Budget(BUDGET_US),
            note=f"{len(agent)} edges of the agent machine, built once",
        ),
        Figure(
            "next_run_state(), one run edge",
            "µs",
            _time(next_run_state, runs, batches),
            Budget(BUDGET_US),
            note=f"{len(runs)} edges of the run machine, built once",
        ),
    ]


def _edges(table: tuple[tuple[str, tuple[Any, ...], Any], ...]) -> list[tuple[Any, str]]:
    """Every (source state, trigger) the table declares."""
    return [(source, trigger) for trigger, sources, _ in table for source in sources]


def _time(
    fire: Callable[[Any, str], StrEnum], edges: Sequence[tuple[Any, str]], batches: int
) -> tuple[float, ...]:
    """µs per call, one sample per batch of BATCH calls cycling through `edges`."""
    fire(*edges[0])  # builds the machine: not a pass's cost
    calls = [edges[i % len(edges)] for i in range(BATCH)]
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for state, trigger in calls:
            fire(state, trigger)
        samples.append((time.perf_counter() - start) / BATCH * 1e6)
    return tuple(samples)
