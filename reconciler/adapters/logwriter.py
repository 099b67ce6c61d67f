"""The one pane-log writer of an installation: `python -P -m reconciler.adapters.logwriter DIR`.

Every agent's pane copies its output into the agent's FIFO (`cat`, see reconciler.adapters.agentlog)
and this single process reads all of them and appends each to its agent's rotating pane.log: one
small process for the whole team instead of one interpreter per agent. It finds FIFOs by looking
at `DIR/agents/*/pane.fifo` when it starts, when the executor says it made one (`notify_new_fifo`,
through the `DIR/logwriter.wake` FIFO) and every RESCAN_SECONDS anyway; it holds
`DIR/logwriter.lock` (flock) so that only one runs per state dir, and exits when DIR is gone (looked
at every CHECK_SECONDS). Idle, it wakes every CHECK_SECONDS for one stat.
The controller starts it when none runs (`LogWriterKeeper`), in a session of its own, so it
outlives controller restarts; while it is down the output waits in the FIFOs (see agentlog), so a
restart loses nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.agentlog import (
    DEFAULT_KEEP,
    DEFAULT_MAX_BYTES,
    FIFO_NAME,
    LOG_NAME,
    RotatingLog,
    copy_available,
)
from reconciler.adapters.wake import WakeChannel, notify

#: The lock file (in the state dir) the running writer holds.
LOCK_NAME = "logwriter.lock"
#: The FIFO through which the executor wakes the writer for a new agent FIFO.
WAKE_NAME = "logwriter.wake"
#: How often the writer looks whether its state dir still exists (one stat).
CHECK_SECONDS = 5.0
#: How often the writer looks for new or removed FIFOs without being told. The executor tells
#: it after every launch, so this is a safety net; a FIFO it finds late held its output
#: meanwhile, so this costs no bytes. A look at 20 agents' folders costs the writer 0.5-1 ms of
#: CPU: every 5 s (as it was) that made up to a tenth of orch's idle CPU.
RESCAN_SECONDS = 60.0
#: Reads per FIFO per round, so a pane printing without pause cannot starve the others.
CHUNKS_PER_ROUND = 16
#: The directory that holds the `reconciler` package, for the writer's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class _Source:
    """One agent's FIFO, open for reading, and the log it goes to."""

    fifo: Path
    inode: int
    fd: int
    log: RotatingLog

    def drain(self) -> None:
        """Copy what the FIFO holds now; a log that cannot be written is said on stderr."""
        try:
            copy_available(self.fd, self.log, max_chunks=CHUNKS_PER_ROUND)
        except OSError as err:
            print(f"logwriter: {self.log.path}: {err}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Copy what is left, then close the FIFO and the log."""
        self.drain()
        os.close(self.fd)
        self.log.close()


def serve(state_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
    """Copy every agent FIFO of `state_dir` into its log until `state_dir` is gone."""
    lock = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return  # another writer serves this state dir
    os.ftruncate(lock, 0)
    os.write(lock, str(os.getpid()).encode())  # for `stop_writer`
    sources: dict[Path, _Source] = {}
    poller = select.poll()
    wake = WakeChannel(state_dir / WAKE_NAME)
    poller.register(wake.fd, select.POLLIN)
    try:
        next_check = next_scan = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                if not state_dir.is_dir():
                    return
                next_check = now + CHECK_SECONDS
            if now >= next_scan:
                _rescan(state_dir / "agents", sources, poller, max_bytes, keep)
                next_scan = now + RESCAN_SECONDS
            wait_ms = max(0.0, min(next_check, next_scan) - time.monotonic()) * 1000
            ready = {fd for fd, _ in poller.poll(wait_ms)}
            if wake.fd in ready:
                wake.drain()
                next_scan = 0.0
            for source in sources.values():
                if source.fd in ready:
                    source.drain()
    finally:
        for source in sources.values():
            source.close()
        wake.close()
        os.close(lock)


def _rescan(
    agents: Path, sources: dict[Path, _Source], poller: select.poll, max_bytes: int, keep: int
) -> None:
    """Open FIFOs that appeared (or were replaced); close those that went."""
    found: dict[Path, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(agents):
            fifo = Path(entry.path) / FIFO_NAME
            with contextlib.suppress(OSError):
                info = fifo.lstat()
                if stat.S_ISFIFO(info.st_mode):
                    found[fifo] = info.st_ino
    for fifo in [f for f, s in sources.items() if found.get(f) != s.inode]:
        source = sources.pop(fifo)
        poller.unregister(source.fd)
        source.close()
    for fifo, inode in found.items():
        if fifo in sources:
            continue
        try:
            flags = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(fifo, flags)
        except OSError:
            continue
        try:
            log = RotatingLog(fifo.with_name(LOG_NAME), max_bytes, keep)
        except OSError:
            os.close(fd)
            continue
        sources[fifo] = _Source(fifo, inode, fd, log)
        poller.register(fd, select.POLLIN)


def notify_new_fifo(state_dir: Path) -> None:
    """Tell the running writer (if any) to look for new FIFOs now."""
    notify(state_dir / WAKE_NAME)


def writer_running(state_dir: Path) -> bool:
    """Whether a writer holds this state dir's lock."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def stop_writer(state_dir: Path) -> int | None:
    """End the writer of `state_dir` (when no pane is left to write to it: `orch controller
    stop` with an empty tmux server); its pid, or None when none ran. Only a process holding
    the lock, named in it and running this module for this state dir is signalled."""
    if not writer_running(state_dir):
        return None
    try:
        pid = int((state_dir / LOCK_NAME).read_text()[:20])
        with open(f"/proc/{pid}/cmdline", "rb") as proc:
            cmdline = proc.read().split(b"\0")
    except (OSError, ValueError):
        return None
    if __name__.encode() not in cmdline or str(state_dir).encode() not in cmdline:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return pid


class LogWriterKeeper:
    """Starts the state dir's log writer whenever none runs (each pass; cheap when one does)."""

    def __init__(self, state_dir: Path, stderr: Path) -> None:
        self.state_dir, self.stderr = state_dir, stderr
        self._child: subprocess.Popen[bytes] | None = None

    def ensure(self) -> bool:
        """Start a writer unless ours is alive or another one holds the lock; True when the
        writer this keeper started had died and was started again (worth a Warning)."""
        if self._child is not None and self._child.poll() is None:
            return False
        if writer_running(self.state_dir):
            return False
        restarted = self._child is not None
        with open(self.stderr, "ab") as errors:
            self._child = subprocess.Popen(
                [sys.executable, "-P", "-m", "reconciler.adapters.logwriter", str(self.state_dir)],
                # Marked with its state dir, as the agents are, so teardown finds it too.
                env={
                    **os.environ,
                    "PYTHONPATH": str(_PACKAGE_ROOT),
                    "ORCH_STATE_DIR": str(self.state_dir),
                },
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
        return restarted


def main(argv: Sequence[str] | None = None) -> None:
    """Parse DIR [--max-bytes N] [--keep N] and serve its agents' FIFOs."""
    parser = argparse.ArgumentParser(prog="python -m reconciler.adapters.logwriter")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # copies what is left, then exits
    serve(args.state_dir.resolve(), args.max_bytes, args.keep)


if __name__ == "__main__":
    main()
