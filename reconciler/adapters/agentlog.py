"""The per-agent pane log: written through `tmux pipe-pane`, rotated by size, read by `orch logs`.

Writing. tmux appends the raw pane output (escape sequences and all) to the stdin of one command
per pane. That command is `pipe_command()`: `python -m reconciler.adapters.logwriter`, which copies
stdin to `<agent dir>/pane.log` with `copy_to_log()` and rotates the file itself. Rotation has to
live in the writer: `cat >> pane.log` keeps its descriptor, so after someone else renamed the file
the output would go on into the renamed file, and re-attaching the pipe to fix that would lose what
the pane prints meanwhile. A tiny stdlib-only Python program rather than a shell pipeline: sh has
no way to rotate per chunk (and rotatelogs-style tools are not on a fresh machine), while this is
plain Python, tested without tmux.

Rotation keeps every byte: when a chunk would take pane.log past `max_bytes`, the writer fills
pane.log up to its last line end that fits, shifts pane.log.(keep-1) → pane.log.keep … pane.log →
pane.log.1 (the oldest drops off) and goes on in a fresh pane.log. Chunks are written as soon as
they are read (no user space buffer), so the concatenation of pane.log.keep … pane.log.1,
pane.log is the pane's output in order, and no file is larger than `max_bytes`. Before each write
the writer checks that its descriptor is still pane.log, so a second writer that overlapped it
(the old pane's pipe draining while a relaunched pane starts its own) or a deleted file cannot
send output where nobody reads it. Files are created 0600, the directory 0700.

Reading. `read_log` joins the files' bytes oldest first, decodes them as UTF-8 (bad bytes become
U+FFFD), and renders lines for display: escape sequences (CSI, OSC, DCS and friends, charset
selection, single-character escapes) are removed, a line rewritten with CR shows its final state
(the text after its last CR: spinners and progress bars), and other control characters are
dropped. `follow` yields the same lines as the pane prints them, across rotations.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

#: The log file's name inside the agent's directory.
LOG_NAME = "pane.log"
#: Default rotation: pane.log grows to this size ...
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: ... and this many rotated files are kept, so one agent's log is at most ≈ 24 MiB.
DEFAULT_KEEP = 2
#: How much the writer reads from its pipe at once.
CHUNK_BYTES = 64 * 1024
#: The directory that holds the `reconciler` package, for the writer's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

#: Terminal escape sequences, longest forms first. String sequences (OSC, DCS, SOS, PM, APC) run
#: to BEL or ST (ESC \); one that never ends is left to the single-character rule.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colors, cursor moves, modes
    r"|\x1b[]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC (titles, clipboard), DCS, SOS, PM, APC
    r"|\x1b[ -/]+[0-~]"  # nF: charset selection ESC ( B, ESC # 8, ...
    r"|\x1b[0-~]?"  # ESC 7, ESC =, ESC M, ... or a lone ESC
)
#: Control characters left after the escapes: all Cc but \t (CR and LF are handled by line).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def log_path(agent_dir: Path) -> Path:
    """The pane log of the agent whose directory is `agent_dir`."""
    return agent_dir / LOG_NAME


def writer_pid_path(log: Path) -> Path:
    """Where the log writer of `log` keeps its pid, so the controller can tell it died."""
    return log.with_name(log.name + ".writer-pid")


def writer_alive(log: Path) -> bool | None:
    """Whether the log writer of `log` runs (None: it never said, e.g. it has not started)."""
    try:
        pid = int(writer_pid_path(log).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pipe_command(log: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> str:
    """The shell command for `tmux pipe-pane` that appends the pane's output to `log`, rotating.

    Runs this interpreter with this copy of the package on its path; `-P` keeps the pane's
    working folder (which may hold another checkout of orch) off that path.
    """
    _check_limits(max_bytes, keep)
    argv = [sys.executable, "-P", "-m", "reconciler.adapters.logwriter"]
    argv += [str(log.absolute()), str(max_bytes), str(keep)]
    return f"export PYTHONPATH={shlex.quote(str(_PACKAGE_ROOT))}; exec {shlex.join(argv)}"


def rotated_path(log: Path, index: int) -> Path:
    """`log`'s rotated file number `index` (1 is the newest)."""
    return log.with_name(f"{log.name}.{index}")


def rotate(log: Path, keep: int) -> None:
    """Shift log.(keep-1) → log.keep, …, log → log.1; the old log.keep is dropped."""
    for index in range(keep - 1, 0, -1):
        source = rotated_path(log, index)
        if source.exists():
            os.replace(source, rotated_path(log, index + 1))
    if log.exists():
        os.replace(log, rotated_path(log, 1))


class RotatingLog:
    """An append-only log file that rotates itself before it grows past `max_bytes`."""

    def __init__(self, log: Path, max_bytes: int, keep: int) -> None:
        _check_limits(max_bytes, keep)
        self.path, self.max_bytes, self.keep = log, max_bytes, keep
        log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = self._open()

    def write(self, data: bytes) -> None:
        """Append `data`, rotating whenever the current file would pass `max_bytes`.

        A file ends after a newline when one fits, so only lines longer than `max_bytes` are split.
        """
        if not self._is_current():
            self._reopen()
        size = os.fstat(self._fd).st_size
        while size + len(data) > self.max_bytes:
            room = max(self.max_bytes - size, 0)
            cut = data.rfind(b"\n", 0, room) + 1 or (0 if size else room)
            self._append(data[:cut])
            data = data[cut:]
            rotate(self.path, self.keep)
            self._reopen()
            size = 0
        self._append(data)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        return os.open(self.path, flags, 0o600)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _reopen(self) -> None:
        os.close(self._fd)
        self._fd = self._open()

    def _is_current(self) -> bool:
        """Whether our descriptor is still the file at `path` (not rotated away or deleted)."""
        try:
            return os.path.samestat(os.fstat(self._fd), os.stat(self.path))
        except FileNotFoundError:
            return False


def copy_to_log(
    source: int, log: Path, max_bytes: int, keep: int, chunk_bytes: int = CHUNK_BYTES
) -> None:
    """Append everything readable from file descriptor `source` to `log` until end of file."""
    with contextlib.closing(RotatingLog(log, max_bytes, keep)) as out:
        while chunk := os.read(source, chunk_bytes):
            out.write(chunk)


def read_log(log: Path, tail: int | None = None) -> list[str]:
    """Every line the pane printed, rotated files first, rendered for display; `tail`: last N."""
    current = _open_current(log)
    try:
        data = _rotated_bytes(log, current) + (current.read() if current else b"")
    finally:
        if current:
            current.close()
    lines = data.decode(errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return _tail([render_line(line) for line in lines], tail)


def follow(
    log: Path, from_end_lines: int | None = None, poll: float = 0.1
) -> Generator[str, None, None]:
    """The last `from_end_lines` lines (all when None), then each new line as it is completed.

    Polls every `poll` seconds; survives rotation (a new file at `log`) and truncation. A file
    rotated in and out again between two polls (more than `max_bytes` printed within `poll`) is
    skipped. Runs until the caller stops iterating.
    """
    current = _open_current(log)
    try:
        data = _rotated_bytes(log, current) + (current.read() if current else b"")
        *complete, pending = data.split(b"\n")
        yield from _tail([_render(line) for line in complete], from_end_lines)
        while True:
            chunk = current.read() if current else b""
            if not chunk:
                fresh = _replacement(log, current)
                if fresh is None:
                    time.sleep(poll)
                    continue
                if current:
                    # What the writer appended between our last read and its rotation.
                    chunk = current.read()
                    current.close()
                current = fresh
            *complete, pending = (pending + chunk).split(b"\n")
            yield from map(_render, complete)
    finally:
        if current:
            current.close()


def render_line(line: str) -> str:
    """One logged line as a terminal would leave it: no escapes, the text after its last CR."""
    line = _ESCAPES.sub("", line).rstrip("\r")
    return _CONTROLS.sub("", line.rpartition("\r")[2])


def _render(line: bytes) -> str:
    return render_line(line.decode(errors="replace"))


def _tail(lines: list[str], count: int | None) -> list[str]:
    if count is None:
        return lines
    return lines[-count:] if count > 0 else []


def _check_limits(max_bytes: int, keep: int) -> None:
    if max_bytes < 1 or keep < 1:
        raise ValueError(f"max_bytes and keep must be at least 1 (got {max_bytes}, {keep})")


def _open_current(log: Path) -> BinaryIO | None:
    try:
        return log.open("rb")
    except FileNotFoundError:
        return None


def _rotated_bytes(log: Path, current: BinaryIO | None) -> bytes:
    """The rotated files' contents, oldest first, each file once (by inode).

    Read newest first, each listed index and the one after it: a rotation while we read moves
    each file one index up, to an index we have yet to read, so it neither hides a file nor
    repeats one.
    """
    prefix = log.name + "."
    try:
        names = [entry.name for entry in os.scandir(log.parent)]
    except FileNotFoundError:
        return b""
    listed = [int(name[len(prefix) :]) for name in names if _is_rotated(name, prefix)]
    seen = {os.fstat(current.fileno()).st_ino} if current else set()
    parts = []
    for index in sorted({i + step for i in listed for step in (0, 1)}):
        try:
            with rotated_path(log, index).open("rb") as rotated:
                inode = os.fstat(rotated.fileno()).st_ino
                if inode not in seen:
                    seen.add(inode)
                    parts.append(rotated.read())
        except FileNotFoundError:
            continue
    return b"".join(reversed(parts))


def _is_rotated(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _replacement(log: Path, current: BinaryIO | None) -> BinaryIO | None:
    """A new file to read when `log` was rotated or recreated; None to keep reading `current`.

    A truncated `current` is rewound to its start.
    """
    try:
        fresh = log.open("rb")
    except FileNotFoundError:
        return None
    if current is None or not os.path.samestat(
        os.fstat(fresh.fileno()), os.fstat(current.fileno())
    ):
        return fresh
    fresh.close()
    if os.fstat(current.fileno()).st_size < current.tell():
        current.seek(0)
    return None
