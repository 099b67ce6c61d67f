"""Workspaces: a git worktree per agent, with real git, real tmux and the real controller."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, wait_until
from tests.integration.test_guards import git

pytestmark = pytest.mark.tmux


@pytest.fixture
def repo(orch: Orch) -> Path:
    repo = orch.workdir / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    (repo / "README.md").write_text("# repo\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    return repo


def agent(name: str, branch: str, extra: str = "") -> str:
    return f"""\
apiVersion: orch/v1
kind: Agent
metadata: {{name: {name}}}
spec:
  command: {sys.executable} {FAKE_AGENT} --name {name}
  startup: {{after: 200ms}}
  workspace:
    worktree: {{repo: repo, branch: "{branch}", base: main}}
{extra}"""


def apply(orch: Orch, *docs: str, check: bool = True) -> Any:
    manifest = orch.workdir / "team.yaml"
    manifest.write_text("---\n".join(docs))
    return orch.run("apply", "-f", str(manifest), "--wait", check=check)


def pane_path(orch: Orch, name: str) -> str:
    return orch.tmux("display-message", "-p", "-t", f"={name}:", "#{pane_current_path}").stdout


def types(orch: Orch, name: str, text: str) -> None:
    orch.tmux("send-keys", "-t", f"={name}:", "-l", text)
    orch.tmux("send-keys", "-t", f"={name}:", "Enter")


def agent_pid(orch: Orch) -> str:
    return orch.tmux("display-message", "-p", "-t", "=executor:", "#{pane_pid}").stdout


def worktree(orch: Orch, name: str) -> Path:
    return orch.state_dir / "worktrees" / name


def test_two_agents_work_in_two_worktrees_of_one_repo(orch: Orch, repo: Path) -> None:
    apply(orch, agent("architect", "agent/architect"), agent("executor", "agent/executor"))

    for name in ("architect", "executor"):
        tree = worktree(orch, name)
        assert pane_path(orch, name).strip() == str(tree)
        assert git(tree, "branch", "--show-current").strip() == f"agent/{name}"
        assert (tree / "README.md").read_text() == "# repo\n"
    types(orch, "executor", "write notes.md executor was here")
    wait_until(lambda: (worktree(orch, "executor") / "notes.md").exists(), what="the write")
    assert not (worktree(orch, "architect") / "notes.md").exists()
    assert not (repo / "notes.md").exists()

    described = orch.run("describe", "agent", "executor").stdout
    assert "Worktree:" in described and str(worktree(orch, "executor")) in described
    assert "agent/executor (0 ahead, 0 behind main)" in described
    assert "1 files: notes.md" in described


def test_a_branch_two_agents_declare_is_refused_and_nothing_applied(orch: Orch, repo: Path) -> None:
    result = apply(orch, agent("one", "shared"), agent("two", "shared"), check=False)

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "branch shared" in result.stderr and "agent/one" in result.stderr
    assert not (orch.state_dir / "worktrees").exists()


def test_worktree_and_its_work_survive_a_crash_and_a_controller_restart(
    orch: Orch, repo: Path
) -> None:
    apply(orch, agent("executor", "agent/executor"))
    types(orch, "executor", "write work.txt precious")
    tree = worktree(orch, "executor")
    wait_until(lambda: (tree / "work.txt").exists(), what="the write")
    before = orch.agents()["executor"]["status"]["restarts"]

    types(orch, "executor", "crash 3")
    wait_until(
        lambda: orch.agents()["executor"]["status"]["restarts"] == before + 1, what="restart"
    )
    pid = agent_pid(orch)
    controller = int((orch.state_dir / "controller.pid").read_text())
    os.kill(controller, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(controller), what="controller gone")
    apply(orch, agent("executor", "agent/executor"))  # a new controller adopts the agent

    assert (tree / "work.txt").read_text().startswith("precious")
    assert pane_path(orch, "executor").strip() == str(tree)
    assert agent_pid(orch) == pid


def test_delete_removes_a_clean_worktree_and_keeps_a_dirty_one(orch: Orch, repo: Path) -> None:
    apply(orch, agent("clean", "agent/clean"), agent("dirty", "agent/dirty"))
    types(orch, "dirty", "write unsaved.txt draft")
    wait_until(lambda: (worktree(orch, "dirty") / "unsaved.txt").exists(), what="the write")

    orch.run("delete", "agent", "clean")
    orch.run("delete", "agent", "dirty")

    wait_until(lambda: not worktree(orch, "clean").exists(), what="clean worktree removed")
    kept = wait_until(
        lambda: [
            e
            for e in orch.json("events", "--for", "agent/dirty")["items"]
            if e["reason"] == "WorktreeKept"
        ],
        what="a WorktreeKept warning",
    )
    assert (
        str(worktree(orch, "dirty")) in kept[0]["message"] and "unsaved.txt" in kept[0]["message"]
    )
    assert (worktree(orch, "dirty") / "unsaved.txt").exists()
    assert "agent/clean" not in git(repo, "worktree", "list")


def text_of(path: Path) -> str | None:
    """A file's text, or None while it does not exist (a restore may be rewriting it)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def test_a_guard_restores_inside_a_worktree(orch: Orch, repo: Path) -> None:
    guard = "  guards:\n    - protect: ['tests/**']\n      action: restore\n"
    apply(orch, agent("executor", "agent/executor", guard))
    tree = worktree(orch, "executor")

    types(orch, "executor", "write tests/test_a.py def test_a(): pass")

    wait_until(
        lambda: (
            text_of(tree / "tests" / "test_a.py") == "def test_a():\n    assert True\n"
            and any(
                e["reason"] == "ProtectedFileRestored"
                for e in orch.json("events", "--for", "agent/executor")["items"]
            )
        ),
        timeout=20,
        what="the protected file restored in the worktree",
    )
    assert (repo / "tests" / "test_a.py").read_text() == "def test_a():\n    assert True\n"
