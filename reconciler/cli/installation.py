"""The installation every command works on (a state dir and a tmux socket), and how it is opened.

Commands that change something open the store with `store` (creating the state dir 0700); read-only
commands use `reader`, which never creates one: where there is none they say so (exit 2). Nothing
here imports click: `entry`'s fast path opens an installation without it (the click options that
choose one are in `options`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from reconciler.api.errors import InvalidInput, NotFound, OrchError
from reconciler.cli.console import echo

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    # types only: `orch --help` lists every verb without opening a store
    from reconciler.adapters.paths import StatePaths
    from reconciler.adapters.store import Store

SOCKET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: How often `-w` and `--wait` look at the store again.
POLL_SECONDS = 0.1


@dataclass
class Installation:
    """The state dir and tmux socket every command works on."""

    state_dir: Path
    socket: str

    @cached_property
    def store(self) -> Store:
        """The store, opened on first use (creating the state dir 0700)."""
        from reconciler.adapters.store import Store

        return Store(self.state_dir)

    def has_state(self) -> bool:
        """Whether this state dir holds a store (something was applied here)."""
        from reconciler.adapters.store import DB_NAME

        return (self.state_dir / DB_NAME).is_file()

    @cached_property
    def reader(self) -> Store:
        """The store for a read-only command: NotFound (exit 2) where none exists, none created."""
        if not self.has_state():
            raise NotFound(
                f"no orch state in {self.state_dir}: nothing was applied here "
                "(choose another with --state-dir or ORCH_STATE_DIR)"
            )
        return self.store

    def require_state(self) -> None:
        """For read-only commands: exit 2 (one line) where there is no state dir."""
        self.reader  # noqa: B018 - opening it is the check

    @property
    def paths(self) -> StatePaths:
        """Files of this installation."""
        from reconciler.adapters.paths import StatePaths

        return StatePaths(self.state_dir)

    def start_controller(self) -> None:
        """Wake the controller, starting one in the background if none runs."""
        from reconciler.adapters.wake import notify
        from reconciler.controller.daemon import ensure_controller

        ensure_controller(self.state_dir, self.socket)
        notify(self.paths.wake)

    def warn_if_no_controller(self) -> None:
        """Say on stderr that the status shown is only as fresh as the last controller pass."""
        from reconciler.controller.daemon import controller_running

        if controller_running(self.paths):
            return
        from reconciler.api.localtime import local_time

        last = self.reader.events(limit=1)
        when = f" (last recorded {local_time(last[0].time)})" if last else ""
        echo(
            f"orch: warning: no controller runs for {self.state_dir}; the status shown is as old "
            f"as it says{when}. Start one with `orch controller` (or any `orch apply`).",
            err=True,
        )


def open_installation(state_dir: str | None, socket: str | None) -> Installation:
    """The installation chosen by flags (given here), then environment, then defaults."""
    state_dir = state_dir or os.environ.get("ORCH_STATE_DIR") or "./state"
    socket = socket or os.environ.get("ORCH_TMUX_SOCKET") or "orch"
    if not SOCKET_NAME.match(socket):
        raise InvalidInput(
            f"--socket: invalid tmux socket name {socket!r} (use letters, digits, _.-)"
        )
    return Installation(Path(state_dir).expanduser().resolve(), socket)


def who(via: str) -> str:
    """Who asked, for `describe`: the user and the command they used."""
    import getpass  # only commands that record who asked

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user} via {via}"


def wait_for(done: Callable[[], bool], limit: float, failure: str) -> None:
    """Poll the store until `done`; an OrchError naming `failure` at the deadline."""
    from reconciler.adapters.deadline import wait_until

    wait_until(
        done,
        limit,
        interval=POLL_SECONDS,
        failure=lambda: OrchError(f"{failure} within {limit:g}s"),
    )
