"""Starting and finding the background controller of a state dir, for the CLI.

Kept apart from `controller` so that a short command such as `orch send` does not import the
control loop's dependencies (watchdog, the playbook runner) just to see whether one runs.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from reconciler.adapters.deadline import wait_until
from reconciler.adapters.environment import controller_environment
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.statedir import ensure_state_dir, open_private
from reconciler.api.errors import Unavailable


def read_pid(paths: StatePaths) -> int | None:
    """The pid the running controller wrote, if any."""
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def controller_running(paths: StatePaths) -> bool:
    """Whether some process holds this state dir's controller lock.

    The controller holds it with `filelock`, which is `flock(2)` on Linux; probing with flock
    directly spares every short command filelock's import (tens of ms).
    """
    try:
        fd = os.open(paths.lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the probe's own lock, when it got one
    return False


def ensure_controller(state_dir: Path, socket: str, wait: float = 10.0) -> None:
    """Start a background controller for this state dir unless one runs."""
    paths = StatePaths(ensure_state_dir(state_dir))
    if controller_running(paths):
        return
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
