"""Figure 4: controller idle CPU with 20 agents.

Applies 20 idle agents (`sleep 100000`) with `orch apply --wait`, so all are Running, then samples
CPU time (psutil cpu_times, user + system) once a second for WINDOW_SECONDS of a deliberately idle
window: of the controller process itself, of the tmux client processes it ran and reaped (its
children's times), and of the tmux server. Each sample is % of one core over that second; the
verdict is on the mean over the whole window (CPU times tick at 10 ms, so one second's sample
moves in steps of 1 %).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from bench.report import Budget, Figure
from bench.sandbox import sandbox
from bench.workload import idle_agents

AGENTS = 20
WINDOW_SECONDS = 20
BUDGET_PERCENT = 1.0


@dataclass(frozen=True)
class _Sample:
    """Cumulative CPU seconds at one instant (`at`: time.monotonic())."""

    at: float
    controller: float
    clients: float
    server: float


def run(window: int = WINDOW_SECONDS) -> list[Figure]:
    """Sample the idle installation's CPU use once a second for `window` seconds."""
    with sandbox() as box:
        path = box.workdir / "agents.yaml"
        path.write_text(idle_agents("idle", AGENTS))
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "60s")
        pid = box.controller_pid()
        if pid is None:
            raise RuntimeError("no controller.pid after apply")
        controller, server = psutil.Process(pid), psutil.Process(box.tmux_server_pid())
        samples = _sample(lambda: _read(controller, server), window)
    return _figures(samples)


def _read(controller: psutil.Process, server: psutil.Process) -> _Sample:
    own, tmux = controller.cpu_times(), server.cpu_times()
    return _Sample(
        at=time.monotonic(),
        controller=own.user + own.system,
        clients=own.children_user + own.children_system,
        server=tmux.user + tmux.system,
    )


def _sample(read: Callable[[], _Sample], window: int) -> list[_Sample]:
    """`window` + 1 readings one second apart (the deliberate idle window)."""
    readings = [read()]
    start = time.monotonic()
    for second in range(1, window + 1):
        time.sleep(max(0.0, start + second - time.monotonic()))
        readings.append(read())
    return readings


def _figures(readings: list[_Sample]) -> list[Figure]:
    parts: dict[str, Callable[[_Sample], float]] = {
        "controller process": lambda s: s.controller,
        "controller's tmux clients": lambda s: s.clients,
        "tmux server": lambda s: s.server,
        "all of the above": lambda s: s.controller + s.clients + s.server,
    }
    budgeted = {"controller process", "all of the above"}
    figures = []
    for label, part in parts.items():
        percents = tuple(
            (part(b) - part(a)) / (b.at - a.at) * 100.0 for a, b in itertools.pairwise(readings)
        )
        budget = Budget(BUDGET_PERCENT, "mean") if label in budgeted else Budget(None)
        figures.append(Figure(f"idle CPU, {AGENTS} agents: {label}", "%", percents, budget))
    return figures
