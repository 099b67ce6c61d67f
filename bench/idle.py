"""Figure 4: idle CPU and memory of everything orch runs besides the agents, 20 agents.

Applies 20 idle agents (`sleep 100000`) with `orch apply --wait`, so all are Running, then, from
SETTLE_SECONDS on, samples CPU time (user + system, each process's CPU clock: see `cpu_seconds`)
once a second for WINDOW_SECONDS of a deliberately idle window: of the controller itself, of the
tmux client processes it ran and reaped (its children's times, which the kernel keeps in 10 ms ticks
only) and the one it keeps (its control-mode client, with its session's `sleep`), of the tmux
server, and of the log capture (the one log writer and the `cat` each pane's pipe-pane runs).
Each sample is % of one core over that second; the verdict is on the mean over the whole window.
Memory: the PSS (proportional set size, so shared pages are counted once across processes) of the
controller, the tmux server, the log writer and the cats, and the control client with its
session's `sleep`, read at the end of the window.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psutil

from bench.report import Budget, Figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import idle_agents
from reconciler.adapters.tmux_control import CONTROL_PREFIX

AGENTS = 20
#: How long the window waits after everything runs. Right after `orch apply --wait` returns, the
#: controller still finishes the launch (a pass or two, a tmux client process): one run's first
#: second took 2.4 % of a core and the other 29 a mean of 0.185 %, so that second alone put the
#: window's mean over the budget. It is start-up, not idle; the peers wait as long.
SETTLE_SECONDS = 5.0
#: Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), which glibc's clock_getcpuclockid(pid)
#: returns: `(~pid << 3) | 2` names the whole process's CPU time clock.
_CPUCLOCK_SCHED = 2
WINDOW_SECONDS = 30
BUDGET_PERCENT = 0.25
BUDGET_MIB = 64.0

T = TypeVar("T")


@dataclass(frozen=True)
class _Sample:
    """Cumulative CPU seconds at one instant (`at`: time.monotonic())."""

    at: float
    controller: float
    clients: float
    server: float
    capture: float


def run(window: int = WINDOW_SECONDS) -> list[Figure]:
    """Sample the idle installation's CPU use once a second for `window` seconds, then its PSS."""
    with sandbox() as box:
        path = box.workdir / "agents.yaml"
        path.write_text(idle_agents("idle", AGENTS))
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "120s", timeout=180.0)
        pid = box.controller_pid()
        if pid is None:
            raise RuntimeError("no controller.pid after apply")
        controller, server = psutil.Process(pid), psutil.Process(box.tmux_server_pid())
        capture = log_capture(box, server)
        control = control_client(box, controller)
        samples = sample_each_second(lambda: _read(controller, server, capture, control), window)
        memory = {
            "controller": pss_mib([controller]),
            "tmux server": pss_mib([server]),
            "log capture": pss_mib(capture),
            "tmux control client": pss_mib(control),
        }
    return [*_figures(samples), *_memory_figures(memory, len(capture))]


def log_capture(box: Sandbox, server: psutil.Process) -> list[psutil.Process]:
    """The pipe-pane `cat`s (children of the tmux server) and the log writer of this sandbox."""
    cats = [p for p in server.children() if p.name() == "cat"]
    writers = [
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if "reconciler.adapters.logwriter" in (p.info["cmdline"] or [])
        and (p.info["environ"] or {}).get("ORCH_STATE_DIR") == str(box.state_dir)
    ]
    return [*cats, *writers]


def control_client(box: Sandbox, controller: psutil.Process) -> list[psutil.Process]:
    """The controller's long-lived `tmux -C` client and what its own session runs (a `sleep`)."""
    clients = [p for p in controller.children() if p.name().startswith("tmux")]
    panes = box.tmux("list-panes", "-a", "-F", "#{session_name} #{pane_pid}").split("\n")
    own = [
        psutil.Process(int(pid))
        for session, _, pid in (line.partition(" ") for line in panes if line)
        if session.startswith(CONTROL_PREFIX)
    ]
    return [*clients, *own]


def _read(
    controller: psutil.Process,
    server: psutil.Process,
    capture: Sequence[psutil.Process],
    control: Sequence[psutil.Process],
) -> _Sample:
    reaped = controller.cpu_times()
    return _Sample(
        at=time.monotonic(),
        controller=cpu_seconds(controller),
        clients=reaped.children_user + reaped.children_system + sum(map(cpu_seconds, control)),
        server=cpu_seconds(server),
        capture=sum(map(cpu_seconds, capture)),
    )


def cpu_seconds(process: psutil.Process) -> float:
    """The CPU time `process` has used so far, all its threads (ended ones too), user + system,
    from its CPU time clock, which counts nanoseconds. psutil's cpu_times count 10 ms ticks:
    over a 30 s window each process's reading then moved by a whole tick (0.033 % of a core)
    or not at all, and with 20 `cat`s beside the controller and the server that noise was as
    large as the margin to the budget. Raises psutil.NoSuchProcess once it has ended."""
    try:
        return time.clock_gettime((~process.pid << 3) | _CPUCLOCK_SCHED)
    except OSError as err:
        raise psutil.NoSuchProcess(process.pid) from err


def pss_mib(processes: Sequence[psutil.Process]) -> float:
    """Their PSS summed (each shared page counted once across them), in MiB."""
    return sum(p.memory_full_info().pss for p in processes) / 2**20


def sample_each_second(read: Callable[[], T], window: int) -> list[T]:
    """`window` + 1 readings one second apart (the deliberate idle window), from SETTLE_SECONDS
    after the call."""
    time.sleep(SETTLE_SECONDS)
    readings = [read()]
    start = time.monotonic()
    for second in range(1, window + 1):
        time.sleep(max(0.0, start + second - time.monotonic()))
        readings.append(read())
    return readings


def _figures(readings: list[_Sample]) -> list[Figure]:
    parts: dict[str, Callable[[_Sample], float]] = {
        "controller process": lambda s: s.controller,
        "controller's tmux clients (+ control client)": lambda s: s.clients,
        "tmux server": lambda s: s.server,
        "log capture (writer + cats)": lambda s: s.capture,
        "all of the above": lambda s: s.controller + s.clients + s.server + s.capture,
    }
    figures = []
    for label, part in parts.items():
        percents = tuple(
            (part(b) - part(a)) / (b.at - a.at) * 100.0 for a, b in itertools.pairwise(readings)
        )
        budget = Budget(BUDGET_PERCENT, "mean") if label == "all of the above" else Budget(None)
        figures.append(Figure(f"idle CPU, {AGENTS} agents: {label}", "%", percents, budget))
    return figures


def _memory_figures(memory: dict[str, float], capture_processes: int) -> list[Figure]:
    figures = [
        Figure(
            f"memory (PSS), {AGENTS} agents: {label}",
            "MiB",
            (mib,),
            Budget(None),
            note=f"{capture_processes} processes" if label == "log capture" else "",
        )
        for label, mib in memory.items()
    ]
    total = sum(memory.values())
    figures.append(
        Figure(f"memory (PSS), {AGENTS} agents: all of orch", "MiB", (total,), Budget(BUDGET_MIB))
    )
    return figures
