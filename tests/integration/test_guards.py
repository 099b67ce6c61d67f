"""Guards and the service through the real controller: protected files restored, alerts raised."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, agent_yaml, fake_agent_doc, received, record_of, wait_until

pytestmark = pytest.mark.tmux


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"},
    ).stdout


@pytest.fixture
def repo(orch: Orch) -> Path:
    repo = orch.workdir / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    (repo / "SPRINT.md").write_text("# sprint\n")
    (repo / "src" / "app.py").write_text("print('v1')\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    return repo


def apply_guarded(orch: Orch, repo: Path, action: str) -> Path:
    """The fake agent "executor" working in `repo`, its tests and sprint protected; its record."""
    guards = f"""\
  workdir: repo
  guards:
    - protect: ["tests/**", "SPRINT.md"]
      action: {action}
"""
    manifest = orch.workdir / "team.yaml"
    manifest.write_text(fake_agent_doc(orch.workdir, "executor", guards))
    orch.run("apply", "-f", str(manifest), "--wait")
    return record_of(orch.workdir, "executor")


def agent_types(orch: Orch, text: str) -> None:
    orch.tmux("send-keys", "-t", "=executor:", "-l", text)
    orch.tmux("send-keys", "-t", "=executor:", "Enter")


def events(orch: Orch, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in orch.json("events", "--for", "agent/executor")["items"] if e["reason"] == reason
    ]


def test_protected_change_is_restored_and_kept_as_backup(orch: Orch, repo: Path) -> None:
    record = apply_guarded(orch, repo, "restore")
    agent_types(orch, "write src/app.py print('v2')")
    agent_types(orch, "write tests/test_a.py def test_a(): pass")
    agent_types(orch, "write tests/test_new.py cheat")
    original = "def test_a():\n    assert True\n"
    wait_until(lambda: (repo / "src" / "app.py").read_text() == "print('v2')", what="writes")
    wait_until(lambda: not (repo / "tests" / "test_new.py").exists(), what="new file removed")
    wait_until(lambda: (repo / "tests" / "test_a.py").read_text() == original, what="restored")

    def kept_in_backups() -> dict[str, str] | None:
        """What the restores' backups hold once both files are in them (the two may be restored
        by separate checks, whose events the next pass records)."""
        restored = events(orch, "ProtectedFileRestored")
        assert all(e["type"] == "Warning" for e in restored)
        backups = [Path(e["message"].rsplit(" ", 1)[-1]) for e in restored]
        kept = {p.name: p.read_text() for b in backups for p in b.rglob("*.py")}
        return kept if kept.keys() >= {"test_a.py", "test_new.py"} else None

    kept = wait_until(kept_in_backups, what="both files in the restores' backups")
    backups = [Path(e["message"].rsplit(" ", 1)[-1]) for e in events(orch, "ProtectedFileRestored")]
    assert (repo / "src" / "app.py").read_text() == "print('v2')"  # not protected: untouched
    assert kept["test_a.py"] == "def test_a(): pass" and kept["test_new.py"] == "cheat"
    assert str(backups[-1]) in orch.run("describe", "agent", "executor").stdout
    told = wait_until(
        lambda: [m for m in received(record) if m.startswith("orch: you changed")],
        what="the agent told",
    )
    assert "tests/**" in told[0] and any(str(b) in told[0] for b in backups)


def test_alert_only_reports(orch: Orch, repo: Path) -> None:
    apply_guarded(orch, repo, "alert")
    agent_types(orch, "write SPRINT.md # my sprint now")
    wait_until(lambda: events(orch, "ProtectedFileChanged"), what="the alert")
    assert (repo / "SPRINT.md").read_text() == "# my sprint now"

    def tripped() -> str | None:
        status = orch.agents()["executor"]["status"]
        return {c["type"]: c["status"] for c in status["conditions"]}.get("GuardTripped")

    # the event and the condition are recorded by the pass that takes the check's result
    wait_until(lambda: tripped() == "True", what="GuardTripped True")


def guarded_record(orch: Orch) -> Path:
    return orch.state_dir / "agents" / "executor"


def test_the_baseline_is_the_workdir_when_the_agent_starts(orch: Orch, repo: Path) -> None:
    """A person's uncommitted work on a protected file, made before the agent starts, is kept."""
    (repo / "SPRINT.md").write_text("# sprint, edited by the person\n")
    apply_guarded(orch, repo, "restore")
    baseline = wait_until(lambda: events(orch, "GuardBaseline"), what="the baseline")
    assert "2 protected files" in baseline[0]["message"]
    agent_types(orch, "write tests/test_a.py pass")
    wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore")
    assert (repo / "SPRINT.md").read_text() == "# sprint, edited by the person\n"


def test_a_change_made_as_the_agent_starts_is_not_taken_for_the_baseline(
    orch: Orch, repo: Path
) -> None:
    """The launch waits for the baseline: even the agent's first act counts as a change."""
    for n in range(1000):  # recording takes a while: long enough for an agent started at once
        (repo / "tests" / f"a{n:04}.py").write_text(f"# {n}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "many tests")
    manifest = orch.workdir / "team.yaml"
    command = f"echo cheat > tests/test_a.py; exec {sys.executable} {FAKE_AGENT}"
    spec = '  workdir: repo\n  guards:\n    - protect: ["tests/**"]\n'
    manifest.write_text(agent_yaml("executor", command, spec, startup="{after: 200ms}"))
    orch.run("apply", "-f", str(manifest), "--wait")
    wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore")
    assert (repo / "tests" / "test_a.py").read_text() == "def test_a():\n    assert True\n"


def test_a_committed_change_is_restored_and_named(orch: Orch, repo: Path) -> None:
    """The agent commits its change while no controller looks: still seen, against the baseline."""
    manifest_record = apply_guarded(orch, repo, "restore")
    wait_until(lambda: events(orch, "GuardBaseline"), what="the baseline")
    orch.run("controller", "stop")
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    git(repo, "commit", "-qam", "make it green")
    commit = git(repo, "rev-parse", "--short", "HEAD").strip()
    orch.run("apply", "-f", str(orch.workdir / "team.yaml"))  # unchanged: the same generation
    restored = wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore")
    assert f"tests/test_a.py (modified, committed in {commit}" in restored[0]["message"]
    assert (repo / "tests" / "test_a.py").read_text() == "def test_a():\n    assert True\n"
    status = orch.agents()["executor"]["status"]
    tripped = {c["type"]: c for c in status["conditions"]}["GuardTripped"]
    assert f"committed in {commit}" in tripped["message"]  # what was done, after it was undone
    assert manifest_record.parent.exists()


def test_a_deleted_git_folder_does_not_switch_guards_off(orch: Orch, repo: Path) -> None:
    apply_guarded(orch, repo, "restore")
    wait_until(lambda: events(orch, "GuardBaseline"), what="the baseline")
    orch.run("controller", "stop")
    shutil.rmtree(repo / ".git")
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    orch.run("apply", "-f", str(orch.workdir / "team.yaml"))
    restored = wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore")
    assert ".git removed" in restored[0]["message"]
    assert (repo / "tests" / "test_a.py").read_text() == "def test_a():\n    assert True\n"
    # A changed spec takes a new baseline, still without git: the guards stay on.
    manifest = orch.workdir / "team.yaml"
    manifest.write_text(manifest.read_text().replace("after: 200ms", "after: 300ms"))
    orch.run("apply", "-f", str(manifest))
    wait_until(lambda: len(events(orch, "GuardBaseline")) == 2, what="the new baseline")
    agent_types(orch, "write SPRINT.md mine")
    wait_until(lambda: len(events(orch, "ProtectedFileRestored")) == 2, what="a restore")
    assert (repo / "SPRINT.md").read_text() == "# sprint\n"
    assert not events(orch, "GuardInactive")


def test_guard_files_are_deleted_with_the_agent(orch: Orch, repo: Path) -> None:
    apply_guarded(orch, repo, "restore")
    agent_types(orch, "write SPRINT.md mine")
    wait_until(lambda: events(orch, "ProtectedFileRestored"), what="the restore")
    folder = guarded_record(orch)
    assert (folder / "guard" / "baseline.json").exists() and (folder / "backups").is_dir()
    orch.run("delete", "agent", "executor")
    wait_until(
        lambda: not (folder / "guard").exists() and not (folder / "backups").exists(),
        what="guard files removed",
    )


def test_service_install_writes_a_unit_that_spares_the_agents(orch: Orch, tmp_path: Path) -> None:
    orch.env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    out = orch.run("service", "install").stdout
    (unit,) = (tmp_path / "config" / "systemd" / "user").glob("orch-controller-*.service")
    text = unit.read_text()
    assert "KillMode=process" in text and "Restart=always" in text
    assert str(orch.state_dir) in text and orch.socket in text
    assert "systemctl --user enable --now" in out and "loginctl enable-linger" in out
    orch.run("service", "uninstall")
    assert not unit.exists()
    assert orch.run("service", "uninstall", check=False).returncode == 2
