"""The environment orch's own processes run with: the controller and the tmux server.

Built from an allowlist, never inherited whole: a controller started by `orch send` from inside
an agent would otherwise carry that agent's secrets and launch marker (ORCH_LAUNCH_ID) into the
tmux server and every pane it starts, and a restart of that agent would end them all. What an
agent needs is given to its own pane only (see Tmux.start).
"""

from __future__ import annotations

from collections.abc import Mapping

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
        "ORCH_STATE_DIR",
        "ORCH_TMUX_SOCKET",
    }
)


def clean_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` in KEPT, plus the locale's LC_* ones."""
    return {
        name: value for name, value in environ.items() if name in KEPT or name.startswith("LC_")
    }
