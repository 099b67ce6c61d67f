"""The suite's safety net: what a test killed by pytest-timeout left running dies at session end.

pytest-timeout's thread method ends an xdist worker with os._exit: no fixture finalizer of that
worker runs. The main process's session-end sweep must still kill the test's tmux server and the
processes it started (found by the session's mark on their socket), and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, SESSION_MARK
from tests.helpers import DEADLINE_FACTOR, kill_tmux_server, tmux_socket_dir, wait_until

pytestmark = pytest.mark.tmux

HANGING_TEST = """\
import os, subprocess, sys, time
from pathlib import Path


def test_hangs_past_its_timeout(orch):
    # as the CLI starts a controller: a process carrying the installation's socket
    left = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        env=orch.env,
        start_new_session=True,
    )
    # a tmux server on the private socket, started without any mark in its environment
    orch.tmux("new-session", "-d", "-s", "left", "sleep 300")
    Path(os.environ["LEFT_BEHIND"]).write_text(f"{left.pid} {orch.socket}")
    time.sleep(300)
"""


def test_a_timed_out_test_leaves_nothing_running(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hang.py"
    test_file.write_text(HANGING_TEST)
    report = tmp_path / "left-behind"
    env = {k: v for k, v in os.environ.items() if k != SESSION_MARK}
    env["LEFT_BEHIND"] = str(report)
    inner = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest"),
            *("-p", "no:cacheprovider", "-n", "1", "--max-worker-restart", "0"),
            *("--timeout-method", "thread"),
            *("--timeout", str(round(6 * DEADLINE_FACTOR)), str(test_file)),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90 * DEADLINE_FACTOR,
        check=False,
    )
    output = inner.stdout + inner.stderr
    assert report.exists(), f"the hanging test never started its processes:\n{output}"
    pid_text, socket = report.read_text().split()
    pid = int(pid_text)
    try:
        assert inner.returncode != 0, output
        assert "crashed while running" in output, output
        assert "session cleanup killed" in output, output
        wait_until(lambda: _gone(pid), what=f"the left-behind process {pid} gone")
        assert not (tmux_socket_dir() / socket).exists()
        probe = subprocess.run(
            ["tmux", "-L", socket, "has-session"], capture_output=True, check=False
        )
        assert probe.returncode != 0, "the left-behind tmux server still answers"
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
        kill_tmux_server(socket)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
