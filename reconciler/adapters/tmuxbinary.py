"""Whether the tmux binary is installed, asked by commands that start a controller (`send`,
`apply`, `start`…) without importing the tmux adapter (subprocess, the control client, the
observation types: ~20 ms of `orch send`)."""

from __future__ import annotations

import shutil

from reconciler.api.errors import Unavailable

INSTALL_HINT = "tmux is not installed: run apt-get install tmux"


def require_tmux(tmux_bin: str = "tmux") -> None:
    """Raise Unavailable with the install hint when the tmux binary is missing."""
    if shutil.which(tmux_bin) is None:
        raise Unavailable(INSTALL_HINT)
