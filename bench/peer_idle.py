"""Figure 12: idle CPU and memory of orch and its peers side by side, 20 idle programs each.

orch: bench.idle, run again here so that every row comes from the same run; its two totals (the
controller with its tmux clients, the tmux server and the log capture: CPU, then PSS) are the
baselines the ratios are taken to. The seed loop (N = 1 s), supervisord, pm2 and circus: each in
its own sandbox, started as bench.peer_daemons starts them, with 20 programs `sleep 100000`
(bench.workload.IDLE, run by the supervisor itself, no shell). Once all 20 run, the supervisor's
tree besides the programs is measured as bench.idle measures orch's: the daemon (the loop's
shell; supervisord; pm2's God daemon, a node process; circusd), the sandbox's tmux server when
there is one (the seed loop's), and any descendant of them that is neither a program nor below
one. Its CPU time (user + system: its own from its CPU time clock, as bench.idle reads orch's,
and that of the children it reaped, which the kernel keeps in 10 ms ticks) is read once a second
for bench.idle.WINDOW_SECONDS from bench.idle.SETTLE_SECONDS on (as orch's), each sample % of
one core; the figure is the mean over the window. The tree is found again at each reading, so a
short-lived helper (the seed loop's tmux clients and `sleep 1`) counts while it runs and then in
its parent's reaped children's time. Memory: the tree's PSS at the end of the window.

A peer that cannot be installed is a "skipped" row, one that fails an ERROR row (in both
tables); the others still run. Every row is "info": orch's budgets are held in bench.idle's rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import shlex
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psutil

from bench import idle, peer_daemons, peer_tools
from bench.peers import SEED_PERIOD
from bench.report import Budget, Figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import IDLE
from reconciler.adapters.deadline import wait_until

PROGRAMS = idle.AGENTS
CPU_GROUP = f"idle CPU, {PROGRAMS} idle programs"
MEMORY_GROUP = f"memory (PSS), {PROGRAMS} idle programs"
PROGRAM = shlex.split(IDLE)

Start = Callable[[Sandbox, peer_daemons.Programs], AbstractContextManager[int]]

PEERS: dict[str, Start] = {
    f"seed loop, N = {SEED_PERIOD:g} s": lambda box, programs: peer_daemons.seed_loop(
        box, programs, SEED_PERIOD
    ),
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
    cpu = next((f for f in figures if f.budget.limit == idle.BUDGET_PERCENT), None)
    memory = next((f for f in figures if f.budget.limit == idle.BUDGET_MIB), None)
    if cpu is None or memory is None:
        raise RuntimeError("bench.idle gave no figure held to its CPU or its memory budget")
    return (
        dataclasses.replace(cpu, budget=Budget(None, "mean")),
        dataclasses.replace(memory, budget=Budget(None)),
    )


def _peer(start: Start, window: int) -> tuple[Figure, Figure]:
    programs = {f"idle-{i}": PROGRAM for i in range(PROGRAMS)}
    with sandbox() as box, start(box, programs) as daemon:
        roots = wait_until(
            lambda: _running(_roots(box, daemon)),
            timeout=60.0,
            interval=0.1,
            what=f"{PROGRAMS} running programs",
        )
        readings = idle.sample_each_second(lambda: (time.monotonic(), _cpu_seconds(roots)), window)
        tree = _tree(roots)
        mib = _pss_mib(tree)
    percents = tuple(
        (b - a) / (tb - ta) * 100.0 for (ta, a), (tb, b) in itertools.pairwise(readings)
    )
    note = f"{len(tree)} process{'es' if len(tree) > 1 else ''} besides the programs at the end"
    return (
        Figure("cpu", "%", percents, Budget(None, "mean"), note=note),
        Figure("memory", "MiB", (mib,), Budget(None), note=note),
    )


def _roots(box: Sandbox, daemon: int) -> list[psutil.Process]:
    """The daemon, and the sandbox's tmux server if it has one (tmux daemonizes it: the seed
    loop starts it, but it is not the loop's child)."""
    roots = [psutil.Process(daemon)]
    with contextlib.suppress(subprocess.CalledProcessError, ValueError):
        roots.append(psutil.Process(box.tmux_server_pid()))
    return roots


def _running(roots: list[psutil.Process]) -> list[psutil.Process] | None:
    """The roots once all the programs run among their children, else None."""
    return roots if sum(map(_is_program, _children(roots))) == PROGRAMS else None


def _is_program(process: psutil.Process) -> bool:
    try:
        return process.name() == PROGRAM[0] and process.cmdline()[1:] == PROGRAM[1:]
    except psutil.Error:
        return False


def _children(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            found.extend(process.children())
    return found


def _tree(roots: list[psutil.Process]) -> list[psutil.Process]:
    """The roots and their descendants, leaving out the programs and what is below them."""
    tree, level = list(roots), list(roots)
    while level:
        level = [p for p in _children(level) if not _is_program(p)]
        tree.extend(level)
    return tree


def _cpu_seconds(roots: list[psutil.Process]) -> float:
    """CPU seconds so far of the tree and of the children it reaped (user + system); a process
    that ended since it was found counts no more (its time is in its parent's once reaped)."""
    total = 0.0
    for process in _tree(roots):
        with contextlib.suppress(psutil.Error):
            reaped = process.cpu_times()
            total += idle.cpu_seconds(process) + reaped.children_user + reaped.children_system
    return total


def _pss_mib(tree: list[psutil.Process]) -> float:
    """The tree's PSS; a short-lived helper that ended since it was found counts no more."""
    total = 0.0
    for process in tree:
        with contextlib.suppress(psutil.Error):
            total += idle.pss_mib([process])
    return total
