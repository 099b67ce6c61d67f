"""The declarative core end to end: the real CLI, a real controller, real tmux, fake agents."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, agent_yaml, processes_with_env, wait_until

pytestmark = pytest.mark.tmux


def agent_doc(name: str, extra: str = "", command: str = "") -> str:
    command = command or f"{sys.executable} {FAKE_AGENT} --name {name}"
    return agent_yaml(name, command, extra, startup="{after: 300ms}")


def write_manifest(orch: Orch, *docs: str, name: str = "team.yaml") -> Path:
    path = orch.workdir / name
    path.write_text("---\n".join(docs))
    return path


def state(orch: Orch, name: str) -> str | None:
    item = orch.agents().get(name)
    return item["status"]["state"] if item else None


def running(orch: Orch, *names: str) -> bool:
    agents = orch.agents()
    return all(n in agents and agents[n]["status"]["state"] == "Running" for n in names)


def pane_pid(orch: Orch, name: str) -> int | None:
    out = orch.tmux("list-panes", "-t", f"={name}", "-F", "#{pane_pid}").stdout.strip()
    return int(out) if out else None


def agent_process(orch: Orch, name: str) -> psutil.Process:
    """The fake agent itself: the child of the pane's wrapper shell."""
    pid = wait_until(lambda: pane_pid(orch, name), what=f"{name}'s pane")
    children = wait_until(lambda: psutil.Process(pid).children(), what=f"{name}'s process")
    return children[0]


def test_apply_brings_agents_to_running_and_get_json_matches_contract(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("architect"), agent_doc("executor"))
    out = orch.run("apply", "-f", str(path), "--wait", "--timeout", "30s")
    assert out.stdout.splitlines() == ["agent/architect created", "agent/executor created"]
    document = orch.json("get", "agents")
    assert document["apiVersion"] == "orch/v1" and document["kind"] == "List"
    item = document["items"][0]
    assert item["metadata"]["name"] == "architect"
    assert item["spec"]["command"].endswith("--name architect")
    status = item["status"]
    assert status["state"] == "Running" and status["restarts"] == 0
    assert {"reason", "message", "since"} <= set(status)
    table = orch.run("get", "agents").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "STATE", "RESTARTS"]
    assert (
        "FAKE AGENT READY architect" in orch.tmux("capture-pane", "-p", "-t", "=architect:").stdout
    )
    again = orch.run("apply", "-f", str(path))
    assert again.stdout.splitlines() == ["agent/architect unchanged", "agent/executor unchanged"]


def test_killed_session_is_restarted_and_counted(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    old = pane_pid(orch, "executor")
    orch.tmux("kill-session", "-t", "=executor")
    wait_until(lambda: pane_pid(orch, "executor") not in (None, old), what="a new session")
    wait_until(lambda: orch.agents()["executor"]["status"]["restarts"] == 1, what="restart count")
    wait_until(lambda: running(orch, "executor"), what="Running again")


def test_killed_agent_process_is_restarted_with_its_exit_code(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    victim = agent_process(orch, "executor")
    victim.send_signal(signal.SIGKILL)
    wait_until(lambda: orch.agents()["executor"]["status"]["restarts"] == 1, what="restart")
    assert agent_process(orch, "executor").pid != victim.pid
    status = orch.agents()["executor"]["status"]
    assert status["exitCode"] == 128 + signal.SIGKILL
    events = orch.json("events", "--for", "agent/executor")["items"]
    assert any(e["reason"] == "Restarted" and e["type"] == "Warning" for e in events)


def test_restart_policy_never_leaves_agent_stopped(orch: Orch) -> None:
    command = f"{sys.executable} {FAKE_AGENT} --exit-code 3 --exit-after 0.5"
    path = write_manifest(orch, agent_doc("oneshot", "  restartPolicy: Never\n", command))
    orch.run("apply", "-f", str(path))
    wait_until(lambda: state(orch, "oneshot") == "Stopped", what="Stopped")
    status = orch.agents()["oneshot"]["status"]
    assert status["exitCode"] == 3 and status["restarts"] == 0


def test_crash_loop_backs_off(orch: Orch) -> None:
    command = f"{sys.executable} {FAKE_AGENT} --exit-code 1 --exit-after 0.1"
    extra = "  crashLoop: {maxRestarts: 2, window: 1m, backoff: 30s}\n"
    path = write_manifest(orch, agent_doc("flaky", extra, command))
    orch.run("apply", "-f", str(path))
    wait_until(lambda: state(orch, "flaky") == "CrashLooping", timeout=20, what="CrashLooping")
    status = orch.agents()["flaky"]["status"]
    assert status["restarts"] == 2 and "backoffUntil" in status


def test_live_edit_adds_changes_and_removes_agents(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("architect"), agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    old_pid = pane_pid(orch, "executor")
    changed = agent_doc("executor", command=f"{sys.executable} {FAKE_AGENT} --name executor2")
    path.write_text("---\n".join([changed, agent_doc("reviewer")]))
    wait_until(lambda: "architect" not in orch.agents(), what="architect removed")
    wait_until(lambda: running(orch, "executor", "reviewer"), what="edit applied")
    assert pane_pid(orch, "executor") != old_pid
    assert orch.agents()["executor"]["status"]["restarts"] == 0
    assert orch.tmux("has-session", "-t", "=architect").returncode != 0


def test_broken_live_edit_changes_nothing_and_warns(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    pid = pane_pid(orch, "executor")
    path.write_text(agent_doc("executor") + "  bogusField: 1\n")

    def warned() -> list[dict[str, str]]:
        return [
            e
            for e in orch.json("events")["items"]
            if e["type"] == "Warning" and e["reason"] == "InvalidManifest"
        ]

    (event,) = wait_until(warned, what="a Warning event")
    assert f"{path}:" in event["message"] and "bogusField" in event["message"]
    assert pane_pid(orch, "executor") == pid and state(orch, "executor") == "Running"


def test_controller_kill_9_adopts_agents_without_restarting(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("architect"), agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    pids = {n: pane_pid(orch, n) for n in ("architect", "executor")}
    controller = int((orch.state_dir / "controller.pid").read_text())
    os.kill(controller, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(controller), what="controller gone")
    orch.run("apply", "-f", str(path))  # starts a new controller
    new_controller = wait_until(
        lambda: (
            (orch.state_dir / "controller.pid").exists()
            and int((orch.state_dir / "controller.pid").read_text())
        )
    )
    assert new_controller != controller
    victim = agent_process(orch, "architect")
    victim.kill()  # the new controller must be watching too
    wait_until(lambda: orch.agents()["architect"]["status"]["restarts"] == 1, what="restart")
    assert pane_pid(orch, "executor") == pids["executor"]
    assert orch.agents()["executor"]["status"]["restarts"] == 0


def test_two_applies_at_once_leave_a_consistent_store(orch: Orch) -> None:
    first = write_manifest(orch, agent_doc("a1"), agent_doc("a2"), name="one.yaml")
    second = write_manifest(orch, agent_doc("b1"), agent_doc("b2"), name="two.yaml")
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [
        threading.Thread(target=lambda p=p: results.append(orch.run("apply", "-f", str(p))))
        for p in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results)
    wait_until(lambda: running(orch, "a1", "a2", "b1", "b2"), what="all four Running")
    assert sorted(orch.agents()) == ["a1", "a2", "b1", "b2"]
    assert len(list(orch.state_dir.glob("controller.pid"))) == 1


def test_delete_stops_the_whole_process_tree(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    record = orch.workdir / "daemon-started"
    orch.tmux("send-keys", "-t", "=executor:", f"daemon {record}", "Enter")
    launched = wait_until(
        lambda: processes_with_env(
            "ORCH_AGENT_NAME", "executor", ORCH_STATE_DIR=str(orch.state_dir)
        ),
        what="agent processes",
    )
    assert launched
    out = orch.run("delete", "agent", "executor")
    assert out.stdout.strip() == "agent/executor deleted"
    wait_until(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in launched),
        what="every process gone",
    )
    assert orch.agents() == {}
    assert orch.run("get", "agents", "executor", check=False).returncode == 2


def test_errors_are_one_line_with_contract_exit_codes(orch: Orch) -> None:
    bad = write_manifest(orch, agent_doc("Bad_Name"))
    result = orch.run("apply", "-f", str(bad), check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"{bad}:" in result.stderr
    assert orch.agents() == {}
    missing = orch.run("describe", "agent", "nope", check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_diff_shows_changes_without_applying(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    proc = orch.run("diff", "-f", str(path), check=False)
    assert proc.returncode == 1 and "agent/executor created" in proc.stdout
    assert not orch.state_dir.exists()  # read-only: no state dir made


def test_describe_shows_status_conditions_and_events(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    text = orch.run("describe", "agent", "executor").stdout
    for heading in ("Name:", "State:", "Restarts:", "Conditions:", "Transitions:", "Events:"):
        assert heading in text
    assert "SessionReady" in text and "Running" in text


def test_delete_file_removes_its_agents_for_good(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("architect"), agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    out = orch.run("delete", "-f", str(path))
    assert sorted(out.stdout.splitlines()) == ["agent/architect deleted", "agent/executor deleted"]
    other = write_manifest(orch, agent_doc("reviewer"), name="other.yaml")
    orch.run("apply", "-f", str(other), "--wait")  # the controller has run passes since
    assert sorted(orch.agents()) == ["reviewer"]


def test_get_watch_prints_rows_as_they_change(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "get", "agents", "-w"],
        stdout=subprocess.PIPE,
        text=True,
        env=orch.env,
        cwd=orch.workdir,
    )
    lines: list[str] = []

    def read() -> None:
        assert watcher.stdout is not None
        lines.extend(watcher.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("Running" in line for line in lines), what="first listing")
        agent_process(orch, "executor").kill()
        wait_until(
            lambda: any(line.split()[:3] == ["executor", "Running", "1"] for line in lines),
            what="a row with the restart",
        )
        assert lines[0].split()[0] == "NAME"
    finally:
        watcher.kill()
        watcher.wait()


def test_attach_to_a_missing_agent_is_not_found(orch: Orch) -> None:
    result = orch.run("attach", "ghost", check=False)
    assert result.returncode == 2 and "ghost" in result.stderr


def test_events_watch_prints_new_events(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("executor"))
    orch.run("apply", "-f", str(path), "--wait")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "events", "-w", "--for", "agent/executor"],
        stdout=subprocess.PIPE,
        text=True,
        env=orch.env,
        cwd=orch.workdir,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watcher.stdout or []), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("Started" in line for line in lines), what="the listing")
        orch.tmux("kill-session", "-t", "=executor")
        wait_until(lambda: any("Restarted" in line for line in lines), what="a new event")
    finally:
        watcher.kill()
        watcher.wait()


def test_missing_tmux_is_one_line_naming_apt_get(orch: Orch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    orch.env["PATH"] = str(bin_dir)
    path = write_manifest(orch, agent_doc("executor"))
    result = orch.run("apply", "-f", str(path), check=False)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "apt-get install tmux" in result.stderr
    assert not orch.state_dir.exists()  # refused before anything was recorded
