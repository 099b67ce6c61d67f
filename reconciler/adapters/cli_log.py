"""Reading what an agent CLI appended to a log it writes for orch (Gemini's debug log).

Incremental and bounded: the caller keeps a `LogPosition` per file (its inode and the offset read
up to) and gets only whole lines added since, at most `transcripts.MAX_READ_BYTES` per call. A
file with another inode or a shorter one (truncated) is read from its start, and so is any file
after NO_FILE (the caller passes it for a new launch: inode numbers are reused at once); a file
first seen by this controller is read from its end (what came before is not news). A log
past MAX_LOG_BYTES is emptied once read (the CLI appends with O_APPEND, so it goes on writing
at the new end); a line it wrote in between is lost, which costs at most one limit. Not a
regular file (a symlink put there): not read, not touched. Never raises.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.transcripts import read_new_lines

#: A log grown past this is emptied once read.
MAX_LOG_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where reading a log got to: the file (inode) and the offset after its last whole line."""

    inode: int
    offset: int


#: The position of a log that does not exist (yet): no file has inode 0.
NO_FILE = LogPosition(0, 0)


def read_appended(path: Path, position: LogPosition | None) -> tuple[list[str], LogPosition]:
    """The whole lines appended to `path` since `position` (None: never looked), and the
    position to keep (NO_FILE while there is none, so a file that appears later is read whole)."""
    try:
        info = os.lstat(path)
    except OSError:
        return [], NO_FILE
    if not stat.S_ISREG(info.st_mode):
        return [], NO_FILE
    if position is None:
        return [], LogPosition(info.st_ino, info.st_size)  # first seen: only what follows
    offset = position.offset if position.inode == info.st_ino and position != NO_FILE else 0
    lines, end = read_new_lines(path, offset)
    if end >= MAX_LOG_BYTES or info.st_size >= MAX_LOG_BYTES:
        end = 0 if _empty(path) else end
    return [line for _, line in lines], LogPosition(info.st_ino, end)


def _empty(path: Path) -> bool:
    """Truncate the log (not through a symlink); whether it was."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.ftruncate(fd, 0)
            return True
        finally:
            os.close(fd)
    return False
