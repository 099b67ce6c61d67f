"""Guards against real git in temporary repositories: finding, backing up, restoring, watching."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.adapters.git import (
    FILES_NAME,
    Backup,
    GuardError,
    Violation,
    agent_message,
    event_message,
    find_violations,
    restore,
)
from reconciler.adapters.watchers import GuardWatcher
from tests.helpers import DEADLINE_FACTOR

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

RULES = [["tests/**", "SPRINT.md"]]
HEAD_FILES = {
    "tests/test_a.py": b"def test_a():\n    assert 1 + 1 == 2\n",
    "tests/test_b.py": b"def test_b():\n    assert True\n",
    "tests/data.bin": bytes(range(256)) * 4,
    "SPRINT.md": b"# Sprint\n- ship guards\n",
    "src/app.py": b"print('hello')\n",
    "README.md": b"readme\n",
}


@pytest.fixture(autouse=True)
def private_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the user's nor the system's git config is read or written."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        input=input,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def make_repo(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", HEAD_FILES)


def head(repo: Path, path: str) -> bytes:
    return git(repo, "show", f"HEAD:{path}")


def status(repo: Path) -> set[str]:
    """`git status --porcelain` lines of the repository."""
    return set(git(repo, "status", "--porcelain=v1", "--untracked-files=all").decode().splitlines())


def found(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.path, v.kind) for v in violations}


# -- finding -------------------------------------------------------------------------------------


def agent_edits(repo: Path) -> None:
    """What a misbehaving agent does: touches protected and unprotected files alike."""
    (repo / "tests/test_a.py").write_bytes(b"def test_a():\n    pass  # made green\n")
    (repo / "tests/test_b.py").unlink()
    (repo / "tests/test_new.py").write_bytes(b"def test_new(): ...\n")
    (repo / "tests/pkg").mkdir()
    (repo / "tests/pkg/test_deep.py").write_bytes(b"deep\n")
    (repo / "tests/data.bin").write_bytes(bytes(reversed(range(256))) * 4)
    (repo / "SPRINT.md").write_bytes(b"# Sprint\n- done, all of it\n")
    git(repo, "add", "SPRINT.md")  # staged
    (repo / "src/app.py").write_bytes(b"print('agent work')\n")  # not protected
    (repo / "notes.txt").write_bytes(b"agent notes\n")  # not protected


def test_find_violations_reports_exactly_the_protected_changes(repo: Path) -> None:
    agent_edits(repo)
    violations = find_violations(repo, RULES)
    assert found(violations) == {
        ("tests/test_a.py", "modified"),
        ("tests/test_b.py", "deleted"),
        ("tests/test_new.py", "added"),
        ("tests/pkg/test_deep.py", "added"),
        ("tests/data.bin", "modified"),
        ("SPRINT.md", "modified"),
    }
    assert {v.rule_index for v in violations} == {0}
    assert {v.pattern for v in violations if v.path == "SPRINT.md"} == {"SPRINT.md"}
    assert all(v.local_path == v.path for v in violations)


def test_a_clean_tree_has_no_violations(repo: Path) -> None:
    assert find_violations(repo, RULES) == []


def test_one_violation_per_rule_that_matches(repo: Path) -> None:
    (repo / "tests/test_a.py").write_text("changed\n")
    violations = find_violations(repo, [["src/**"], ["tests/**"], ["**/*.py"]])
    assert [(v.rule_index, v.pattern) for v in violations] == [(1, "tests/**"), (2, "**/*.py")]


def test_staged_new_files_and_renames_count(repo: Path) -> None:
    (repo / "tests/staged.py").write_text("staged\n")
    git(repo, "add", "tests/staged.py")
    git(repo, "mv", "tests/test_b.py", "tests/renamed.py")
    assert found(find_violations(repo, RULES)) == {
        ("tests/staged.py", "added"),
        ("tests/renamed.py", "added"),
        ("tests/test_b.py", "deleted"),
    }


def test_ignored_files_are_not_changes(repo: Path) -> None:
    (repo / ".gitignore").write_text("__pycache__/\n")
    (repo / "tests/__pycache__").mkdir()
    (repo / "tests/__pycache__/test_a.pyc").write_bytes(b"\0")
    assert find_violations(repo, RULES) == []


def test_a_workdir_outside_git_has_no_violations(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "tests").mkdir(parents=True)
    (plain / "tests/test_a.py").write_text("x\n")
    assert find_violations(plain, RULES) == []
    assert find_violations(tmp_path / "missing", RULES) == []


# -- restoring -----------------------------------------------------------------------------------


def test_restore_backs_up_then_restores_only_the_protected_paths(
    repo: Path, tmp_path: Path
) -> None:
    agent_edits(repo)
    agent_versions = {
        path: (repo / path).read_bytes()
        for path in (
            "tests/test_a.py",
            "tests/test_new.py",
            "tests/pkg/test_deep.py",
            "tests/data.bin",
            "SPRINT.md",
        )
    }
    violations = find_violations(repo, RULES)
    backup = restore(
        repo, violations, tmp_path / "backups", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    )

    # The protected tracked files are HEAD's again, byte for byte, in the index too.
    for path in ("tests/test_a.py", "tests/test_b.py", "tests/data.bin", "SPRINT.md"):
        assert (repo / path).read_bytes() == HEAD_FILES[path]
    assert git(repo, "diff", "--cached", "--name-only") == b""
    # The new protected files and the folder they made are gone.
    assert not (repo / "tests/test_new.py").exists()
    assert not (repo / "tests/pkg").exists()
    # Nothing else was touched.
    assert (repo / "src/app.py").read_bytes() == b"print('agent work')\n"
    assert (repo / "notes.txt").read_bytes() == b"agent notes\n"
    assert status(repo) == {" M src/app.py", "?? notes.txt"}
    assert find_violations(repo, RULES) == []
    assert sorted(backup.restored) == sorted(v.path for v in violations)

    # The backup holds the agent's versions, privately.
    assert backup.dir.parent == tmp_path / "backups"
    assert backup.dir.name == "20240501T120000Z-1"
    for path, data in agent_versions.items():
        assert (backup.dir / FILES_NAME / path).read_bytes() == data
    assert set(backup.files) == set(agent_versions)
    for current, _dirs, files in os.walk(backup.dir):
        assert stat.S_IMODE(Path(current).stat().st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE((Path(current) / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700

    # The patch brings the agent's tracked changes back on a clean checkout.
    assert backup.patch is not None
    clean = tmp_path / "clean"
    git(tmp_path, "clone", "-q", str(repo), str(clean))
    git(clean, "apply", "--check", str(backup.patch))
    git(clean, "apply", str(backup.patch))
    assert (clean / "tests/test_a.py").read_bytes() == agent_versions["tests/test_a.py"]
    assert (clean / "tests/data.bin").read_bytes() == agent_versions["tests/data.bin"]
    assert (clean / "SPRINT.md").read_bytes() == agent_versions["SPRINT.md"]
    assert not (clean / "tests/test_b.py").exists()


def test_backups_of_the_same_second_do_not_collide(repo: Path, tmp_path: Path) -> None:
    backups = []
    for text in ("one\n", "two\n"):
        (repo / "SPRINT.md").write_text(text)
        backups.append(restore(repo, find_violations(repo, RULES), tmp_path / "b", 1714564800.0))
    assert [b.dir.name for b in backups] == ["20240501T120000Z-1", "20240501T120000Z-2"]
    assert (backups[1].dir / FILES_NAME / "SPRINT.md").read_text() == "two\n"


def test_restore_unstages_and_removes_staged_new_files(repo: Path, tmp_path: Path) -> None:
    (repo / "tests/staged.py").write_text("staged version\n")
    git(repo, "add", "tests/staged.py")
    (repo / "tests/staged.py").write_text("worktree version\n")
    backup = restore(repo, find_violations(repo, RULES), tmp_path / "b", time.time())
    assert not (repo / "tests/staged.py").exists()
    assert status(repo) == set()
    assert (backup.dir / FILES_NAME / "tests/staged.py").read_text() == "worktree version\n"
    assert backup.staged_patch is not None
    assert "+staged version" in backup.staged_patch.read_text()


def test_restore_undoes_a_rename(repo: Path, tmp_path: Path) -> None:
    git(repo, "mv", "tests/test_b.py", "tests/renamed.py")
    restore(repo, find_violations(repo, RULES), tmp_path / "b", time.time())
    assert (repo / "tests/test_b.py").read_bytes() == HEAD_FILES["tests/test_b.py"]
    assert not (repo / "tests/renamed.py").exists()
    assert status(repo) == set()


def test_paths_are_literal_never_pathspecs(repo: Path, tmp_path: Path) -> None:
    """A new file named like a glob must not make git restore or remove its look-alikes."""
    (repo / "tests/test_a.py").write_text("changed\n")
    (repo / "tests/*.py").write_text("star\n")
    (repo / "tests/-rf [x] ?.py").write_text("odd\n")
    backup = restore(repo, find_violations(repo, RULES), tmp_path / "b", time.time())
    assert not (repo / "tests/*.py").exists()
    assert not (repo / "tests/-rf [x] ?.py").exists()
    assert (repo / "tests/test_b.py").exists()
    assert (backup.dir / FILES_NAME / "tests/*.py").read_text() == "star\n"
    assert status(repo) == set()


def test_a_failed_backup_restores_nothing(repo: Path, tmp_path: Path) -> None:
    (repo / "tests/test_a.py").write_text("agent work\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(GuardError, match="nothing restored"):
        restore(repo, find_violations(repo, RULES), blocker / "backups", time.time())
    assert (repo / "tests/test_a.py").read_text() == "agent work\n"


def test_restore_refuses_paths_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    evil = Violation("../outside", "added", 0, "**", "../outside")
    with pytest.raises(ValueError):
        restore(repo, [evil], tmp_path / "b", time.time())


def test_a_repository_without_commits(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    (fresh / "tests").mkdir()
    (fresh / "tests/test_x.py").write_text("x\n")
    (fresh / "other.txt").write_text("o\n")
    violations = find_violations(fresh, RULES)
    assert found(violations) == {("tests/test_x.py", "added")}
    backup = restore(fresh, violations, tmp_path / "b", time.time())
    assert not (fresh / "tests/test_x.py").exists()
    assert list((fresh / "tests").iterdir()) == []  # `tests/**` is inside tests/, not tests/
    assert (fresh / "other.txt").exists()
    assert backup.patch is None and backup.files == ("tests/test_x.py",)


def test_a_workdir_inside_the_repository_uses_globs_relative_to_it(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "mono",
        {
            "svc/tests/test_x.py": b"x\n",
            "svc/SPRINT.md": b"sprint\n",
            "tests/test_root.py": b"root\n",
            "svc/main.py": b"main\n",
        },
    )
    workdir = repo / "svc"
    (workdir / "tests/test_x.py").write_text("agent\n")
    (workdir / "tests/new.py").write_text("new\n")
    (workdir / "main.py").write_text("agent main\n")
    (repo / "tests/test_root.py").write_text("outside the workdir\n")
    violations = find_violations(workdir, RULES)
    assert {(v.path, v.local_path, v.kind) for v in violations} == {
        ("svc/tests/test_x.py", "tests/test_x.py", "modified"),
        ("svc/tests/new.py", "tests/new.py", "added"),
    }
    backup = restore(workdir, violations, tmp_path / "b", time.time())
    assert (workdir / "tests/test_x.py").read_bytes() == b"x\n"
    assert not (workdir / "tests/new.py").exists()
    assert (workdir / "main.py").read_text() == "agent main\n"
    assert (repo / "tests/test_root.py").read_text() == "outside the workdir\n"
    assert (backup.dir / FILES_NAME / "svc/tests/new.py").read_text() == "new\n"


def test_messages_name_the_rule_and_the_backup(repo: Path, tmp_path: Path) -> None:
    (repo / "SPRINT.md").write_text("mine\n")
    violations = find_violations(repo, RULES)
    backup = restore(repo, violations, tmp_path / "b", time.time())
    assert isinstance(backup, Backup)
    for text in (event_message(violations, backup), agent_message(violations, backup)):
        assert "SPRINT.md" in text and "guards[0]" in text and str(backup.dir) in text
    assert "\n" not in event_message(violations, backup)
    assert "still in place" in agent_message(violations, None)


# -- watching ------------------------------------------------------------------------------------


def test_guard_watcher_wakes_on_changes_but_not_in_git_or_ignored_dirs(repo: Path) -> None:
    woke = threading.Event()
    state = repo / "state"
    state.mkdir()
    watcher = GuardWatcher(woke.set, ignore=[state], min_interval=0.01)
    try:
        watcher.watch([repo])
        (repo / ".git" / "orch-probe").write_text("x")
        (state / "store.db").write_text("x")
        assert not woke.wait(0.5 * DEADLINE_FACTOR)
        assert watcher.take_changed() == set()

        (repo / "tests/test_a.py").write_text("changed\n")
        assert woke.wait(5 * DEADLINE_FACTOR), "no wake-up within the deadline"
        assert watcher.take_changed() == {repo}

        while woke.wait(0.3 * DEADLINE_FACTOR):  # let the write's last events and wake-ups pass
            woke.clear()
        watcher.watch([])
        (repo / "tests/test_b.py").write_text("changed\n")
        assert not woke.wait(0.5 * DEADLINE_FACTOR)
    finally:
        watcher.stop()


def test_guard_watcher_ignores_the_state_dir_through_a_symlinked_workdir(
    repo: Path, tmp_path: Path
) -> None:
    state = repo / "state"
    state.mkdir()
    link = tmp_path / "link"
    link.symlink_to(repo)
    woke = threading.Event()
    watcher = GuardWatcher(woke.set, ignore=[state], min_interval=0.01)
    try:
        watcher.watch([link])
        (state / "controller.log").write_text("a pass\n")
        assert not woke.wait(0.5 * DEADLINE_FACTOR)
        (repo / "SPRINT.md").write_text("changed\n")
        assert woke.wait(5 * DEADLINE_FACTOR), "no wake-up within the deadline"
        assert watcher.take_changed() == {link}
    finally:
        watcher.stop()


def test_skip_worktree_and_assume_unchanged_do_not_hide_an_edit(repo: Path) -> None:
    git(repo, "update-index", "--skip-worktree", "tests/test_a.py")
    git(repo, "update-index", "--assume-unchanged", "SPRINT.md")
    (repo / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    (repo / "SPRINT.md").write_text("# nothing to do\n")
    found = {(v.path, v.kind) for v in find_violations(repo, RULES)}
    assert found == {("tests/test_a.py", "modified"), ("SPRINT.md", "modified")}


def test_info_exclude_does_not_hide_a_new_protected_file(repo: Path) -> None:
    (repo / ".git/info").mkdir(exist_ok=True)
    (repo / ".git/info/exclude").write_text("tests/\n")
    (repo / "tests/test_c.py").write_text("def test_c():\n    assert True\n")
    found = {(v.path, v.kind) for v in find_violations(repo, RULES)}
    assert found == {("tests/test_c.py", "added")}
