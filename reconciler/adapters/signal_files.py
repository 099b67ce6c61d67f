"""The per-agent settings files that wire an agent CLI's signals, and whether a CLI will read them.

Written under the agent's own dir in the state dir, 0600, replaced atomically on each launch.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path


def write_private(files: Mapping[str, str]) -> None:
    """Write each file (0600, via a temporary name and a rename, so a CLI never reads half)."""
    for name, text in files.items():
        path = Path(name)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)


def root_only(folder: Path) -> bool:
    """Whether `folder` and every parent are root's and not writable by group or others.

    Gemini CLI honours a system settings file only there; orch running as another user (or in a
    state dir under /tmp) falls back to the screen.
    """
    if os.geteuid() != 0:
        return False
    try:
        for part in (folder, *folder.parents):
            info = part.stat()
            if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
    except OSError:
        return False
    return True
