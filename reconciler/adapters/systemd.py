"""The systemd user unit that keeps one installation's controller running across crashes and boots.

`install` writes the unit and `uninstall` removes it; neither runs systemctl (the machine may have
no user systemd, or no systemd at all): they return the commands for the user to run.

The unit's choices, and why:

- `KillMode=process`: on stop or restart systemd signals only the controller. The tmux server the
  controller started (and every agent in it) lives in the unit's control group, so the default
  `KillMode=control-group` would take the whole team down with every controller restart, the
  failure supervisors of tmux sessions commonly ship with. The controller needs no help ending:
  it stops on SIGTERM, leaving the agents running, and the next controller adopts them. systemd
  logs the leftover processes it finds when the unit starts again; that is expected. The other
  way out is to start tmux outside the unit's cgroup (`systemd-run --user --scope tmux ...`),
  which costs a D-Bus round trip per server start and needs a running user manager.
- `Restart=always`, `RestartSec=2` and `StartLimitIntervalSec=0`: the controller comes back
  whatever ended it, and systemd never gives up on it (by default five quick restarts stop the
  retries). A controller started by `orch apply` that already holds the lock is asked to hand
  over (`controller --take-over`: SIGTERM, then the lock), so the unit never loops on the lock.
- No `After=`: a user unit is already ordered after the user manager's basic.target, and
  `default.target` (which wants it) must not be waited for by a unit it pulls in.
- `ExecStart` and `Environment` name the state dir and socket, so the unit runs this
  installation; the unit name carries a hash of the state dir, so two installations get two units.

Quoting follows systemd, not the shell: words split on whitespace, double quotes group, C escapes
are decoded, `%` starts a specifier and, in ExecStart only, `$` a variable (`%%`, `$$` are literal).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.adapters.atomic import write_atomic

#: Seconds systemd waits before starting a controller that ended.
RESTART_SEC = 2
#: Seconds a stopping controller gets before SIGKILL (a pass finishes well within it).
TIMEOUT_STOP_SEC = 10
#: Characters a word may hold and still be written without quotes.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@+=:,./-")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The C escapes systemd decodes that are clearer than \xNN.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def systemd_quote(word: str, *, expand_env: bool = True) -> str:
    """`word` as one word of a systemd ExecStart= (or, with expand_env=False, Environment=) line.

    Plain words stay as they are; anything else is double-quoted with C escapes, `%` doubled, and
    `$` doubled where systemd would otherwise substitute a variable.
    """
    if word and all(char in _PLAIN for char in word):
        return word
    out = []
    for char in word:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == "%":
            out.append("%%")
        elif char == "$" and expand_env:
            out.append("$$")
        elif "\udc80" <= char <= "\udcff":  # a byte of a file name that is not UTF-8
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def exec_line(argv: Sequence[str]) -> str:
    """An ExecStart= value running exactly `argv`; its program must be an absolute path.

    systemd refuses quotes, backslashes and control characters in the program path, and does not
    substitute variables in it, so a `$` there could not be written faithfully either.
    """
    if not argv or not argv[0].startswith("/"):
        raise ValueError(f"the program of a systemd unit must be an absolute path: {argv[:1]}")
    program = argv[0]
    if any(ch in "\"'\\$" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in program):
        raise ValueError(f"systemd cannot run a program whose path holds {program!r}")
    return " ".join(systemd_quote(word) for word in argv)


def unit_name(state_dir: Path) -> str:
    """`orch-controller-<hash>.service`, one per absolute state dir."""
    digest = hashlib.sha256(os.fsencode(_absolute(state_dir))).hexdigest()[:12]
    return f"orch-controller-{digest}.service"


def unit_dir() -> Path:
    """Where systemd looks for the user's own units: $XDG_CONFIG_HOME/systemd/user."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user"


def unit_path(state_dir: Path) -> Path:
    """The unit file of this state dir's controller."""
    return unit_dir() / unit_name(state_dir)


def unit_text(
    orch_argv: Sequence[str],
    state_dir: Path,
    socket: str,
    description: str,
    *,
    environment: Mapping[str, str] | None = None,
) -> str:
    """The unit file running `ORCH_ARGV --state-dir DIR --socket NAME controller`.

    `environment` adds variables for the controller and so for the agents it starts (PATH above
    all: the user manager's PATH is short, and agent CLIs often live in ~/.local/bin).
    """
    state = _absolute(state_dir)
    argv = [*orch_argv, "--state-dir", state, "--socket", socket, "controller", "--take-over"]
    env = {"ORCH_STATE_DIR": state, "ORCH_TMUX_SOCKET": socket, **(environment or {})}
    bad = [key for key in env if not _ENV_NAME.fullmatch(key)]
    if bad:
        raise ValueError(f"not environment variable names: {bad}")
    env_lines = [
        f"Environment={systemd_quote(f'{key}={value}', expand_env=False)}"
        for key, value in env.items()
    ]
    return "\n".join(
        [
            f"# Written by `orch service install` for {_one_line(state)}.",
            "# `orch service uninstall` with the same state dir removes it.",
            "[Unit]",
            f"Description={_description(description)}",
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={exec_line(argv)}",
            *env_lines,
            "Restart=always",
            f"RestartSec={RESTART_SEC}",
            "# Only the controller is signalled: the tmux server and the agents keep running.",
            "KillMode=process",
            f"TimeoutStopSec={TIMEOUT_STOP_SEC}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def install(
    state_dir: Path,
    socket: str,
    orch_argv: Sequence[str],
    *,
    environment: Mapping[str, str] | None = None,
) -> tuple[Path, list[str]]:
    """Write (or replace) the unit atomically, 0644; return its path and the commands to run."""
    state = _absolute(state_dir)
    name = unit_name(state_dir)
    text = unit_text(
        orch_argv,
        Path(state),
        socket,
        f"orch controller for {state} (tmux socket {socket})",
        environment=environment,
    )
    path = unit_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        replaced = path.read_text() != text
    except FileNotFoundError:
        replaced = False
    write_atomic(path, text.encode(), mode=0o644)
    commands = [
        "systemctl --user daemon-reload",
        f"systemctl --user enable --now {name}",
    ]
    if replaced:
        commands.append(f"systemctl --user restart {name}")
    commands.append(f"loginctl enable-linger {_user()}")
    return path, commands


def uninstall(state_dir: Path) -> tuple[Path | None, list[str]]:
    """Remove the unit and its enablement links; (None, []) when no unit was installed.

    The links in `*.wants/` are what `systemctl disable` would remove; removing them here means
    the commands left for the user (stop, daemon-reload) work with the file already gone.
    """
    name = unit_name(state_dir)
    path = unit_path(state_dir)
    folder = path.parent
    links = [
        link
        for pattern in ("*.wants", "*.requires")
        for link in folder.glob(f"{pattern}/{name}")
        if link.is_symlink()
    ]
    if not path.exists() and not links:
        return None, []
    for link in links:
        link.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return path, [f"systemctl --user stop {name}", "systemctl --user daemon-reload"]


def _absolute(state_dir: Path) -> str:
    return str(Path(state_dir).expanduser().resolve())


def _description(text: str) -> str:
    """A Description= value: one line, specifiers escaped, no trailing line continuation."""
    return _one_line(text).replace("%", "%%").rstrip("\\ ") or "orch controller"


def _one_line(text: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _user() -> str:
    """This user's name, quoted for a shell (`$USER` when it cannot be found)."""
    try:
        return shlex.quote(getpass.getuser())
    except (KeyError, OSError):
        return "$USER"
