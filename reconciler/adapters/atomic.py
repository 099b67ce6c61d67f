"""Files replaced whole or not at all: a crash or a full disk mid-write never leaves a torn file.

The bytes go to a temporary file in the same folder (created exclusively, so never through a
symlink), are flushed to disk, and only then take the target's name: a reader sees the old
content or the new, never part of either. A write that fails (ENOSPC, EROFS, EACCES) removes its
temporary file and raises OSError with the target untouched. A process killed mid-write leaves
at most a `.NAME.*.tmp` file that nothing reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o600, exclusive: bool = False) -> bool:
    """Give `path` the content `data` (file mode `mode`) in one step; True when written.

    With `exclusive` an existing `path` is left as it is and False returned: the first of
    several processes making the same file wins, and the others read what it wrote.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # fails if `path` exists, so no later writer replaces it
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_folder(path.parent)
    return True


def sync_folder(folder: Path) -> None:
    """fsync the folder, so the new name survives a power cut too."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
