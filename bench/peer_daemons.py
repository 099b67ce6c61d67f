"""The one way to start each peer orch is compared with (bench.peers, bench.peer_idle).

Each context manager writes its supervisor's configuration for `programs` (name -> argv: the
program itself, no shell added) with everything the supervisor writes inside the sandbox's workdir,
starts it with the sandbox's environment (which marks every process it starts as the sandbox's,
see bench.sandbox), and yields the pid of the daemon the programs are children of. On exit it
stops the daemon and kills whatever was still below it.

- the seed loop: `while true; do tmux has-session -t =NAME || tmux new-session -d -s NAME ARGV;
  (... for each program); sleep N; done` on the sandbox's socket (tmux -f /dev/null), started in
  its own process group; the daemon is the loop's shell (the tmux server it starts is not its
  child: tmux daemonizes it).
- supervisord (the venv's `supervisor` package): a supervisord.conf with one [program:NAME] each
  (autorestart=true, startsecs=0), its XML-RPC socket in the sandbox (see `supervisord_rpc`), run
  in the foreground as our child.
- pm2 (npm, bench.peer_tools): an ecosystem file (fork mode, min_uptime 0, restart_delay 0,
  max_restarts 1,000,000), PM2_HOME in the sandbox; the daemon is pm2's God daemon (pm2.pid).
- circus (PyPI, bench.peer_tools): circusd from an ini file (warmup_delay 0, max_retry -1), its
  control and pub/sub endpoints in the sandbox (no statsd: circus's default), run as our child.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psutil

from bench import peer_tools
from bench.sandbox import Sandbox
from reconciler.adapters.deadline import wait_until

Programs = Mapping[str, Sequence[str]]


@contextlib.contextmanager
def seed_loop(box: Sandbox, programs: Programs, period: float) -> Iterator[int]:
    """The seed's shell loop keeping `programs` in tmux sessions, checked every `period` s;
    yields the loop's pid."""
    tmux = f"tmux -L {shlex.quote(box.socket)} -f /dev/null"
    checks = [
        f"{tmux} has-session -t ={shlex.quote(name)} 2>/dev/null"
        f" || {tmux} new-session -d -s {shlex.quote(name)} {shlex.join(argv)}"
        for name, argv in programs.items()
    ]
    script = f"while true; do {'; '.join(checks)}; sleep {period:g}; done"
    loop = subprocess.Popen(
        ["/bin/sh", "-c", script],
        env=box.env,
        cwd=box.workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield loop.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(loop.pid, signal.SIGKILL)  # the loop, its `sleep N`, a tmux client
        loop.wait(timeout=10)


@contextlib.contextmanager
def supervisord(box: Sandbox, programs: Programs) -> Iterator[int]:
    """supervisord running `programs`; yields its pid."""
    config = _supervisord_conf(box, programs)
    supervisor = str(Path(sys.executable).parent / "supervisord")
    with _daemon(box, [supervisor, "-c", str(config), "-n"], "supervisord.out") as pid:
        yield pid


def supervisord_rpc(box: Sandbox) -> xmlrpc.client.ServerProxy:
    """A client of the sandbox's supervisord's XML-RPC interface."""
    # Imported here: without the `supervisor` package only the supervisord rows fail.
    from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

    transport = SupervisorTransport(serverurl=f"unix://{_supervisord_socket(box)}")
    return xmlrpc.client.ServerProxy("http://localhost", transport=transport)


def _supervisord_socket(box: Sandbox) -> Path:
    """supervisord's unix_http_server socket (its XML-RPC interface)."""
    return box.workdir / "supervisor.sock"


def _supervisord_conf(box: Sandbox, programs: Programs) -> Path:
    """A minimal supervisord.conf; everything it writes stays in the sandbox's workdir."""
    folder, socket = box.workdir, _supervisord_socket(box)
    sections = [
        f"""\
[program:{name}]
command={shlex.join(argv).replace("%", "%%")}
directory={folder}
autostart=true
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile={folder}/{name}.out
stderr_logfile={folder}/{name}.err
"""
        for name, argv in programs.items()
    ]
    config = folder / "supervisord.conf"
    config.write_text(
        f"""\
[unix_http_server]
file={socket}
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
serverurl=unix://{socket}

"""
        + "\n".join(sections)
    )
    return config


@contextlib.contextmanager
def pm2(box: Sandbox, programs: Programs) -> Iterator[int]:
    """pm2 running `programs` (installed on first use); yields its God daemon's pid."""
    command = str(peer_tools.pm2())
    home = box.workdir / "pm2"
    env = {**box.env, "PM2_HOME": str(home)}
    apps = [
        {
            "name": name,
            "script": shutil.which(argv[0]) or argv[0],
            "args": list(argv[1:]),
            "interpreter": "none",
            "min_uptime": 0,
            "max_restarts": 1_000_000,
            "restart_delay": 0,
            "autorestart": True,
        }
        for name, argv in programs.items()
    ]
    ecosystem = box.workdir / "ecosystem.json"
    ecosystem.write_text(json.dumps({"apps": apps}))
    try:
        subprocess.run(
            [command, "start", str(ecosystem)],
            env=env,
            cwd=box.workdir,
            capture_output=True,
            timeout=60,
            check=True,
        )
        yield int(wait_until(lambda: _read_int(home / "pm2.pid"), what="pm2's daemon"))
    finally:
        subprocess.run([command, "kill"], env=env, capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def circus(box: Sandbox, programs: Programs) -> Iterator[int]:
    """circusd running `programs` (installed on first use); yields its pid."""
    folder = peer_tools.circus()
    config = box.workdir / "circus.ini"
    # No stats_endpoint: setting one turns on circusd-stats, which circus does not run by default.
    endpoints = {kind: f"ipc://{box.workdir}/circus-{kind}" for kind in ("ctl", "pub")}
    watchers = [
        f"""\
[watcher:{name}]
cmd = {shlex.join(argv)}
numprocesses = 1
warmup_delay = 0
max_retry = -1
"""
        for name, argv in programs.items()
    ]
    config.write_text(
        f"""\
[circus]
endpoint = {endpoints["ctl"]}
pubsub_endpoint = {endpoints["pub"]}

"""
        + "\n".join(watchers)
    )
    boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from circus.circusd import main"
    boot += "; main()"
    with _daemon(box, [sys.executable, "-c", boot, str(folder), str(config)], "circusd.out") as pid:
        yield pid


@contextlib.contextmanager
def _daemon(box: Sandbox, argv: list[str], output: str) -> Iterator[int]:
    """`argv` in a session of its own in the sandbox, its output to `output` in the workdir;
    yields its pid and stops it on the way out."""
    with (box.workdir / output).open("wb") as log:
        daemon = subprocess.Popen(
            argv,
            env=box.env,
            cwd=box.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield daemon.pid
    finally:
        _stop(daemon)


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon (it stops its programs), SIGKILL after 10 s; then kill what was below
    it (a program's orphaned child, a program it did not stop)."""
    try:
        below = psutil.Process(daemon.pid).children(recursive=True)
    except psutil.Error:
        below = []
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
    for proc in below:
        with contextlib.suppress(psutil.Error):
            proc.kill()  # psutil checks the pid still names the process it found


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0
