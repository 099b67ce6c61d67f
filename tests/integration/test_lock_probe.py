"""The CLI's probe for a running controller agrees with the lock the controller takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from reconciler.adapters.paths import StatePaths
from reconciler.api.errors import Unavailable
from reconciler.controller.daemon import controller_running, ensure_controller


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


def test_tmux_is_asked_for_only_when_a_controller_must_be_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no tmux to be found
    state_dir = tmp_path / "state"
    paths = StatePaths(state_dir)
    state_dir.mkdir(mode=0o700)
    with FileLock(paths.lock).acquire(timeout=0):  # a controller runs: `send` only wakes it
        ensure_controller(state_dir, "unused")
    with pytest.raises(Unavailable, match="apt-get install tmux"):
        ensure_controller(state_dir, "unused")
    assert not paths.log.exists()  # refused before a controller was started
