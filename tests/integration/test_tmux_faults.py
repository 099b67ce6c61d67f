"""tmux under faults: a server that stops answering is not hammered and its agents are not
taken for dead; a server whose socket file was deleted is neither orphaned nor doubled."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import Orch
from tests.helpers import wait_until
from tests.integration.test_core import agent_doc, pane_pid, running, write_manifest
from tests.integration.test_faults import controller_pid

pytestmark = pytest.mark.tmux


def server_pid(orch: Orch) -> int:
    return int(orch.tmux("display-message", "-p", "#{pid}").stdout)


def events(orch: Orch) -> list[dict[str, Any]]:
    return list(orch.json("events")["items"])


def reasons(orch: Orch) -> list[str]:
    return [event["reason"] for event in events(orch)]


def restarts(orch: Orch) -> dict[str, int]:
    return {name: item["status"]["restarts"] for name, item in orch.agents().items()}


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process SIGSTOPped for the block (continued whatever happens)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_wedged_tmux_is_not_hammered_and_its_agents_are_not_restarted(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("a"), agent_doc("b"))
    orch.run("apply", "-f", str(path), "--wait")
    panes = {name: pane_pid(orch, name) for name in ("a", "b")}
    controller = controller_pid(orch)
    log = orch.state_dir / "controller.log"
    with stopped(server_pid(orch)):  # no tmux call from the test meanwhile: it would hang
        wait_until(
            lambda: "tmux still does not answer (try 3)" in log.read_text(),
            timeout=60,
            what="three failed tries of a wedged tmux",
        )
        assert reasons(orch).count("TmuxUnavailable") == 1, "one event, not one per try"
        assert "Traceback" not in log.read_text(), "a wedged tmux is no internal error"
        assert restarts(orch) == {"a": 0, "b": 0}
    wait_until(
        lambda: "TmuxAvailable" in reasons(orch), timeout=30, what="tmux seen answering again"
    )
    assert {name: pane_pid(orch, name) for name in ("a", "b")} == panes, "nothing restarted"
    assert restarts(orch) == {"a": 0, "b": 0} and controller_pid(orch) == controller
    orch.tmux("kill-session", "-t", "=b")  # supervision goes on as before
    wait_until(lambda: pane_pid(orch, "b") not in (None, panes["b"]), what="b restarted")
    wait_until(lambda: running(orch, "a", "b"), what="both Running")
