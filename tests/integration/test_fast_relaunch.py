"""A pidfd death is handled on its own, before the full pass: only that agent is planned."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.api.status import AgentState
from reconciler.controller.apply import apply_files
from reconciler.controller.loop import Controller
from tests.conftest import Orch
from tests.helpers import agent_yaml, wait_until

pytestmark = pytest.mark.tmux


def idle_agent(name: str) -> str:
    return agent_yaml(name, "sleep 100000", startup="{after: 0s}")


@pytest.fixture
def controller(orch: Orch) -> Iterator[Controller]:
    """An in-process controller on the test's installation (no background one is started)."""
    path = orch.workdir / "team.yaml"
    path.write_text("---\n".join([idle_agent("victim"), idle_agent("bystander")]))
    ctl = Controller(orch.state_dir, orch.socket)
    apply_files(ctl.store, [str(path)])
    yield ctl
    ctl.store.close()


def running(ctl: Controller, *names: str) -> bool:
    ctl.run_pass()
    records = ctl.store.agent_records()
    return all(n in records and records[n].state is AgentState.RUNNING for n in names)


def test_exited_agent_to_starting_without_a_full_pass(
    controller: Controller, tmp_path: Path
) -> None:
    wait_until(lambda: running(controller, "victim", "bystander"), what="both agents Running")
    before = controller.store.agent_records()
    pid = before["victim"].pid
    assert pid is not None
    controller.guards.check = None  # type: ignore[assignment]  # the fast path must not call it
    controller.runner.run_pass = None  # type: ignore[assignment]  # nor the playbook runner
    controller.tmux.observe = None  # type: ignore[method-assign, assignment]  # the pidfd said it: no listing
    os.kill(pid, signal.SIGKILL)

    result = controller.run_exits({"victim": pid})

    after = controller.store.agent_records()
    assert after["victim"].state is AgentState.STARTING
    assert after["victim"].launch_id != before["victim"].launch_id
    assert after["victim"].restarts == before["victim"].restarts + 1
    assert after["bystander"] == before["bystander"]  # not planned, not rewritten
    assert set(result.pids.values()) <= {"victim"}
