"""Operating verbs end to end: restart, stop, start, answer, controller status and stop."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.conftest import Orch
from tests.helpers import wait_until
from tests.integration.test_core import agent_doc, pane_pid, state, write_manifest

pytestmark = pytest.mark.tmux


def started(orch: Orch, *names: str) -> None:
    path = write_manifest(orch, *(agent_doc(n) for n in names))
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")


def controller_pid(orch: Orch) -> int:
    return int((orch.state_dir / "controller.pid").read_text())


def test_restart_is_manual_not_a_crash_and_resets_backoff(orch: Orch) -> None:
    started(orch, "worker")
    before = pane_pid(orch, "worker")
    out = orch.run("restart", "agent", "worker")
    assert out.stdout.strip() == "agent/worker restarted"
    wait_until(lambda: state(orch, "worker") == "Running", what="Running again")
    assert pane_pid(orch, "worker") != before
    status = orch.agents()["worker"]["status"]
    assert status["restarts"] == 0 and status["manualRestarts"] == 1
    reasons = [e["reason"] for e in orch.json("events", "--for", "agent/worker")["items"]]
    assert "Restarted" in reasons
    # the kind/name form works too
    orch.run("restart", "agent/worker")
    assert orch.agents()["worker"]["status"]["manualRestarts"] == 2


def test_stop_holds_across_controller_kill_and_apply_until_start(orch: Orch) -> None:
    started(orch, "worker")
    assert orch.run("stop", "agent", "worker").stdout.strip() == "agent/worker stopped"
    assert orch.tmux("has-session", "-t", "=worker").returncode != 0
    status = orch.agents()["worker"]["status"]
    assert status["state"] == "Stopped" and status["reason"] == "StoppedByUser"
    assert "via orch stop" in status["message"]
    assert "stopped by" in orch.run("describe", "agent", "worker").stdout
    os.kill(controller_pid(orch), signal.SIGKILL)
    path = write_manifest(orch, agent_doc("worker", "  env: {EDITED: '1'}\n"))
    orch.run("apply", "-f", str(path))  # starts a new controller with a changed spec
    wait_until(lambda: orch.run("controller", "status", check=False).returncode == 0)
    orch.run("get", "agents")  # one more pass has certainly run by the time we look again
    assert state(orch, "worker") == "Stopped"
    assert orch.tmux("has-session", "-t", "=worker").returncode != 0
    assert orch.run("start", "agent", "worker").stdout.strip() == "agent/worker started"
    wait_until(lambda: state(orch, "worker") == "Running", what="Running after start")


def test_answer_moves_an_agent_out_of_awaiting_human(orch: Orch) -> None:
    started(orch, "worker")
    refused = orch.run("answer", "worker", "y", check=False)
    assert refused.returncode == 1 and "no prompt waiting" in refused.stderr
    orch.run("send", "worker", "ask")
    wait_until(lambda: state(orch, "worker") == "AwaitingHuman", what="AwaitingHuman")
    out = orch.run("answer", "worker", "y")
    assert out.stdout.strip() == "agent/worker answered 'y'"
    wait_until(lambda: state(orch, "worker") == "Running", what="Running after the answer")
    screen = orch.tmux("capture-pane", "-p", "-t", "=worker:").stdout
    assert "[y/N] y" in screen or "received: y" in screen or "proceeding" in screen.lower()


def test_controller_status_and_stop_leave_agents_running(orch: Orch) -> None:
    started(orch, "worker")
    status = orch.run("controller", "status")
    assert f"pid {controller_pid(orch)}" in status.stdout
    agent_pid = pane_pid(orch, "worker")
    out = orch.run("controller", "stop")
    assert "controller stopped" in out.stdout
    down = orch.run("controller", "status", check=False)
    assert down.returncode == 3 and "no controller runs" in down.stderr
    assert pane_pid(orch, "worker") == agent_pid
    warned = orch.run("get", "agents")
    assert "no controller runs" in warned.stderr


def test_delete_then_controller_stop_leaves_nothing_of_the_installation_running(
    orch: Orch,
) -> None:
    started(orch, "worker")
    path = write_manifest(orch, agent_doc("worker"))

    def running() -> list[str]:  # every process marked with this state dir
        return [
            " ".join(p.info["cmdline"] or [])
            for p in psutil.process_iter(["cmdline"])
            if str(orch.state_dir) in " ".join(p.info["cmdline"] or [])
        ]

    wait_until(running, what="the installation's processes")
    orch.run("delete", "-f", str(path))
    out = orch.run("controller", "stop").stdout
    assert "log writer stopped" in out
    wait_until(lambda: not running(), what="nothing left running")


def test_read_only_commands_never_create_a_state_dir(orch: Orch) -> None:
    for args in (("get", "agents"), ("describe", "agent", "x"), ("events",), ("logs", "x")):
        proc = orch.run(*args, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and "no orch state" in proc.stderr
    assert not orch.state_dir.exists()


def test_send_to_an_agent_that_will_never_run_again_is_refused(orch: Orch) -> None:
    started(orch, "worker")
    orch.run("stop", "agent", "worker")
    refused = orch.run("send", "worker", "hello", check=False)
    assert refused.returncode == 1
    assert "will not run again" in refused.stderr and refused.stderr.count("\n") == 1


def test_delete_warns_that_the_file_still_declares_the_agent(orch: Orch) -> None:
    started(orch, "worker")
    out = orch.run("delete", "agent", "worker")
    assert out.stdout.strip() == "agent/worker deleted"
    assert "still declares agent/worker" in out.stderr and "brings it back" in out.stderr


def test_describe_is_complete_and_guards_outside_git_say_so(orch: Orch) -> None:
    extra = """\
  stale: {after: 30m, action: nudge, nudge: "go on"}
  rateLimit: {cooldown: 15m, account: team}
  talksTo: [architect]
  prompts:
    - {match: "Proceed\\\\?", answer: "y"}
  guards:
    - protect: ["tests/**"]
      action: alert
"""
    path = write_manifest(orch, agent_doc("worker", extra))
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")

    def inactive() -> bool:
        conditions = orch.agents()["worker"]["status"]["conditions"]
        return any(c["type"] == "GuardInactive" and c["status"] == "True" for c in conditions)

    wait_until(inactive, what="GuardInactive")
    text = orch.run("describe", "agent", "worker").stdout
    assert "<command>" not in text and "Restart Command:" in text
    for needle in ("Stale:", "Rate Limit:", "Talks To:", "architect", "Prompts:", "'y'"):
        assert needle in text, needle
    assert "Guards:" in text and "alert: tests/**" in text
    assert "not in a git repository" in text and "running: alive for" in text
    reasons = [e["reason"] for e in orch.json("events", "--for", "agent/worker")["items"]]
    assert "GuardInactive" in reasons


def test_live_edits_are_events(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("worker"))
    orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")
    path.write_text("apiVersion: orch/v1\nkind: Agent\nmetadata: {name: worker}\nspec: {}\n")

    def reasons() -> list[str]:
        return [e["reason"] for e in orch.json("events")["items"]]

    wait_until(lambda: "InvalidManifest" in reasons(), what="the rejected edit")
    path.write_text(agent_doc("worker", "  env: {A: '1'}\n"))
    wait_until(lambda: "ManifestValid" in reasons(), what="valid again")
