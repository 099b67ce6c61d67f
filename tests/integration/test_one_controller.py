"""One controller per state dir: probing never takes the lock, and a unit takes over cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from filelock import FileLock, Timeout

from reconciler.adapters.lockprobe import holds_lock, lock_holders
from reconciler.adapters.paths import StatePaths
from reconciler.controller.daemon import controller_pid, controller_running
from tests.conftest import Orch
from tests.helpers import wait_until
from tests.integration.test_core import agent_doc, write_manifest


def test_lock_holders_reads_proc_locks(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("")
    st = os.stat(lock)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    table = tmp_path / "locks"
    table.write_text(
        f"1: FLOCK  ADVISORY  WRITE 4242 {device} 0 EOF\n"
        f"1: -> FLOCK  ADVISORY  WRITE 5151 {device} 0 EOF\n"
        "2: POSIX  ADVISORY  WRITE 77 00:00:1 0 EOF\n"
    )
    assert lock_holders(lock, str(table)) == {4242}
    assert lock_holders(tmp_path / "missing.lock", str(table)) == set()
    assert lock_holders(lock, str(tmp_path / "no-such-table")) is None


def test_holds_lock_asks_one_process_without_proc_locks(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    assert holds_lock(os.getpid(), path) is False  # no such file: nobody holds it
    lock = FileLock(path)
    with lock:
        assert holds_lock(os.getpid(), path) is True
        assert holds_lock(os.getppid(), path) is False
        assert holds_lock(os.getpid(), path, proc=str(tmp_path)) is None  # cannot look
    assert holds_lock(os.getpid(), path) is False


def test_probing_never_makes_a_starting_controller_fail(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    paths.lock.write_text("")
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            controller_running(paths)

    prober = threading.Thread(target=probe)
    prober.start()
    failures = 0
    try:
        for _ in range(2000):
            lock = FileLock(paths.lock)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                failures += 1
                continue
            assert controller_pid(paths) == os.getpid()
            lock.release()
    finally:
        stop.set()
        prober.join()
    assert failures == 0


@pytest.mark.tmux
def test_a_controller_started_with_take_over_replaces_the_running_one(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("a"))
    orch.run("apply", "-f", str(path), "--wait")
    paths = StatePaths(orch.state_dir)
    first = controller_pid(paths)
    assert first is not None
    successor = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "controller", "--take-over"],
        env=orch.env,
        cwd=orch.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: controller_pid(paths) == successor.pid, what="the successor holds it")
        wait_until(
            lambda: not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie",
            what="the first controller gone",
        )
        assert successor.poll() is None
        assert orch.run("controller", check=False).returncode == 3  # without --take-over
    finally:
        successor.kill()
        successor.wait()
