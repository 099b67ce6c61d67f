"""Bookkeeping under faults: one broken object concerns only itself, a re-created agent is a new
object, and messages never outlive the agent they were queued for."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, received, wait_until
from tests.integration.test_core import agent_doc, pane_pid, running, write_manifest

pytestmark = pytest.mark.tmux


def condition(item: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in item["status"]["conditions"] if c["type"] == type_), None)


def controller_pid(orch: Orch) -> int:
    return int((orch.state_dir / "controller.pid").read_text())


@contextmanager
def paused_controller(orch: Orch) -> Iterator[None]:
    """The controller stopped (SIGSTOP) for the block: what happens in it is seen at once."""
    pid = controller_pid(orch)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def db(orch: Orch) -> sqlite3.Connection:
    return sqlite3.connect(orch.state_dir / "orch.db", timeout=30)


def test_an_unreadable_spec_marks_its_agent_only(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("bad"), agent_doc("good"))
    orch.run("apply", "-f", str(path), "--wait")
    controller = controller_pid(orch)
    bad_pid = pane_pid(orch, "bad")
    with db(orch) as conn:  # what an older orch might have stored: a field this one refuses
        conn.execute(
            "UPDATE objects SET document = json_set(document, '$.spec.oldField', 1),"
            " generation = generation + 1 WHERE name = 'bad'"
        )
    good = pane_pid(orch, "good")
    orch.tmux("kill-session", "-t", "=good")
    wait_until(lambda: pane_pid(orch, "good") not in (None, good), what="good restarted")
    wait_until(
        lambda: (c := condition(orch.agents()["bad"], "ReconcileError")) and c["status"] == "True",
        what="ReconcileError on bad",
    )
    agents = orch.agents()
    assert condition(agents["good"], "ReconcileError") is None
    assert "oldField" in condition(agents["bad"], "ReconcileError")["message"]  # type: ignore[index]
    assert pane_pid(orch, "bad") == bad_pid, "an unreadable spec must not stop its agent"
    log = (orch.state_dir / "controller.log").read_text()
    assert log.count("agent/bad: stored spec unreadable") == 1, "logged once, not every pass"
    path.write_text("---\n".join([agent_doc("bad"), agent_doc("good")]))
    orch.run("apply", "-f", str(path))
    wait_until(
        lambda: (c := condition(orch.agents()["bad"], "ReconcileError")) and c["status"] == "False",
        what="bad reconciled again",
    )
    assert controller_pid(orch) == controller


def test_an_unreadable_record_marks_its_agent_only(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("bad"), agent_doc("good"))
    orch.run("apply", "-f", str(path), "--wait")
    bad_pid = pane_pid(orch, "bad")
    with db(orch) as conn:
        conn.execute(
            "UPDATE agent_records SET record = '{\"state\": \"Dancing\"}' WHERE name='bad'"
        )
    good = pane_pid(orch, "good")
    orch.tmux("kill-session", "-t", "=good")
    wait_until(lambda: pane_pid(orch, "good") not in (None, good), what="good restarted")
    wait_until(lambda: running(orch, "good"), what="good Running")
    wait_until(  # good may be relaunched by the fast path before a full pass reads bad's record
        lambda: any(
            e["reason"] == "ReconcileError" and "Dancing" in e["message"]
            for e in orch.json("events", "--for", "agent/bad")["items"]
        ),
        what="bad's ReconcileError",
    )
    assert pane_pid(orch, "bad") == bad_pid, "an unreadable record must not restart its agent"


def test_an_unreadable_run_leaves_other_runs_going(orch: Orch) -> None:
    path = write_manifest(
        orch,
        agent_doc("a"),
        """\
apiVersion: orch/v1
kind: Playbook
metadata: {name: flow}
spec:
  steps:
    - {name: one, agent: a, prompt: "write one.txt", outputs: [one.txt]}
""",
    )
    orch.run("apply", "-f", str(path), "--wait")
    with paused_controller(orch):
        broken = orch.run("run", "flow").stdout.split()[0].removeprefix("run/")
        healthy = orch.run("run", "flow").stdout.split()[0].removeprefix("run/")
        with db(orch) as conn:
            conn.execute(
                "UPDATE runs SET spec = json_set(spec, '$.steps', 'not steps') WHERE name = ?",
                (broken,),
            )
    wait_until(
        lambda: orch.json("get", "runs", healthy)["status"]["state"] == "Running",
        what="the healthy run Running",
    )
    item = orch.json("get", "runs", broken)
    assert item["status"]["state"] == "Pending"
    events = orch.json("events", "--for", f"run/{broken}")["items"]
    assert any(e["reason"] == "ReconcileError" for e in events)


def test_delete_and_recreate_runs_the_new_spec(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("x"))
    orch.run("apply", "-f", str(path), "--wait")
    old_uid = orch.agents()["x"]["metadata"]["uid"]
    new = agent_doc("x", command=f"{sys.executable} {FAKE_AGENT} --name second")
    with paused_controller(orch):  # deleted and applied again before the controller looks
        with db(orch) as conn:
            conn.execute("DELETE FROM objects WHERE name = 'x'")
        path.write_text(new)
        orch.run("apply", "-f", str(path))
    wait_until(
        lambda: "FAKE AGENT READY second" in orch.tmux("capture-pane", "-p", "-t", "=x:").stdout,
        what="the new spec running",
    )
    item = orch.agents()["x"]
    assert item["metadata"]["uid"] != old_uid
    wait_until(lambda: running(orch, "x"), what="x Running")
    assert orch.agents()["x"]["status"]["restarts"] == 0


def test_a_message_for_a_deleted_agent_never_reaches_a_new_one(orch: Orch) -> None:
    record = orch.workdir / "x.jsonl"
    command = f"{sys.executable} {FAKE_AGENT} --name x --record {record}"
    path = write_manifest(orch, agent_doc("x", command=command))
    orch.run("apply", "-f", str(path), "--wait")
    with paused_controller(orch):
        orch.run("send", "x", "for the first x")
        with db(orch) as conn:
            conn.execute("DELETE FROM objects WHERE name = 'x'")
        path.write_text(agent_doc("x", command=command + " --slow-start 0"))
        orch.run("apply", "-f", str(path))
        orch.run("send", "x", "for the second x")
    wait_until(lambda: "for the second x" in received(record), timeout=30, what="delivery")
    assert received(record) == ["for the second x"]
    events = orch.json("events", "--for", "agent/x")["items"]
    assert any(e["reason"] == "MessagesDropped" for e in events)


def test_a_foreign_session_of_the_agents_name_is_neither_adopted_nor_started_over(
    orch: Orch,
) -> None:
    orch.tmux("new-session", "-d", "-s", "x", "sleep 600")
    foreign = pane_pid(orch, "x")
    path = write_manifest(orch, agent_doc("x"))
    orch.run("apply", "-f", str(path))
    wait_until(
        lambda: orch.agents()["x"]["status"]["reason"] == "ForeignSession", what="ForeignSession"
    )
    events = orch.json("events", "--for", "agent/x")["items"]
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["ForeignSession"]
    assert not any(e["reason"] == "Adopted" for e in events)
    assert pane_pid(orch, "x") == foreign
    orch.tmux("kill-session", "-t", "=x")
    wait_until(lambda: running(orch, "x"), what="started once the name is free")


def test_a_second_file_declaring_an_owned_agent_is_a_conflict(orch: Orch) -> None:
    first = write_manifest(orch, agent_doc("shared"), name="a.yaml")
    second = write_manifest(orch, agent_doc("shared"), agent_doc("other"), name="b.yaml")
    orch.run("apply", "-f", str(first), "--wait")
    proc = orch.run("apply", "-f", str(second), check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert str(first) in proc.stderr and str(second) in proc.stderr
    assert "other" not in orch.agents(), "a conflict changes nothing"
    taken = orch.run("apply", "-f", str(second), "--force-conflicts")
    assert "agent/other created" in taken.stdout
    orch.run("delete", "-f", str(first))
    assert "shared" in orch.agents(), "delete -f a.yaml must not delete what b.yaml manages"


def test_an_edit_saved_while_no_controller_runs_is_applied_when_one_starts(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("x"))
    orch.run("apply", "-f", str(path), "--wait")
    os.kill(controller_pid(orch), signal.SIGKILL)
    path.write_text(agent_doc("x", command=f"{sys.executable} {FAKE_AGENT} --name edited"))
    orch.run("get", "agents")
    (orch.state_dir / "controller.pid").unlink()
    orch.run("send", "x", "wake up")  # starts a controller without applying anything
    wait_until(
        lambda: "FAKE AGENT READY edited" in orch.tmux("capture-pane", "-p", "-t", "=x:").stdout,
        what="the edit applied",
    )


def test_a_dead_log_writer_is_restarted_with_an_event(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("x"))
    orch.run("apply", "-f", str(path), "--wait")

    def writers() -> list[int]:  # the installation's one writer (perf: one for all panes)
        return [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if "reconciler.adapters.logwriter" in (p.info["cmdline"] or [])
            and str(orch.state_dir) in (p.info["cmdline"] or [])
        ]

    (old,) = wait_until(writers, what="a log writer")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: writers() and writers() != [old], what="a new log writer")
    orch.tmux("send-keys", "-t", "=x:", "-l", "say after-the-restart")
    orch.tmux("send-keys", "-t", "=x:", "Enter")
    wait_until(lambda: "after-the-restart" in orch.run("logs", "x").stdout, what="logged again")
    events = orch.json("events", "--for", "agent/x")["items"]
    assert any(e["reason"] == "LogWriterRestarted" for e in events)


def test_a_locked_store_does_not_stop_supervision(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("x"))
    orch.run("apply", "-f", str(path), "--wait")
    holder = sqlite3.connect(orch.state_dir / "orch.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process keeps the store locked
    try:
        old = pane_pid(orch, "x")
        orch.tmux("kill-session", "-t", "=x")
        wait_until(lambda: pane_pid(orch, "x") not in (None, old), timeout=20, what="restarted")
        log = orch.state_dir / "controller.log"
        wait_until(lambda: "supervising from memory" in log.read_text(), what="the pass kept")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until(lambda: orch.agents()["x"]["status"]["restarts"] == 1, what="the restart saved")
    wait_until(lambda: running(orch, "x"), what="Running")
