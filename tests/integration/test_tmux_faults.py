"""tmux under faults: a server that stops answering is not hammered and its agents are not
taken for dead; a server whose socket file was deleted is neither orphaned nor doubled."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest

from reconciler.adapters.tmuxserver import socket_path
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


def servers(orch: Orch) -> list[int]:
    """Live tmux servers of this installation's socket, found without asking tmux."""
    return [
        process.pid
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "tmux: server"
        and any(
            a == "-L" and b == orch.socket
            for a, b in itertools.pairwise(process.info["cmdline"] or [])
        )
    ]


def test_a_deleted_socket_is_made_again_and_no_agent_runs_twice(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("a"))
    orch.run("apply", "-f", str(path), "--wait")
    pane, server, controller = pane_pid(orch, "a"), server_pid(orch), controller_pid(orch)
    socket_path(orch.socket).unlink()
    wait_until(lambda: "TmuxSocketRemade" in reasons(orch), what="the socket made again")
    assert socket_path(orch.socket).exists() and servers(orch) == [server]
    assert pane_pid(orch, "a") == pane and restarts(orch) == {"a": 0}, "a started twice"
    assert controller_pid(orch) == controller
    # Deleting everything and stopping the controller leaves no tmux server behind.
    orch.run("delete", "-f", str(path))
    orch.run("controller", "stop")
    wait_until(lambda: servers(orch) == [], what="no tmux server left")


def test_a_controller_started_after_the_socket_was_deleted_finds_the_server(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("a"))
    orch.run("apply", "-f", str(path), "--wait")
    orch.run("controller", "stop")
    pane, server = pane_pid(orch, "a"), server_pid(orch)
    socket_path(orch.socket).unlink()
    orch.run("apply", "-f", str(path), "--wait")  # starts a new controller
    wait_until(lambda: socket_path(orch.socket).exists(), what="the socket made again")
    wait_until(lambda: running(orch, "a"), what="a Running")
    assert servers(orch) == [server], "a second server was started beside the first"
    assert pane_pid(orch, "a") == pane and restarts(orch) == {"a": 0}
