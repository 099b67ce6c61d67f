"""The CLI's probe for a running controller agrees with the lock the controller takes."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from reconciler.adapters.paths import StatePaths
from reconciler.controller.daemon import controller_running


def test_no_lock_file_means_no_controller(tmp_path: Path) -> None:
    assert not controller_running(StatePaths(tmp_path))


def test_a_held_controller_lock_is_seen_and_a_released_one_is_not(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    lock = FileLock(paths.lock)
    with lock.acquire(timeout=0):
        assert controller_running(paths)
        assert lock.is_locked  # the probe did not take or break the holder's lock
    assert not controller_running(paths)
    with lock.acquire(timeout=0):  # the probe left no lock of its own behind
        pass
