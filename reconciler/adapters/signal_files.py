"""The per-agent settings files that wire an agent CLI's signals, and whether a CLI will read them.

Written under the agent's own dir in the state dir, 0600, replaced whole on each launch.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from reconciler.adapters.atomic import write_atomic


def write_private(files: Mapping[str, str]) -> None:
    """Write each file 0600 and whole (see `atomic`), so a CLI never reads half of one."""
    for name, text in files.items():
        write_atomic(Path(name), text.encode())


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
