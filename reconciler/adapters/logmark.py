"""Positions in an agent's pane log, and what the pane printed after one.

The evidence for a paste whose outcome the controller never recorded (it died in between): the
position is taken, and committed with the paste's intent, before the paste; afterwards the bytes
the pane printed since then show whether the agent echoed it (`core.delivery.judge_echo`). A
position is the log file's inode and size, so a rotation since (pane.log became pane.log.1) is
followed rather than misread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from reconciler.adapters.agentlog import DEFAULT_KEEP, rotated_path

#: At most this much output after a position is read: enough for the echo of any message.
MAX_EVIDENCE_BYTES = 8 * 1024 * 1024


def log_mark(log: Path) -> tuple[int, int] | None:
    """(inode, size) of the pane log now; None when the agent has no log."""
    try:
        info = os.stat(log)
    except OSError:
        return None
    return info.st_ino, info.st_size


def output_since(
    log: Path, inode: int, offset: int, limit: int = MAX_EVIDENCE_BYTES
) -> bytes | None:
    """What the pane printed after (inode, offset), up to `limit` bytes; None when the file that
    position was in is gone (rotated out) or cannot be read."""
    files = [log, *(rotated_path(log, i) for i in range(1, DEFAULT_KEEP + 1))]
    newer: list[Path] = []
    for path in files:
        try:
            if os.stat(path).st_ino == inode:
                return _read(path, offset, limit, newer[::-1])
        except OSError:
            pass
        newer.append(path)
    return None


def _read(path: Path, offset: int, limit: int, newer: Iterable[Path]) -> bytes | None:
    """`path` from `offset`, then each newer file whole (oldest first), up to `limit` bytes."""
    parts = []
    try:
        with path.open("rb") as first:
            first.seek(offset)
            parts.append(first.read(limit))
        for later in newer:
            left = limit - sum(map(len, parts))
            if left <= 0:
                break
            with later.open("rb") as f:
                parts.append(f.read(left))
    except OSError:
        return None
    return b"".join(parts)
