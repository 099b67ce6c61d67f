"""The environment orch's own processes run with: the controller and the tmux server.

Built from an allowlist, never inherited whole: a controller started by `orch send` from inside
an agent would otherwise carry that agent's secrets and launch marker (ORCH_LAUNCH_ID) into the
tmux server and every pane it starts, and a restart of that agent would end them all. What an
agent needs is given to its own pane only (see Tmux.start).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: Variables a user's session supplies that orch, tmux and the agents' shells rely on.
KEPT = frozenset(
    {
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "XDG_CACHE_HOME",
        "DBUS_SESSION_BUS_ADDRESS",
    }
)


def controller_environment(
    environ: Mapping[str, str], state_dir: Path, socket: str
) -> dict[str, str]:
    """The controller's environment: the variables of `environ` in KEPT (and the locale's LC_*
    ones), plus the installation it serves. Nothing of an agent's: no secret, no launch marker."""
    kept = {
        name: value for name, value in environ.items() if name in KEPT or name.startswith("LC_")
    }
    return {**kept, "ORCH_STATE_DIR": str(state_dir), "ORCH_TMUX_SOCKET": socket}


def use_controller_environment(state_dir: Path, socket: str) -> None:
    """Replace this process's environment with the controller's (for a controller started in
    the foreground: by systemd, or by hand from any shell, an agent's included)."""
    clean = controller_environment(os.environ, state_dir, socket)
    os.environ.clear()
    os.environ.update(clean)
