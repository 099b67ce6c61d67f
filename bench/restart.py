"""Figure 1: agent process killed -> replacement process started (first restart, no backoff).

One recording agent (see bench.workload) under a policy that never backs off. Each round waits
until the agent is Running (read from the store) with its `sleep` child up and the start log
holding one line per launch so far; then t0 = time.time() right before SIGKILL of that `sleep`.
The pane's shell then exits, the controller restarts the agent, and the new launch appends its
start time; the figure is that start time minus t0 (both wall clock, so the poll interval of the
benchmark itself does not enter it). With `team` > 1 the victim has team - 1 idle companions
(`sleep` agents, all Running before the first kill), so the figure shows whether the time to a
replacement grows with the team.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence

import psutil

from bench.report import Budget, Figure
from bench.sandbox import Sandbox, StoreReader, sandbox
from bench.workload import IDLE, StartLog, agent_document, manifest, recording_command
from reconciler.adapters.deadline import wait_until

AGENT = "victim"
KILLS = 30


def run(kills: int = KILLS, team: int = 1) -> Figure:
    """Kill the agent's process `kills` times in a team of `team` agents; return the
    kill -> restarted delays in ms."""
    with killer(team) as kill:
        delays = [kill(n) for n in range(1, kills + 1)]
    name = "agent killed -> replacement started" + (f", {team} agents" if team > 1 else "")
    return figure(name, delays)


def figure(name: str, delays: Sequence[float]) -> Figure:
    """The kill -> restarted delays (ms) of `killer`'s kills, under the restart budget."""
    return Figure(
        name,
        "ms",
        tuple(delays),
        Budget(50.0),
        note="SIGKILL of the agent's process to the new launch's own start timestamp",
    )


@contextlib.contextmanager
def killer(team: int) -> Iterator[Callable[[int], float]]:
    """A sandbox running the recording agent in a team of `team`; yields `kill(n)`: once launch
    n runs, kill its process and return the ms to launch n + 1 (bench.peers interleaves the
    kills of several such sandboxes)."""
    with sandbox() as box:
        starts = StartLog(box.workdir / "starts")
        path = box.workdir / "agent.yaml"
        companions = [agent_document(f"idle-{i}", IDLE) for i in range(team - 1)]
        path.write_text(
            manifest([agent_document(AGENT, recording_command(starts.path)), *companions])
        )
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "120s", timeout=180.0)
        reader = StoreReader(box.state_dir)
        try:
            yield lambda launches: _kill_once(box, reader, starts, launches)
        finally:
            reader.close()


def _kill_once(box: Sandbox, reader: StoreReader, starts: StartLog, launches: int) -> float:
    """Wait for the current launch to be Running, kill its process, return ms to the next."""
    wait_until(lambda: starts.count() == launches, what=f"{launches} recorded starts")
    previous = starts.previous()
    wait_until(lambda: reader.running_since(AGENT, previous), what=f"launch {launches} Running")
    victim = wait_until(lambda: _agent_process(box), what="the agent's sleep process")
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: starts.count() > launches, what="the replacement's start")
    return (starts.times()[launches] - t0) * 1000.0


def _agent_process(box: Sandbox) -> int:
    """The pid of the `sleep` child of the agent's pane shell; 0 while there is none."""
    try:
        children = psutil.Process(box.pane_pid(AGENT)).children()
        return next((c.pid for c in children if c.name() == "sleep"), 0)
    except (psutil.Error, subprocess.CalledProcessError, ValueError, IndexError):
        return 0
