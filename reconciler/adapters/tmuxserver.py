"""A tmux server whose socket file was deleted under it: found, and made reachable again.

A server keeps running when its socket file goes (a tmp cleaner, a careless `rm`), but no client
can reach it: every command says "no server running", and a command that starts a server
(`start-server`, `new-session`) starts a second one on the same path. Agents would be started
twice and the first server, with the first agents in it, would run on with nobody able to stop
it. tmux makes its socket again on SIGUSR1, so before a call finds the socket missing, the
adapter looks for a live server of its socket (the pid it last saw, else one search of the
process table per adapter) and has it remake the socket, losing nothing.
"""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path

from reconciler.adapters.deadline import DeadlinePassed, wait_until

#: The process name tmux gives its server.
SERVER_NAME = "tmux: server"
#: How long a server gets to remake its socket after SIGUSR1.
REMAKE_SECONDS = 1.0


def socket_path(socket_name: str) -> Path:
    """Where `tmux -L socket_name` puts its socket (tmux's rule: $TMUX_TMPDIR or /tmp)."""
    folder = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return Path(folder) / f"tmux-{os.geteuid()}" / socket_name


def is_server_of(pid: int, socket_name: str) -> bool:
    """Whether `pid` is a live tmux server of this user started for `tmux -L socket_name`
    (its command line is that of the client that started it)."""
    import psutil  # only when a socket is missing: the CLI starts without it

    try:
        process = psutil.Process(pid)
        if process.name() != SERVER_NAME or process.uids().real != os.getuid():
            return False
        argv = process.cmdline()
    except psutil.Error:
        return False
    return any(a == "-L" and b == socket_name for a, b in itertools.pairwise(argv))


def find_server(socket_name: str) -> int | None:
    """The pid of a live tmux server of `socket_name` (one search of the process table)."""
    import psutil

    for process in psutil.process_iter(["name"]):
        if process.info["name"] == SERVER_NAME and is_server_of(process.pid, socket_name):
            return process.pid
    return None


def remake_socket(pid: int, path: Path) -> bool:
    """Have server `pid` make its socket at `path` again (SIGUSR1); whether it did in time."""
    try:
        os.kill(pid, signal.SIGUSR1)
        wait_until(path.exists, REMAKE_SECONDS, interval=0.01)
    except (ProcessLookupError, DeadlinePassed):
        return False
    return True
