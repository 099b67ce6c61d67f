"""Whether the tmux binary is installed: asked before a controller is started (by `apply`,
`send`, `start`...) without importing the tmux adapter (subprocess, the control client, the
observation types: ~20 ms of `orch send`), and only then (`shutil` is ~3 ms more)."""

from __future__ import annotations

import shutil

from reconciler.api.errors import Unavailable

INSTALL_HINT = "tmux is not installed: run apt-get install tmux"


def require_tmux(tmux_bin: str = "tmux") -> None:
    """Raise Unavailable with the install hint when the tmux binary is missing."""
    if shutil.which(tmux_bin) is None:
        raise Unavailable(INSTALL_HINT)
