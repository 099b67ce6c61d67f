"""Figure 3: one observation pass over 10 / 50 / 100 agents, and one full controller pass.

In-process, against a private tmux server per part:

- `Tmux.observe()` (the one `list-panes -a` call that reads every agent's liveness and activity)
  over N plain sessions started with `Tmux.start(..., "sleep 100000")`: median and p95 of
  OBSERVE_CALLS calls per N. Budget: < 30 ms at 100 agents, and linear: doubling the agents
  from 50 to 100 at most doubles the time (the fitted fixed cost and per-agent slope are in the
  JSON).
- `Controller.run_pass()` with N applied idle agents, all Running (steady state: nothing to do
  but observe, plan and persist): median and p95 of PASS_CALLS passes per N. Informational.

N grows on one server (10, then 40 more, then 50 more), so each size is measured with exactly N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench.report import Budget, Figure
from bench.sandbox import StoreReader, sandbox
from bench.workload import IDLE, idle_agents
from reconciler.adapters.deadline import wait_until
from reconciler.adapters.tmux import Tmux
from reconciler.controller.apply import apply_files
from reconciler.controller.loop import Controller

SIZES = (10, 50, 100)
OBSERVE_CALLS = 50
PASS_CALLS = 30
BUDGET_MS = 30.0


def run() -> list[Figure]:
    """Observation-pass figures per size, the linearity check, then full passes per size."""
    observe = _observe_figures()
    return [*observe, _linearity(SIZES, observe), *_pass_figures()]


def _observe_figures() -> list[Figure]:
    figures = []
    with sandbox() as box:
        tmux = Tmux(box.socket)
        env = {"ORCH_STATE_DIR": str(box.state_dir)}
        started = 0
        for size in SIZES:
            for i in range(started, size):
                tmux.start(f"plain-{i}", IDLE, str(box.workdir), env)
            started = size
            if len(tmux.observe()) != size:
                raise RuntimeError(f"tmux does not show the {size} sessions just started")
            samples = time_ms(tmux.observe, OBSERVE_CALLS)
            budget = Budget(BUDGET_MS) if size == max(SIZES) else Budget(None)
            figures.append(Figure(f"Tmux.observe(), {size} agents", "ms", samples, budget))
    return figures


def _linearity(sizes: tuple[int, ...], observe: list[Figure]) -> Figure:
    """t(100) / t(50): at most 2 when the cost grows no faster than the number of agents."""
    medians = [f.median for f in observe]
    slope, intercept = _fit(list(sizes), medians)
    growth = sizes[-1] / sizes[-2]
    return Figure(
        f"Tmux.observe() growth, t({sizes[-1]}) / t({sizes[-2]})",
        "x",
        (medians[-1] / medians[-2],),
        Budget(growth, text=f"< {growth:g} (linear)"),
        note=f"least squares over the medians: {intercept:.2f} ms + {slope * 1000:.1f} us/agent",
    )


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    """Least-squares line through the points: (slope, intercept)."""
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return slope, mean_y - slope * mean_x


def _pass_figures() -> list[Figure]:
    with sandbox() as box:
        controller = Controller(box.state_dir, box.socket)
        reader = StoreReader(box.state_dir)
        try:
            return [_time_passes(controller, reader, box.workdir, size) for size in SIZES]
        finally:
            reader.close()
            controller.store.close()


def _time_passes(controller: Controller, reader: StoreReader, workdir: Path, size: int) -> Figure:
    """Apply `size` idle agents, pass until all are Running, then time steady-state passes."""
    path = workdir / "agents.yaml"
    path.write_text(idle_agents("idle", size))
    apply_files(controller.store, [path])
    names = [f"idle-{i}" for i in range(size)]
    wait_until(
        lambda: _pass_then(controller, lambda: reader.running(*names)),
        timeout=60,
        interval=0.02,
        what=f"{size} agents Running",
    )
    samples = time_ms(controller.run_pass, PASS_CALLS)
    return Figure(f"Controller.run_pass(), {size} agents", "ms", samples, Budget(None))


def _pass_then(controller: Controller, check: Callable[[], bool]) -> bool:
    controller.run_pass()
    return check()


def time_ms(call: Callable[[], object], times: int) -> tuple[float, ...]:
    """Wall-clock duration of `times` calls, in ms."""
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return tuple(samples)
