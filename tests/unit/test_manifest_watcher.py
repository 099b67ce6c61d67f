"""ManifestWatcher's quiet times: a complete save (closed after writing, or renamed into place) is
read after a short pause; a write still open waits the long quiet time, and so does a write that
comes after a complete save. Events are handed in directly, but for the last test, which checks
that a real save does end with the event the rule relies on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
)

from reconciler.adapters.watchers import (
    EDIT_SETTLE_SECONDS,
    SAVED_SETTLE_SECONDS,
    WRITE_EVENTS,
    FolderWatcher,
    ManifestWatcher,
)
from tests.helpers import wait_until

APPLIED = "/manifests/team.yaml"


@pytest.fixture
def watcher() -> Iterator[ManifestWatcher]:
    woken: list[None] = []
    watcher = ManifestWatcher(lambda: woken.append(None))
    watcher.watch([APPLIED])
    try:
        yield watcher
    finally:
        watcher.stop()


def _wait(watcher: ManifestWatcher) -> float:
    ready, wait = watcher.settled()
    assert ready == [] and wait is not None
    return wait


@pytest.mark.parametrize("kind", [EVENT_TYPE_MODIFIED, EVENT_TYPE_CREATED])
def test_a_write_not_closed_yet_waits_the_long_quiet_time(
    watcher: ManifestWatcher, kind: str
) -> None:
    watcher._changed(kind, (APPLIED,))
    assert SAVED_SETTLE_SECONDS < _wait(watcher) <= EDIT_SETTLE_SECONDS


@pytest.mark.parametrize(
    ("kind", "paths"),
    [(EVENT_TYPE_CLOSED, (APPLIED,)), (EVENT_TYPE_MOVED, ("/manifests/.team.yaml.swp", APPLIED))],
)
def test_a_complete_save_is_read_after_a_short_pause(
    watcher: ManifestWatcher, kind: str, paths: tuple[str, ...]
) -> None:
    watcher._changed(EVENT_TYPE_MODIFIED, (APPLIED,))
    watcher._changed(kind, paths)
    assert _wait(watcher) <= SAVED_SETTLE_SECONDS


def test_a_write_after_a_complete_save_waits_again(watcher: ManifestWatcher) -> None:
    watcher._changed(EVENT_TYPE_CLOSED, (APPLIED,))
    watcher._changed(EVENT_TYPE_MODIFIED, (APPLIED,))
    assert _wait(watcher) > SAVED_SETTLE_SECONDS


def test_files_not_applied_are_not_noted(watcher: ManifestWatcher) -> None:
    watcher._changed(EVENT_TYPE_CLOSED, ("/manifests/other.yaml",))
    assert watcher.settled() == ([], None)


def test_an_in_place_save_ends_with_an_event_that_says_it_is_complete(tmp_path: Path) -> None:
    """What the rule relies on: inotify (through watchdog) reports the close of a written file."""
    kinds: list[str] = []
    folders = FolderWatcher(lambda kind, paths: kinds.append(kind), WRITE_EVENTS, False, "test")
    try:
        folders.watch([str(tmp_path)])
        (tmp_path / "team.yaml").write_text("kind: Agent\n")
        wait_until(lambda: EVENT_TYPE_CLOSED in kinds, what="the close of the saved file")
    finally:
        folders.stop()
