"""Test helpers: waiting on conditions with deadlines, cleaning up only what a test started, and
planning one agent without tmux (the unit tests of the planner and its parts)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

from reconciler.adapters import deadline
from reconciler.api.manifest import Agent
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, AgentState
from reconciler.core.agent_plan import AgentObservation, AgentPlan, DesiredAgent, PlanContext
from reconciler.core.planner import launch_hash, plan_agent

T = TypeVar("T")

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


def processes_with_env(key: str, value: str) -> list[psutil.Process]:
    """Processes whose environment carries KEY=VALUE: how a test finds exactly what it started."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(key) == value:
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
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket_name).unlink(
        missing_ok=True
    )


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


def on_screen(screen: str, attached: bool = False) -> AgentObservation:
    """What tmux shows of a live "executor" with `screen` in its pane."""
    pane = PaneObservation("executor", "%1", 100, False, 0, 0, attached=attached)
    return AgentObservation(pane, None, screen)


def plan_screen(
    desired: DesiredAgent,
    screen: str,
    recorded: AgentRecord,
    now: float,
    attached: bool = False,
    **ctx: Any,
) -> AgentPlan:
    """One planning step for a live "executor" showing `screen` (`ctx`: PlanContext fields)."""
    observed = on_screen(screen, attached)
    return plan_agent("executor", desired, observed, recorded, PlanContext(now, UTC, **ctx))
