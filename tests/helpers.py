"""Test helpers: waiting on conditions with deadlines, cleaning up only what a test started, and
planning one agent without tmux (the unit tests of the planner and its parts)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import pytest

from reconciler.adapters import deadline
from reconciler.api.localtime import local_datetime
from reconciler.api.manifest import Agent
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent, PlanContext
from reconciler.core.launch import launch_hash
from reconciler.core.planner import plan_agent
from reconciler.core.screen import classify

if TYPE_CHECKING:
    from tests.conftest import Orch

T = TypeVar("T")

FAKE_AGENT = Path(__file__).resolve().parent / "fakes" / "fake_agent.py"

#: CI machines are slow and noisy: deadlines scale with this factor.
DEADLINE_FACTOR = float(os.environ.get("ORCH_TEST_DEADLINE_FACTOR", "1"))


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test at the scaled deadline."""
    return deadline.wait_until(
        predicate,
        timeout * DEADLINE_FACTOR,
        interval=interval,
        failure=lambda: AssertionError(
            f"timed out after {timeout}s waiting for {what or predicate}"
        ),
    )


def time_limit(seconds: float) -> pytest.MarkDecorator:
    """pytest-timeout's limit for a test that needs more than the suite's, scaled like deadlines
    (for tests whose work is many controller restarts: each costs seconds on a loaded machine)."""
    return pytest.mark.timeout(seconds * DEADLINE_FACTOR)


def processes_with_env(key: str, value: str, **also: str) -> list[psutil.Process]:
    """Processes whose environment carries KEY=VALUE (and every pair of `also`): how a test finds
    exactly what it started. One read of each environment: a process may end between reads."""
    wanted = {key: value, **also}
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if all(env.get(k) == v for k, v in wanted.items()):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def kill_test_processes(state_dir: Path, socket_name: str) -> None:
    """Stop the controller, the tmux server and every agent process of one test installation."""
    pid_file = state_dir / "controller.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip() or 0)
            if pid and _is_our_controller(pid, state_dir):
                os.kill(pid, signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    kill_tmux_server(socket_name)
    kill_marked("ORCH_STATE_DIR", str(state_dir))


def kill_tmux_server(socket_name: str) -> None:
    """Kill the tmux server of one private socket and remove the socket file.

    tmux 3.3a leaves its socket file behind after kill-server.
    """
    subprocess.run(
        ["tmux", "-L", socket_name, "kill-server"], capture_output=True, check=False, timeout=10
    )
    (tmux_socket_dir() / socket_name).unlink(missing_ok=True)


def tmux_socket_dir() -> Path:
    """Where tmux keeps the socket files of `-L NAME` servers for this user."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"


#: Every tmux socket a test session creates is named `SOCKET_PREFIX<session>-<test>`, and every
#: process it starts carries the socket in its environment under one of SOCKET_MARKS (the CLI,
#: the controller, tmux servers and agents: ORCH_TMUX_SOCKET; clients of the `tmux` fixture:
#: ORCH_TEST_TMUX_SOCKET). That is how the session-end sweep finds exactly what this session
#: started, even of a test whose own teardown never ran.
SOCKET_PREFIX = "orch-test-"
SOCKET_MARKS = ("ORCH_TMUX_SOCKET", "ORCH_TEST_TMUX_SOCKET")


def sweep_session(session: str) -> list[str]:
    """Kill every tmux server and process left by test session `session`; what was killed.

    The safety net behind each test's own cleanup, for tests that pytest-timeout ended (its
    thread method ends an xdist worker with os._exit, so no finalizer of that worker runs).
    """
    prefix = f"{SOCKET_PREFIX}{session}-"
    killed = []
    for proc in psutil.process_iter():
        if proc.pid in (os.getpid(), os.getppid()):
            continue
        try:
            environ = proc.environ()
            if any(environ.get(key, "").startswith(prefix) for key in SOCKET_MARKS):
                proc.kill()
                killed.append(f"pid {proc.pid}")
        except (psutil.Error, OSError):
            continue
    for socket in tmux_socket_dir().glob(f"{prefix}*"):
        kill_tmux_server(socket.name)
        killed.append(f"tmux -L {socket.name}")
    return killed


def kill_marked(key: str, value: str) -> None:
    """Kill every process (but this one) whose environment carries KEY=VALUE."""
    for proc in processes_with_env(key, value):
        if proc.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                proc.kill()


def _is_our_controller(pid: int, state_dir: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        return str(state_dir) in " ".join(proc.cmdline()) or (
            proc.environ().get("ORCH_STATE_DIR") == str(state_dir)
        )
    except psutil.Error:
        return False


# -- planning one agent without tmux -------------------------------------------------------------

#: The planning tests' clock: 2026-07-01 10:00 UTC.
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp()


def desired_agent(**spec: Any) -> DesiredAgent:
    """The applied agent "executor", working in /work (its command `fake` unless `spec` says)."""
    document = {
        "apiVersion": "orch/v1",
        "kind": "Agent",
        "metadata": {"name": "executor"},
        "spec": {"command": "fake", "workdir": "/work", **spec},
    }
    return DesiredAgent(Agent.model_validate(document), 1)


def running_record(desired: DesiredAgent, **fields: Any) -> AgentRecord:
    """The record of `desired` Running since T0 in its current launch, changed by `fields`."""
    base = AgentRecord(
        name="executor",
        state=AgentState.RUNNING,
        since=T0,
        launch_id="executor-1",
        launch_hash=launch_hash(desired.agent),
        pid=100,
        started_at=T0,
        generation=1,
    )
    return replace(base, **fields)


def on_screen(
    screen: str, desired: DesiredAgent, now: float, attached: bool = False
) -> AgentObservation:
    """What the controller hands the planner for a live "executor" with `screen` in its pane at
    `now` (UTC): the pane, the screen and its verdict, classified once as the controller does."""
    pane = PaneObservation("executor", "%1", 100, False, 0, 0, attached=attached)
    verdict = classify(screen, desired.agent.spec, local_datetime(now, UTC), pane.cursor_y)
    return AgentObservation(pane, None, screen, verdict)


def plan_screen(
    desired: DesiredAgent,
    screen: str,
    recorded: AgentRecord,
    now: float,
    attached: bool = False,
    **ctx: Any,
) -> AgentPlan:
    """One planning step for a live "executor" showing `screen` (`ctx`: PlanContext fields)."""
    observed = on_screen(screen, desired, now, attached)
    return plan_agent("executor", desired, observed, recorded, PlanContext(now, UTC, **ctx))


# -- the fake agent under a real orch ------------------------------------------------------------


def agent_yaml(name: str, command: str, spec: str = "", *, startup: str | None = None) -> str:
    """One Agent document running `command`; `spec` is more indented spec lines, `startup` the
    flow mapping of spec.startup (None leaves it out)."""
    startup_line = f"  startup: {startup}\n" if startup else ""
    return f"""\
apiVersion: orch/v1
kind: Agent
metadata:
  name: {name}
spec:
  command: {command}
{startup_line}{spec}"""


def fake_agent_doc(
    workdir: Path,
    name: str,
    spec: str = "",
    *,
    flags: str = "",
    startup: str | None = "{after: 200ms}",
) -> str:
    """An Agent running the fake agent, which records each message it gets in
    `record_of(workdir, name)`."""
    command = f"{sys.executable} {FAKE_AGENT} --record {record_of(workdir, name)} {flags}".rstrip()
    return agent_yaml(name, command, spec, startup=startup)


def record_of(workdir: Path, name: str) -> Path:
    return workdir / f"{name}.jsonl"


def apply_agent(
    orch: Orch,
    spec: str = "",
    *,
    name: str = "executor",
    startup: str | None = "{after: 200ms}",
    wait: bool = True,
) -> Path:
    """Apply one fake agent from its own manifest <name>.yaml; returns its record."""
    manifest = orch.workdir / f"{name}.yaml"
    manifest.write_text(fake_agent_doc(orch.workdir, name, spec, startup=startup))
    orch.run("apply", "-f", str(manifest), *(["--wait"] if wait else []))
    return record_of(orch.workdir, name)


def received(record: Path) -> list[str]:
    """The messages the fake agent recorded, oldest first ([] before its first).

    A long message's line reaches the file in several writes: a line without its line feed yet
    is still being written, and is not read."""
    if not record.exists():
        return []
    whole = record.read_text().rpartition("\n")[0]
    return [json.loads(line)["message"] for line in whole.splitlines()]
