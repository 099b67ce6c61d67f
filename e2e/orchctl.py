"""One isolated orch installation for one CLI: its own state dir, tmux socket and controller.

The harness drives orch only through its CLI (as a user would) and reads the state machine's
transitions from the store read-only, so short states (a CoolingDown of a few seconds) are not
missed between two polls. Teardown kills every process that carries this installation's state
dir in its environment (the controller, the panes and what they started: Gemini survives its
tmux server), by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Transition:
    id: int
    time: float
    source: str
    dest: str
    trigger: str
    reason: str
    message: str


def wait_for(cond: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll `cond` until it returns something truthy (returned) or `timeout` passes (None)."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= end:
            return None
        time.sleep(every)


class Orch:
    def __init__(self, orch_bin: Path, root: Path, socket: str, home: Path) -> None:
        self.bin = orch_bin
        self.root = root
        self.state = root / "state"
        self.socket = socket
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "TMUX"))}
        env.update(
            {
                "ORCH_STATE_DIR": str(self.state),
                "ORCH_TMUX_SOCKET": socket,
                "HOME": str(home),
                "PATH": f"{orch_bin.parent}:{env.get('PATH', '/usr/bin:/bin')}",
            }
        )
        self.env = env
        self.controller: subprocess.Popen[bytes] | None = None
        self.manifest_path = root / "manifest.yaml"

    # --- processes ------------------------------------------------------------------------
    def start_controller(self) -> None:
        """The controller in the foreground of a child we own (so we know its pid)."""
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(self.root / "controller.out", "ab")  # noqa: SIM115 - lives with the child
        self.controller = subprocess.Popen(
            [str(self.bin), "controller"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_for(lambda: (self.state / "controller.pid").exists(), 20):
            raise RuntimeError("the controller did not start (see controller.out)")

    def teardown(self) -> None:
        if self.controller and self.controller.poll() is None:
            self.controller.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.controller.wait(5)
        self.tmux("kill-server")
        marker = f"ORCH_STATE_DIR={self.state}".encode()
        for pid in _pids_with_env(marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.controller and self.controller.poll() is None:
            self.controller.kill()

    # --- the CLI ---------------------------------------------------------------------------
    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def apply(
        self, docs: list[dict[str, Any]], wait: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        # JSON is YAML: one document per object, no YAML library needed
        self.manifest_path.write_text("\n---\n".join(json.dumps(d, indent=1) for d in docs) + "\n")
        args = ["apply", "-f", str(self.manifest_path)]
        if wait is not None:
            args += ["--wait", "--timeout", f"{int(wait)}s"]
        return self.run(*args, timeout=(wait or 30) + 30)

    def send(self, agent: str, text: str) -> subprocess.CompletedProcess[str]:
        return self.run("send", agent, "-", stdin=text)

    def agent(self, name: str) -> dict[str, Any]:
        """`orch get agents NAME -o json` as a dict (the object, or the List's single item)."""
        done = self.run("get", "agents", name, "-o", "json", timeout=30)
        if done.returncode != 0:
            return {}
        doc = json.loads(done.stdout)
        if doc.get("kind") == "List":
            items = doc.get("items") or []
            return items[0] if items else {}
        return doc  # type: ignore[no-any-return]

    def status(self, name: str) -> dict[str, Any]:
        return self.agent(name).get("status") or {}

    def transitions(self, name: str, after: int = 0) -> list[Transition]:
        rows = self._rows(
            "SELECT id, time, source, dest, trigger, reason, message FROM transitions"
            " WHERE object = ? AND id > ? ORDER BY id",
            (f"agent/{name}", after),
        )
        return [Transition(*row) for row in rows]

    def events(self, name: str, after: int = 0) -> list[tuple[int, str, str, str]]:
        """(id, type, reason, message) of the agent's events after id `after`."""
        return self._rows(
            "SELECT id, type, reason, message FROM events WHERE object = ? AND id > ? ORDER BY id",
            (f"agent/{name}", after),
        )

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """Rows of a read-only query of the state dir's store; [] while it cannot be read."""
        db = self.state / "orch.db"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.Error:
            return []
        finally:
            con.close()

    def last_transition_id(self, name: str) -> int:
        found = self.transitions(name)
        return found[-1].id if found else 0

    def last_event_id(self, name: str) -> int:
        found = self.events(name)
        return found[-1][0] if found else 0

    # --- tmux (the human's side: look at the screen, kill the process) ---------------------
    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("TMUX")},
        )

    def screen(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", f"={name}:").stdout

    def keys(self, name: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", f"={name}:", *keys)

    def pane_pid(self, name: str) -> int | None:
        out = self.tmux("list-panes", "-t", f"={name}:", "-F", "#{pane_pid}").stdout.split()
        return int(out[0]) if out else None


def _pids_with_env(marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """All processes below `pid`, children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out
