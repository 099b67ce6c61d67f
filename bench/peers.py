"""Figure 9: crash -> replacement started, side by side: orch, a seed-style shell loop, supervisord.

The same crashing process under each supervisor: a recording command (see bench.workload),
`date +%s.%N >> FILE; sleep 100000` run by /bin/sh, whose `sleep` child is SIGKILLed each round
once the current launch has recorded its start and its supervisor counts it as running; the
figure is the next launch's own recorded start time minus t0 = time.time() right before the kill
(as in bench.restart), KILLS rounds each.

- orch: bench.restart's method and agent, as is (one agent, a policy that never backs off; the
  kill comes once the store shows the launch Running).
- seed loop, N = 1 s: `while true; do tmux has-session -t =victim || tmux new-session -d -s
  victim /bin/sh -c CMD; sleep N; done` on the sandbox's socket (tmux -f /dev/null), started in
  its own process group; a second session (`keep`, idle) keeps the tmux server up, as a team's
  other agents would, so each restart is a new session on a running server, as under orch.
  Each kill comes after a random pause of 0-N s: a crash does not wait for the loop's phase
  (without the pause each kill would come right after a check, and every sample would be N).
- seed loop, N = 60 s: not measured. A crash comes at a uniformly random point of the loop's
  sleep, so the wait for the next check is uniform on [0, N]: median N/2 = 30 s and p95 0.95 N
  = 57 s (the loop's own start-up cost, the N = 1 s figure minus 0.5 s, comes on top).
- supervisord (the venv's `supervisor` package): a supervisord.conf in the sandbox with one
  [program:victim] (autorestart=true, startsecs=0), its unix_http_server socket, log and pidfile
  in the sandbox too, run in the foreground (nodaemon) as our child; stopped in `finally`. The
  kill comes once its XML-RPC interface (over that socket) reports the program RUNNING with the
  current shell's pid: killed while still STARTING, supervisord counts a failed start and backs
  off 1 s, 2 s, ... even with startsecs=0 (seen as 2 s restarts when not waiting for RUNNING).

Each peer runs in its own sandbox; the seed loop's process group and supervisord (with the
programs it started) are killed by pid before the sandbox's own teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

import psutil

from bench import restart
from bench.report import Budget, Figure, failed_figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import IDLE, StartLog, recording_command
from reconciler.adapters.deadline import wait_until

KILLS = 20
GROUP = "crash -> replacement started"
AGENT = "victim"
SEED_PERIOD = 1.0
SEED_MODELLED = 60.0


def run(kills: int = KILLS) -> list[Figure]:
    """orch, the seed loop (measured at N=1 s, modelled at N=60 s) and supervisord.

    A peer that fails becomes an ERROR row of the side-by-side table; the others still run.
    """
    orch = _peer("orch", lambda: restart.run(kills))
    figures = [dataclasses.replace(orch, name="orch", group=GROUP, baseline=True)]
    seed = f"seed loop, N = {SEED_PERIOD:g} s"
    figures.append(_peer(seed, lambda: _seed_loop(SEED_PERIOD, kills)))
    figures.append(_seed_model(SEED_MODELLED))
    figures.append(_peer("supervisord", lambda: _supervisord(kills)))
    return figures


def _peer(name: str, measure: Callable[[], Figure]) -> Figure:
    try:
        return measure()
    except Exception as err:  # noqa: BLE001 - an ERROR row, and the other peers still run
        return dataclasses.replace(failed_figure(name, err), group=GROUP)


# -- the seed loop ------------------------------------------------------------------------------


def _seed_loop(period: float, kills: int) -> Figure:
    with sandbox() as box:
        starts = StartLog(box.workdir / "starts")
        tmux = f"tmux -L {shlex.quote(box.socket)} -f /dev/null"
        command = shlex.quote(recording_command(starts.path))
        _tmux(box, "new-session", "-d", "-s", "keep", IDLE)
        script = (
            f"while true; do {tmux} has-session -t ={AGENT} 2>/dev/null"
            f" || {tmux} new-session -d -s {AGENT} /bin/sh -c {command}; sleep {period:g}; done"
        )
        loop = subprocess.Popen(
            ["/bin/sh", "-c", script],
            env=box.env,
            cwd=box.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        rng = random.Random("bench-seed-loop")
        try:
            delays = [
                _kill_once(starts, n, lambda: _pane_sleep(box), rng.uniform(0.0, period))
                for n in range(1, kills + 1)
            ]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(loop.pid, signal.SIGKILL)  # the loop, its `sleep N`, a tmux client
            loop.wait(timeout=10)
    return Figure(
        f"seed loop, N = {period:g} s",
        "ms",
        tuple(delays),
        Budget(None),
        note=f"has-session every {period:g} s, new-session when it is gone",
        group=GROUP,
    )


def _seed_model(period: float) -> Figure:
    """The wait for the next check, uniform on [0, N]: 1001 evenly spaced points of it."""
    points = tuple(period * 1000.0 * i / 1000 for i in range(1001))
    return Figure(
        f"seed loop, N = {period:g} s (implied)",
        "ms",
        points,
        Budget(None),
        note=f"uniform wait on [0, {period:g} s]: mean and median N/2, p95 0.95 N; not measured",
        group=GROUP,
        model=True,
    )


def _tmux(box: Sandbox, *args: str) -> None:
    """A tmux command on the sandbox's socket, with the sandbox's environment (marks the server)."""
    subprocess.run(
        ["tmux", "-L", box.socket, "-f", "/dev/null", *args],
        env=box.env,
        capture_output=True,
        timeout=10,
        check=True,
    )


def _pane_sleep(box: Sandbox) -> int:
    """The `sleep` child of the victim session's pane shell; 0 while there is none."""
    try:
        return _sleep_child(box.pane_pid(AGENT))
    except (subprocess.CalledProcessError, ValueError, IndexError):
        return 0


# -- supervisord --------------------------------------------------------------------------------


def _supervisord(kills: int) -> Figure:
    # Imported here: without the `supervisor` package only this row fails.
    from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

    with sandbox() as box:
        starts = StartLog(box.workdir / "starts")
        config = _write_config(box, recording_command(starts.path))
        log = (box.workdir / "supervisord.out").open("wb")
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "supervisord"), "-c", str(config), "-n"],
            env=box.env,
            cwd=box.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started: list[psutil.Process] = []
        rpc = xmlrpc.client.ServerProxy(
            "http://localhost", transport=SupervisorTransport(serverurl=f"unix://{_socket(box)}")
        )
        try:
            delays = [
                _kill_once(starts, n, lambda: _program_sleep(daemon, rpc, started))
                for n in range(1, kills + 1)
            ]
        finally:
            _stop_supervisord(daemon, started)
            log.close()
    return Figure(
        "supervisord",
        "ms",
        tuple(delays),
        Budget(None),
        note="supervisor 4.x, [program:victim] autorestart=true startsecs=0",
        group=GROUP,
    )


def _socket(box: Sandbox) -> Path:
    """supervisord's unix_http_server socket (its XML-RPC interface)."""
    return box.workdir / "supervisor.sock"


def _write_config(box: Sandbox, command: str) -> Path:
    """A minimal supervisord.conf; everything it writes stays in the sandbox's workdir."""
    folder = box.workdir
    program = f"/bin/sh -c {shlex.quote(command)}".replace("%", "%%")
    config = folder / "supervisord.conf"
    config.write_text(
        f"""\
[unix_http_server]
file={_socket(box)}
chmod=0700

[supervisord]
nodaemon=true
logfile={folder}/supervisord.log
pidfile={folder}/supervisord.pid
childlogdir={folder}
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{_socket(box)}

[program:{AGENT}]
command={program}
directory={folder}
autostart=true
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile={folder}/{AGENT}.out
stderr_logfile={folder}/{AGENT}.err
"""
    )
    return config


def _program_sleep(
    daemon: subprocess.Popen[bytes], rpc: xmlrpc.client.ServerProxy, started: list[psutil.Process]
) -> int:
    """The `sleep` child of the program's shell once supervisord says RUNNING; else 0.

    Every process found under supervisord is remembered in `started`, to be killed at the end.
    """
    try:
        info = rpc.supervisor.getProcessInfo(AGENT)
    except (OSError, xmlrpc.client.Error):
        return 0  # not listening yet
    if not isinstance(info, dict) or info.get("statename") != "RUNNING":
        return 0
    try:
        for shell in psutil.Process(daemon.pid).children():
            if shell not in started:
                started.append(shell)
            pid = _sleep_child(shell.pid) if shell.pid == info.get("pid") else 0
            if pid:
                started.append(psutil.Process(pid))
                return pid
    except psutil.Error:
        pass
    return 0


def _stop_supervisord(daemon: subprocess.Popen[bytes], started: list[psutil.Process]) -> None:
    """SIGTERM supervisord (it stops its program), SIGKILL after 10 s; then what it started."""
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
    for proc in started:
        with contextlib.suppress(psutil.Error):
            proc.kill()  # psutil checks the pid still names the process it found


# -- shared -------------------------------------------------------------------------------------


def _sleep_child(parent: int) -> int:
    """The pid of a `sleep` child of `parent`; 0 if it has none (yet)."""
    try:
        children = psutil.Process(parent).children()
        return next((c.pid for c in children if c.name() == "sleep"), 0)
    except psutil.Error:
        return 0


def _kill_once(
    starts: StartLog, launches: int, victim: Callable[[], int], pause: float = 0.0
) -> float:
    """Once launch `launches` recorded its start and runs, kill it (`pause` s later); ms to the
    next launch."""
    wait_until(lambda: starts.count() == launches, what=f"{launches} recorded starts")
    wait_until(victim, what="the victim's sleep process")
    time.sleep(pause)
    pid = wait_until(victim, what="the victim's sleep process")
    t0 = time.time()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: starts.count() > launches, what="the replacement's start")
    return (starts.times()[launches] - t0) * 1000.0
