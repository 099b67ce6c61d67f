"""Figure 12: idle CPU and memory of orch and its peers side by side, 20 idle programs each.

orch: bench.idle, run again here so that every row comes from the same run; its two totals (the
controller with its tmux clients, the tmux server and the log capture: CPU, then PSS) are the
baselines the ratios are taken to. supervisord, pm2 and circus: each in its own sandbox, started
as bench.peer_daemons starts them, with 20 programs `sleep 100000` (bench.workload.IDLE, run by
the supervisor itself, no shell). Once all 20 run, the supervisor's tree besides the programs is
measured as bench.idle measures orch's: the daemon (supervisord; pm2's God daemon, a node
process; circusd) and any descendant of it that is neither a program nor below one. Its CPU time
(user + system, its own and that of the children it reaped) is read once a second for
bench.idle.WINDOW_SECONDS, each sample % of one core; the figure is the mean over the window
(one-second samples move in steps of 1 %, the kernel's 10 ms tick). Memory: the tree's PSS at
the end of the window.

A peer that cannot be installed is a "skipped" row, one that fails an ERROR row (in both
tables); the others still run. Every row is "info": orch's budgets are held in bench.idle's rows.
"""

from __future__ import annotations

import dataclasses
import itertools
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psutil

from bench import idle, peer_daemons, peer_tools
from bench.report import Budget, Figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import IDLE
from reconciler.adapters.deadline import wait_until

PROGRAMS = idle.AGENTS
CPU_GROUP = f"idle CPU, {PROGRAMS} idle programs"
MEMORY_GROUP = f"memory (PSS), {PROGRAMS} idle programs"
PROGRAM_NAME = shlex.split(IDLE)[0]

Start = Callable[[Sandbox, peer_daemons.Programs], AbstractContextManager[int]]

PEERS: dict[str, Start] = {
    "supervisord": peer_daemons.supervisord,
    "pm2": peer_daemons.pm2,
    "circus": peer_daemons.circus,
}


def run(window: int = idle.WINDOW_SECONDS) -> list[Figure]:
    """orch, then each peer: two rows each, one per table."""
    rows = _rows("orch", lambda: _orch(window))
    for name, start in PEERS.items():
        rows.extend(_rows(name, lambda start=start: _peer(start, window)))  # type: ignore[misc]
    return rows


def _rows(name: str, measure: Callable[[], tuple[Figure, Figure]]) -> list[Figure]:
    """The CPU row and the memory row of one supervisor, or its two failure rows."""
    try:
        cpu, memory = measure()
    except Exception as err:  # noqa: BLE001 - skipped or ERROR rows, and the others still run
        return [peer_tools.failed_row(name, group, err) for group in (CPU_GROUP, MEMORY_GROUP)]
    baseline = name == "orch"
    return [
        dataclasses.replace(cpu, name=name, group=CPU_GROUP, baseline=baseline),
        dataclasses.replace(memory, name=name, group=MEMORY_GROUP, baseline=baseline),
    ]


def _orch(window: int) -> tuple[Figure, Figure]:
    """bench.idle's totals: the figures it holds to its CPU and its memory budget."""
    figures = idle.run(window)
    cpu = next(f for f in figures if f.budget.limit == idle.BUDGET_PERCENT)
    memory = next(f for f in figures if f.budget.limit == idle.BUDGET_MIB)
    return (
        dataclasses.replace(cpu, budget=Budget(None, "mean")),
        dataclasses.replace(memory, budget=Budget(None)),
    )


def _peer(start: Start, window: int) -> tuple[Figure, Figure]:
    programs = {f"idle-{i}": shlex.split(IDLE) for i in range(PROGRAMS)}
    with sandbox() as box, start(box, programs) as daemon:
        root = psutil.Process(daemon)
        wait_until(
            lambda: len(_programs(root)) == PROGRAMS,
            timeout=60.0,
            interval=0.1,
            what=f"{PROGRAMS} running programs",
        )
        tree = _tree(root)
        readings = idle.sample_each_second(lambda: (time.monotonic(), _cpu_seconds(tree)), window)
        mib = idle.pss_mib(tree)
    percents = tuple(
        (b - a) / (tb - ta) * 100.0 for (ta, a), (tb, b) in itertools.pairwise(readings)
    )
    note = f"{len(tree)} process{'es' if len(tree) > 1 else ''} besides the programs"
    return (
        Figure("cpu", "%", percents, Budget(None, "mean"), note=note),
        Figure("memory", "MiB", (mib,), Budget(None), note=note),
    )


def _programs(root: psutil.Process) -> list[psutil.Process]:
    return [p for p in root.children() if p.name() == PROGRAM_NAME]


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """`process` and its descendants, leaving out the programs and what is below them."""
    tree = [process]
    for child in process.children():
        if child.name() != PROGRAM_NAME:
            tree.extend(_tree(child))
    return tree


def _cpu_seconds(tree: list[psutil.Process]) -> float:
    """CPU seconds so far of the tree and of the children it reaped (user + system)."""
    times = [p.cpu_times() for p in tree]
    return sum(t.user + t.system + t.children_user + t.children_system for t in times)
