"""An in-memory tmux with the adapter's interface, for wiring tests of the controller.

Sessions are records, not processes: a test puts text on a session's screen (`show`), ends it
(`crash`), and reads what the controller typed into it (`typed`). It answers the adapter's calls
as real tmux does, errors included; tests/integration/test_tmux_contract.py holds both to the
same contract, so the fake cannot drift from the real thing unnoticed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.tmux import SessionExists, Tmux, _Command, _Result
from reconciler.api.errors import InvalidInput, NotFound
from reconciler.api.keys import check_key
from reconciler.api.observation import PaneObservation

#: Fake pids start above Linux's pid_max, so no real process is ever taken for an agent.
FIRST_PID = 5_000_000


@dataclass
class FakeSession:
    """One session: what was started in it, what its screen shows, what it was sent."""

    name: str
    pane_id: str
    pid: int
    created: int
    script: str
    workdir: str
    env: dict[str, str]
    launch_id: str
    installation: str
    screen: str = ""
    activity: int = 0
    attached: bool = False
    typed: list[str] = field(default_factory=list)  # pastes and literal text, keys as <Key>


class FakeTmux(Tmux):
    """tmux in memory, on a clock the test moves (`activity` and `created` read it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__("fake-tmux-never-run")
        self.clock = clock
        self.sessions: dict[str, FakeSession] = {}
        self.started: list[str] = []  # names of every session started, in order
        self._serial = 0

    # -- the adapter's interface -------------------------------------------------------------

    def observe(self) -> dict[str, PaneObservation]:
        return {
            name: PaneObservation(
                name,
                s.pane_id,
                s.pid,
                False,  # remain-on-exit is off: a pane whose process ended is gone
                s.activity,
                s.created,
                s.launch_id,
                s.attached,
                s.installation,
                s.screen.count("\n"),
            )
            for name, s in self.sessions.items()
        }

    def start(
        self,
        name: str,
        script: str,
        workdir: str,
        env: Mapping[str, str],
        width: int = 200,
        height: int = 50,
        launch_id: str = "",
        pipe_command: str = "",
        env_dir: Path | None = None,
        replace: bool = False,
        installation: str = "",
    ) -> PaneObservation:
        if not os.path.isdir(workdir):
            raise NotFound(f"workdir {workdir} does not exist")
        if name in self.sessions and not replace:
            raise SessionExists(f"tmux session {name} already exists")
        self._serial += 1
        now = int(self.clock())
        self.sessions[name] = FakeSession(
            name,
            f"%{self._serial}",
            FIRST_PID + self._serial,
            now,
            script,
            workdir,
            dict(env),
            launch_id,
            installation,
            activity=now,
        )
        self.started.append(name)
        return self.observe()[name]

    def kill_session(self, name: str) -> None:
        self.sessions.pop(name, None)

    def session_exists(self, name: str) -> bool:
        return name in self.sessions

    def kill_server_if_empty(self) -> bool:
        return not self.sessions

    def capture_many(self, names: Iterable[str]) -> dict[str, str]:
        return {name: self.sessions[name].screen for name in names if name in self.sessions}

    def paste(self, name: str, text: str) -> None:
        if text:
            self._session(name).typed.append(text)

    def send_keys(self, name: str, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                check_key(key)
            except ValueError as error:
                raise InvalidInput(str(error)) from None
        if keys:
            self._session(name).typed.extend(f"<{key}>" for key in keys)

    def send_literal(self, name: str, text: str) -> None:
        self._session(name).typed.append(text)

    def _run(self, *commands: _Command, stdin: bytes = b"") -> _Result:
        raise AssertionError(f"FakeTmux never runs tmux: {commands}")

    # -- what a test does to it --------------------------------------------------------------

    def show(self, name: str, text: str) -> None:
        """The agent prints: its screen is now `text`, with output at this second."""
        session = self._session(name)
        session.screen = text
        session.activity = int(self.clock())

    def crash(self, name: str) -> None:
        """The agent's process ends: with remain-on-exit off, its session goes with it."""
        del self.sessions[name]

    def typed(self, name: str) -> list[str]:
        """What the controller typed into session NAME (pastes, literal text, <Key>s)."""
        return list(self._session(name).typed)

    def _session(self, name: str) -> FakeSession:
        try:
            return self.sessions[name]
        except KeyError:
            raise NotFound(f"tmux session {name} not found") from None
