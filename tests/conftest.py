"""Fixtures shared by every test: an isolated state dir and tmux socket, and the orch CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.store import Store
from reconciler.adapters.tmux import Tmux
from reconciler.cli.main import main as cli_main
from tests.helpers import (
    DEADLINE_FACTOR,
    SOCKET_PREFIX,
    kill_marked,
    kill_test_processes,
    kill_tmux_server,
    sweep_session,
)

REPO = Path(__file__).resolve().parent.parent


#: The test session's id, made by the main pytest process and inherited by its xdist workers;
#: every private tmux socket of the session carries it (see `private_socket`).
SESSION_MARK = "ORCH_TEST_SESSION"


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads its limit
def pytest_configure(config: pytest.Config) -> None:
    """The main process names the session afresh (never inherited from an enclosing session);
    each test's time limit scales with the deadlines inside it (ORCH_TEST_DEADLINE_FACTOR)."""
    if not hasattr(config, "workerinput"):
        os.environ[SESSION_MARK] = uuid.uuid4().hex[:6]
    if getattr(config.option, "timeout", None):
        config.option.timeout = float(config.option.timeout) * DEADLINE_FACTOR


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The main process, once every worker is done, kills whatever tests left behind."""
    if hasattr(session.config, "workerinput"):
        return  # a worker ending early must not kill what the other workers' tests still use
    killed = sweep_session(os.environ[SESSION_MARK])
    if killed:
        print(f"\nsession cleanup killed what timed-out tests left: {', '.join(killed)}")


def private_socket() -> str:
    """A tmux socket name private to one test and marked with this session."""
    return f"{SOCKET_PREFIX}{os.environ[SESSION_MARK]}-{uuid.uuid4().hex[:10]}"


#: In-process CLI runs swap sys.stdout: one at a time.
_IN_PROCESS = threading.Lock()


@dataclass
class Orch:
    """One isolated orch installation: its own state dir and tmux socket, driven through the CLI."""

    state_dir: Path
    socket: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `orch ARGS` as a subprocess; with check, fail the test on a non-zero exit."""
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"orch {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        """Run an orch command with `-o json` and return the parsed document.

        Run by this process: the same CLI code, without a process start-up (a second each on a
        loaded machine), since most of these are polls. The CLI as a process is `run`'s.
        """
        out, err = io.StringIO(), io.StringIO()
        argv = [f"--state-dir={self.state_dir}", f"--socket={self.socket}", *args, "-o", "json"]
        with _IN_PROCESS, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_main(argv)
                code: object = 0
            except SystemExit as done:
                code = done.code
        if code not in (0, None):
            raise AssertionError(
                f"orch {' '.join(argv)} exited {code}\n{out.getvalue()}\n{err.getvalue()}"
            )
        return json.loads(out.getvalue())

    def agents(self) -> dict[str, dict[str, Any]]:
        """`orch get agents -o json`, keyed by agent name."""
        return {item["metadata"]["name"]: item for item in self.json("get", "agents")["items"]}

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a tmux command against this installation's private socket."""
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )


@pytest.fixture
def orch(tmp_path: Path) -> Iterator[Orch]:
    """An orch installation private to this test; everything it started is killed afterwards."""
    state_dir = tmp_path / "state"
    socket = private_socket()
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "ORCH_"))}
    env.update(
        ORCH_STATE_DIR=str(state_dir),
        ORCH_TMUX_SOCKET=socket,
        SHELL="/bin/sh",
        PYTHONPATH=str(REPO),
    )
    installation = Orch(state_dir=state_dir, socket=socket, workdir=workdir, env=env)
    try:
        yield installation
    finally:
        kill_test_processes(state_dir, socket)


#: Set in the environment of the tmux clients a `tmux` fixture starts, so its server, its panes and
#: any daemons they leave all carry it, and teardown can find exactly them.
TMUX_MARK = "ORCH_TEST_TMUX_SOCKET"


@pytest.fixture
def tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tmux]:
    """A Tmux adapter on a private socket; its server and all marked processes die afterwards."""
    socket = private_socket()
    monkeypatch.setenv(TMUX_MARK, socket)
    try:
        yield Tmux(socket)
    finally:
        kill_tmux_server(socket)
        kill_marked(TMUX_MARK, socket)


@pytest.fixture
def broken_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir whose store raises an unexpected error (RuntimeError: boom) on every read of
    objects: how the CLI's error boundary is driven to an internal error."""
    state = tmp_path / "state"
    Store(state).close()

    def broken(self: Store, kind: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Store, "objects", broken)
    return state
