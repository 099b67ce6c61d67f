"""One isolated orch installation per benchmark, and killing exactly what it started.

A sandbox is a fresh temp dir (state dir and workdir inside it) and a tmux socket named
`orch-bench-<random>`. On exit it kills, in order: the controller named in `controller.pid` (only
if that process belongs to this state dir), the tmux server on its socket (never the default
one), and every process left whose environment carries `ORCH_STATE_DIR=<this state dir>`; then
it removes its temp dir and the socket file tmux leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from reconciler.adapters.store import Store
from reconciler.api.status import AgentRecord, AgentState

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Sandbox:
    """A private state dir, workdir and tmux socket; `orch()` runs the CLI against them."""

    root: Path
    socket: str

    @property
    def state_dir(self) -> Path:
        """The installation's state dir (ORCH_STATE_DIR)."""
        return self.root / "state"

    @property
    def workdir(self) -> Path:
        """Where manifests and the agents' files live."""
        return self.root / "work"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every process this sandbox starts: it marks them as ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "ORCH_"))}
        env.update(
            ORCH_STATE_DIR=str(self.state_dir),
            ORCH_TMUX_SOCKET=self.socket,
            PYTHONPATH=str(REPO),
        )
        return env

    def orch(self, *args: str, timeout: float = 60.0) -> str:
        """Run `orch ARGS` (as `python -m reconciler`); return stdout, raise on failure."""
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"orch {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def tmux(self, *args: str) -> str:
        """Run a tmux command on this sandbox's socket; return stdout, raise on failure."""
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return proc.stdout

    def controller_pid(self) -> int | None:
        """The pid the running controller wrote, if any."""
        try:
            return int((self.state_dir / "controller.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def tmux_server_pid(self) -> int:
        """The pid of this sandbox's tmux server."""
        return int(self.tmux("display-message", "-p", "#{pid}").strip())

    def pane_pid(self, agent: str) -> int:
        """The pid of the agent's pane process (the /bin/sh running its command)."""
        return int(self.tmux("list-panes", "-t", f"={agent}", "-F", "#{pane_pid}").split()[0])


class StoreReader:
    """Reads agent records straight from the store: far cheaper than a CLI call per poll."""

    def __init__(self, state_dir: Path) -> None:
        self._store = Store(state_dir)

    def record(self, agent: str) -> AgentRecord | None:
        """The agent's record, if the controller wrote one."""
        return self._store.agent_record(agent)

    def running(self, *agents: str) -> bool:
        """Whether every one of `agents` is Running."""
        records = self._store.agent_records()
        return all(a in records and records[a].state is AgentState.RUNNING for a in agents)

    def running_since(self, agent: str, previous: float) -> bool:
        """Whether `agent` is Running in a launch planned after `previous` (epoch seconds).

        A pass that launches commits only after the new process may already have recorded its
        start, so until then the record of the launch before (still Running) must not count.
        """
        record = self._store.agent_record(agent)
        return (
            record is not None
            and record.state is AgentState.RUNNING
            and record.started_at is not None
            and record.started_at > previous
        )

    def close(self) -> None:
        """Close the store connection."""
        self._store.close()


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox, torn down (every process it started killed) however the block ends."""
    # Resolved: the controller and executor write ORCH_STATE_DIR as a resolved path.
    root = Path(tempfile.mkdtemp(prefix="orch-bench-")).resolve()
    box = Sandbox(root, f"orch-bench-{secrets.token_hex(5)}")
    box.state_dir.mkdir(mode=0o700)
    box.workdir.mkdir()
    try:
        yield box
    finally:
        teardown(box)
        shutil.rmtree(root, ignore_errors=True)


def teardown(box: Sandbox) -> None:
    """Kill the sandbox's controller, its tmux server and any process marked with its state dir."""
    pid = box.controller_pid()
    if pid is not None and _belongs_to(pid, box.state_dir):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(
        ["tmux", "-L", box.socket, "kill-server"], capture_output=True, timeout=10, check=False
    )
    for proc in _marked_processes(box.state_dir):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _remove_socket_file(box.socket)


def _remove_socket_file(socket: str) -> None:
    """Remove the socket file tmux 3.3a leaves behind after kill-server, once nothing answers."""
    try:
        probe = subprocess.run(
            ["tmux", "-L", socket, "list-sessions"], capture_output=True, timeout=10, check=False
        )
    except subprocess.TimeoutExpired:
        return  # a server still busy on it (a thousand sessions going): leave it be
    if probe.returncode == 0:
        return  # a server still answers on it: leave it be
    folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    path = folder / socket
    if path.is_socket():
        path.unlink(missing_ok=True)


def _belongs_to(pid: int, state_dir: Path) -> bool:
    """Whether `pid` is a process of this state dir (guards against a reused pid)."""
    try:
        return psutil.Process(pid).environ().get("ORCH_STATE_DIR") == str(state_dir)
    except psutil.Error:
        return False


def _marked_processes(state_dir: Path) -> list[psutil.Process]:
    """Processes other than this one whose environment has ORCH_STATE_DIR=<state_dir>."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.environ().get("ORCH_STATE_DIR") == str(state_dir):
                found.append(proc)
    return found
