"""Noticing files change on disk: one watchdog wrapper, serving applied manifests and guarded
workdirs.

A wake-up carries no state: the pass that follows re-reads what changed, so a missed event costs
at most the one-second safety pass. `FolderWatcher` is the only watchdog user; the two watchers
below add only what they make of a change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

#: watchdog event types that mean a file's content may have changed.
WRITE_EVENTS = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
)
#: ... and the ones that also mean something under a folder went away.
CHANGE_EVENTS = WRITE_EVENTS | {EVENT_TYPE_DELETED}
#: Quiet time after a manifest file changes before it is read, so a file saved in pieces (an
#: editor's non-atomic save) is read once it is whole, not half-way.
EDIT_SETTLE_SECONDS = 0.3
#: ... and after a save is complete: the writer closed the file, or renamed a whole file onto
#: it. A short pause only gathers the rest of one save (a backup, attributes) into one read.
SAVED_SETTLE_SECONDS = 0.02
#: The events that mean a save is complete.
SAVED_EVENTS = frozenset({EVENT_TYPE_CLOSED, EVENT_TYPE_MOVED})


class FolderWatcher(FileSystemEventHandler):
    """Watches exactly the folders it is given and hands the paths of each change to `on_change`.

    Only `events` count (opens and reads are not changes). Paths are reported under the spelling
    the folder was given in; a folder that is missing or cannot be watched (inotify limits) is
    skipped and logged, never raised: the every-pass checks still cover it.
    """

    def __init__(
        self,
        on_change: Callable[[str, tuple[str, ...]], None],
        events: frozenset[str],
        recursive: bool,
        purpose: str,
    ) -> None:
        self._on_change = on_change
        self._events = events
        self._recursive = recursive
        self._purpose = purpose
        self._lock = threading.Lock()
        self._watches: dict[str, object] = {}
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, folders: Iterable[str]) -> None:
        """Watch exactly these folders."""
        wanted = set(folders)
        with self._lock:
            current = set(self._watches)
        for folder in current - wanted:
            with self._lock:
                handle = self._watches.pop(folder)
            with contextlib.suppress(KeyError, ValueError):
                self._observer.unschedule(handle)  # type: ignore[arg-type]
        for folder in wanted - current:
            if not os.path.isdir(folder):
                continue
            try:
                handle = self._observer.schedule(self, folder, recursive=self._recursive)
            except OSError as err:
                log.warning("cannot watch %s for %s: %s", folder, self._purpose, err)
                continue
            with self._lock:
                self._watches[folder] = handle

    def on_any_event(self, event: FileSystemEvent) -> None:
        """watchdog's call: a change of a counted kind is passed on with its kind and paths."""
        if event.event_type not in self._events:
            return
        paths = (os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or ""))
        self._on_change(event.event_type, tuple(filter(None, paths)))

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._observer.stop()
        self._observer.join(timeout=5)


class ManifestWatcher:
    """Notes which applied manifest files changed on disk and wakes the loop."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._files: set[str] = set()
        self._dirty: dict[str, float] = {}
        self._folders = FolderWatcher(self._changed, WRITE_EVENTS, False, "manifests")

    def watch(self, files: list[str]) -> None:
        """Watch exactly these files (their folders, since editors save by renaming)."""
        with self._lock:
            self._files = set(files)
        self._folders.watch(str(Path(f).parent) for f in files)

    def _changed(self, kind: str, paths: tuple[str, ...]) -> None:
        """A write in a watched folder: if it touches an applied file, note when to read it
        (the last event decides: a write after a complete save waits the long quiet time)."""
        settle = SAVED_SETTLE_SECONDS if kind in SAVED_EVENTS else EDIT_SETTLE_SECONDS
        with self._lock:
            touched = set(paths) & self._files
            for path in touched:
                self._dirty[path] = time.monotonic() + settle
        if touched:
            self._wake()

    def settled(self) -> tuple[list[str], float | None]:
        """Files whose save is complete or quiet long enough, and how long until the rest are."""
        now = time.monotonic()
        ready, wait = [], None
        with self._lock:
            for path, due in list(self._dirty.items()):
                left = due - now
                if left <= 0:
                    ready.append(path)
                    del self._dirty[path]
                else:
                    wait = left if wait is None else min(wait, left)
        return ready, wait

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._folders.stop()


class GuardWatcher:
    """Wakes the controller when anything under a guarded workdir changes, outside `.git/`.

    The pass that follows runs the guard check. Wake-ups are at most one per `min_interval` (a
    build writing thousands of files costs a few passes, not thousands), the last one always
    delivered. `ignore` holds folders whose writes never wake it: the state dir, when it lies
    inside a workdir, is written on every pass and would otherwise wake the loop forever.
    """

    def __init__(
        self, wake: Callable[[], None], ignore: Iterable[Path] = (), min_interval: float = 0.05
    ) -> None:
        self._wake = wake
        self._ignore = tuple(os.path.realpath(folder) for folder in ignore)
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._changed: set[Path] = set()
        self._last = 0.0
        self._timer: threading.Timer | None = None
        # Watches are on resolved paths (inotify does not follow a symlinked root); events are
        # reported under the spellings the caller gave.
        self._spellings: dict[str, set[Path]] = {}
        self._folders = FolderWatcher(self._noticed, CHANGE_EVENTS, True, "guards")

    def watch(self, workdirs: Iterable[Path]) -> None:
        """Watch exactly these workdirs, recursively (missing ones are skipped)."""
        spellings: dict[str, set[Path]] = {}
        for workdir in workdirs:
            spellings.setdefault(os.path.realpath(workdir), set()).add(Path(workdir))
        with self._lock:
            self._spellings = spellings
        self._folders.watch(spellings)

    def take_changed(self) -> set[Path]:
        """Workdirs that changed since the last call (as given to `watch`), and forget them."""
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed

    def _noticed(self, kind: str, paths: tuple[str, ...]) -> None:
        """A change under a watched workdir: note which one and wake the loop."""
        hit: set[Path] = set()
        with self._lock:
            watched = {real: set(given) for real, given in self._spellings.items()}
        for path in paths:
            if any(_inside(path, folder) is not None for folder in self._ignore):
                continue
            for real, given in watched.items():
                inside = _inside(path, real)
                if inside is not None and ".git" not in inside.split(os.sep):
                    hit |= given
        if hit:
            with self._lock:
                self._changed |= hit
            self._poke()

    def _poke(self) -> None:
        with self._lock:
            wait = self._last + self._min_interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._fire_later)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._wake()

    def _fire_later(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._wake()

    def stop(self) -> None:
        """Stop the watcher thread and any pending wake-up."""
        self._folders.stop()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def _inside(path: str, folder: str) -> str | None:
    """`path` relative to `folder` ("" for the folder itself), or None when outside it."""
    if path == folder:
        return ""
    return path[len(folder) + 1 :] if path.startswith(folder + os.sep) else None
