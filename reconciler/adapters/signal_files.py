"""The per-agent settings files that wire an agent CLI's signals, and whether a CLI will read them.

Written under the agent's own dir in the state dir, 0600, replaced whole on each launch; the
logs a CLI writes there for orch start anew at each launch.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.adapters.atomic import write_atomic


def write_private(files: Mapping[str, str]) -> None:
    """Write each file 0600 and whole (see `atomic`), so a CLI never reads half of one."""
    for name, text in files.items():
        write_atomic(Path(name), text.encode())


def start_logs_afresh(logs: Sequence[str]) -> None:
    """Remove the logs a CLI writes for orch (its debug log), so the new launch starts them anew.

    Unlinked, not truncated: a process of the previous launch still appending (O_APPEND) writes
    to the removed file, never into the new launch's.
    """
    for name in logs:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


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
