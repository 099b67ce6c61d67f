"""Starting and finding the background controller of a state dir, for the CLI.

Kept apart from `controller` so that a short command such as `orch send` does not import the
control loop's dependencies (watchdog, the playbook runner) just to see whether one runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reconciler.adapters.deadline import wait_until
from reconciler.adapters.environment import controller_environment
from reconciler.adapters.lockprobe import holds_lock, lock_holders
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.statedir import ensure_state_dir, open_private
from reconciler.api.errors import Unavailable


def read_pid(paths: StatePaths) -> int | None:
    """The pid the running controller wrote, if any."""
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def controller_pid(paths: StatePaths) -> int | None:
    """The pid of the controller holding this state dir's lock, found without taking the lock
    (so a controller starting at that moment is never made to fail); None if none holds it."""
    written = read_pid(paths)
    if written is not None and holds_lock(written, paths.lock):
        return written  # the usual case, without scanning the machine's locks
    holders = lock_holders(paths.lock)
    if holders is None:  # no /proc/locks: fall back to trying the lock
        from filelock import FileLock, Timeout  # only here: the CLI path stays without it

        lock = FileLock(paths.lock)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return read_pid(paths) or -1
        lock.release()
        return None
    if not holders:
        return None
    pid = read_pid(paths)
    return pid if pid in holders else min(holders)


def controller_running(paths: StatePaths) -> bool:
    """Whether some process holds this state dir's controller lock."""
    return controller_pid(paths) is not None


def ensure_controller(state_dir: Path, socket: str, wait: float = 10.0) -> None:
    """Start a background controller for this state dir unless one runs (which needs tmux)."""
    paths = StatePaths(ensure_state_dir(state_dir))
    if controller_running(paths):
        return
    # Here: commands that only ask whether one runs, or find it running, need neither.
    import subprocess

    from reconciler.adapters.tmuxbinary import require_tmux

    require_tmux()

    with os.fdopen(
        open_private(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab"
    ) as log_file:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "--state-dir",
                str(state_dir),
                "--socket",
                socket,
                "controller",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
            env=controller_environment(os.environ, state_dir, socket),
        )
    wait_until(
        lambda: controller_running(paths) and read_pid(paths) is not None,
        wait,
        interval=0.02,
        failure=lambda: Unavailable(f"the controller did not start; see {paths.log}"),
    )
