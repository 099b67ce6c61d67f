"""Guards against real files and git in temporary repositories: the baseline, finding changes
against it (whatever the agent did to git), backing up, restoring, watching."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.adapters import guardrestore
from reconciler.adapters.baseline import (
    Baseline,
    BaselineError,
    Violation,
    compare,
    load,
    record,
    remove_guard_files,
)
from reconciler.adapters.git import commits_since, head_commit, sync_index, unhide
from reconciler.adapters.guardrestore import (
    FILES_NAME,
    Backup,
    agent_message,
    event_message,
    prune,
    restore,
)
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.protected import DigestCache
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


def take_baseline(workdir: Path, tmp_path: Path, rules: list[list[str]] = RULES) -> Baseline:
    """What the guard keeper does when the agent starts: the protected files as they are."""
    root = Path(git(workdir, "rev-parse", "--show-toplevel").decode().strip())
    return record(tmp_path / "guard", ("uid-1", 1), workdir, root, head_commit(root), rules)


def changes(
    baseline: Baseline, workdir: Path | None = None, rules: list[list[str]] = RULES
) -> list[Violation]:
    workdir = workdir or baseline.workdir
    prefix = workdir.relative_to(baseline.root).as_posix() + "/" if workdir != baseline.root else ""
    return compare(baseline, workdir, rules, prefix, DigestCache())


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


AGENT_CHANGES = {
    ("tests/test_a.py", "modified"),
    ("tests/test_b.py", "deleted"),
    ("tests/test_new.py", "added"),
    ("tests/pkg/test_deep.py", "added"),
    ("tests/data.bin", "modified"),
    ("SPRINT.md", "modified"),
}


def test_changes_against_the_baseline_are_exactly_the_protected_ones(
    repo: Path, tmp_path: Path
) -> None:
    baseline = take_baseline(repo, tmp_path)
    assert set(baseline.files) == {
        p for p in HEAD_FILES if p.startswith("tests/") or p == "SPRINT.md"
    }
    agent_edits(repo)
    violations = changes(baseline)
    assert found(violations) == AGENT_CHANGES
    assert {v.rule_index for v in violations} == {0}
    assert {v.pattern for v in violations if v.path == "SPRINT.md"} == {"SPRINT.md"}
    assert all(v.local_path == v.path for v in violations)


def test_a_clean_tree_has_no_changes(repo: Path, tmp_path: Path) -> None:
    assert changes(take_baseline(repo, tmp_path)) == []


def test_the_baseline_is_the_workdir_at_the_start_not_head(repo: Path, tmp_path: Path) -> None:
    """A person's uncommitted edit made before the agent starts is the starting point."""
    (repo / "tests/test_a.py").write_text("the user's work in progress\n")
    (repo / "tests/wip.py").write_text("untracked, by the user\n")
    baseline = take_baseline(repo, tmp_path)
    assert changes(baseline) == []
    (repo / "tests/wip.py").write_text("the agent's\n")
    assert found(changes(baseline)) == {("tests/wip.py", "modified")}


def test_one_violation_per_rule_that_matches(repo: Path, tmp_path: Path) -> None:
    rules = [["src/**"], ["tests/**"], ["**/*.py"]]
    baseline = take_baseline(repo, tmp_path, rules)
    (repo / "tests/test_a.py").write_text("changed\n")
    violations = changes(baseline, rules=rules)
    assert [(v.rule_index, v.pattern) for v in violations] == [(1, "tests/**"), (2, "**/*.py")]


def test_a_rename_is_a_deletion_and_an_addition(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    git(repo, "mv", "tests/test_b.py", "tests/renamed.py")
    assert found(changes(baseline)) == {
        ("tests/renamed.py", "added"),
        ("tests/test_b.py", "deleted"),
    }


def test_ignored_new_files_are_not_changes(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitignore").write_text("__pycache__/\n")
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/__pycache__").mkdir()
    (repo / "tests/__pycache__/test_a.pyc").write_bytes(b"\0")
    assert changes(baseline) == []
    shutil.rmtree(repo / ".git")  # the .gitignore still counts without git
    assert changes(baseline) == []


def test_a_gitignore_added_later_does_not_hide_a_change_to_a_baseline_file(
    repo: Path, tmp_path: Path
) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / ".gitignore").write_text("tests/\n")
    (repo / "tests/test_a.py").write_text("pass\n")
    assert found(changes(baseline)) == {("tests/test_a.py", "modified")}


def test_a_mode_change_is_a_change(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/test_a.py").chmod(0o755)
    assert found(changes(baseline)) == {("tests/test_a.py", "modified")}


# -- what git cannot hide ------------------------------------------------------------------------


def test_a_committed_change_is_seen_and_named(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    git(repo, "commit", "-qam", "x")
    assert found(changes(baseline)) == {("tests/test_a.py", "modified")}
    commit = git(repo, "rev-parse", "--short", "HEAD").decode().strip()
    assert commits_since(repo, baseline.head, ["tests/test_a.py", "SPRINT.md"]) == {
        "tests/test_a.py": commit
    }


def test_a_deleted_git_folder_hides_nothing(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    shutil.rmtree(repo / ".git")
    (repo / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    (repo / "tests/new.py").write_text("new\n")
    assert found(changes(baseline)) == {("tests/test_a.py", "modified"), ("tests/new.py", "added")}
    backup = restore(repo, baseline, changes(baseline), tmp_path / "b", time.time())
    assert (repo / "tests/test_a.py").read_bytes() == HEAD_FILES["tests/test_a.py"]
    assert not (repo / "tests/new.py").exists()
    assert (backup.dir / FILES_NAME / "tests/new.py").read_text() == "new\n"


def test_skip_worktree_and_assume_unchanged_do_not_hide_an_edit(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    git(repo, "update-index", "--skip-worktree", "tests/test_a.py")
    git(repo, "update-index", "--assume-unchanged", "SPRINT.md")
    (repo / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    (repo / "SPRINT.md").write_text("# nothing to do\n")
    assert found(changes(baseline)) == {("tests/test_a.py", "modified"), ("SPRINT.md", "modified")}
    assert unhide(repo, ["tests/test_a.py", "SPRINT.md"]) == {
        "tests/test_a.py": "skip-worktree",
        "SPRINT.md": "assume-unchanged",
    }
    assert status(repo) == {" M tests/test_a.py", " M SPRINT.md"}


def test_info_exclude_does_not_hide_a_new_protected_file(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / ".git/info").mkdir(exist_ok=True)
    (repo / ".git/info/exclude").write_text("tests/\n")
    (repo / "tests/test_c.py").write_text("def test_c():\n    assert True\n")
    assert found(changes(baseline)) == {("tests/test_c.py", "added")}


def test_the_baseline_survives_and_is_reloaded(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    again = load(tmp_path / "guard")
    assert again is not None and again.key == ("uid-1", 1) and again.files == baseline.files
    assert load(tmp_path / "nothing") is None
    (tmp_path / "guard" / "baseline.json").write_text("{not json")
    with pytest.raises(BaselineError, match="corrupt"):
        load(tmp_path / "guard")


def test_a_new_baseline_drops_blobs_it_no_longer_names(repo: Path, tmp_path: Path) -> None:
    take_baseline(repo, tmp_path)
    (repo / "SPRINT.md").write_text("sprint 2\n")
    blobs = tmp_path / "guard" / "blobs"
    before = set(os.listdir(blobs))
    second = record(tmp_path / "guard", ("uid-1", 2), repo, repo, head_commit(repo), RULES)
    after = set(os.listdir(blobs))
    assert after == {s.digest for s in second.files.values()} and after != before
    for current, _dirs, files in os.walk(tmp_path / "guard"):
        assert stat.S_IMODE(Path(current).stat().st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE((Path(current) / name).stat().st_mode) == 0o600


# -- restoring -----------------------------------------------------------------------------------


def test_restore_backs_up_then_restores_only_the_protected_paths(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "tests/test_b.py").chmod(0o755)
    git(repo, "commit", "-qam", "executable")
    baseline = take_baseline(repo, tmp_path)
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
    violations = changes(baseline)
    backup = restore(
        repo, baseline, violations, tmp_path / "backups", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    )
    sync_index(
        repo,
        [v.path for v in violations if v.kind != "added"],
        [v.path for v in violations if v.kind == "added"],
    )

    # The protected files are the baseline's again, byte and mode, and the index is tidy.
    for path in ("tests/test_a.py", "tests/test_b.py", "tests/data.bin", "SPRINT.md"):
        assert (repo / path).read_bytes() == HEAD_FILES[path]
    assert stat.S_IMODE((repo / "tests/test_b.py").stat().st_mode) == 0o755
    assert git(repo, "diff", "--cached", "--name-only") == b""
    # The new protected files and the folder they made are gone.
    assert not (repo / "tests/test_new.py").exists()
    assert not (repo / "tests/pkg").exists()
    # Nothing else was touched.
    assert (repo / "src/app.py").read_bytes() == b"print('agent work')\n"
    assert (repo / "notes.txt").read_bytes() == b"agent notes\n"
    assert status(repo) == {" M src/app.py", "?? notes.txt"}
    assert changes(baseline) == []
    assert sorted(backup.restored) == sorted({v.path for v in violations})

    # The backup holds the agent's versions, privately, and says what was done.
    assert backup.dir.parent == tmp_path / "backups"
    assert backup.dir.name == "20240501T120000Z-1"
    for path, data in agent_versions.items():
        assert (backup.dir / FILES_NAME / path).read_bytes() == data
    assert set(backup.files) == set(agent_versions)
    index = json.loads((backup.dir / guardrestore.INDEX_NAME).read_text())
    assert index["paths"]["tests/test_b.py"] == "deleted"
    for current, _dirs, files in os.walk(backup.dir):
        assert stat.S_IMODE(Path(current).stat().st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE((Path(current) / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700
    assert not list(repo.rglob(".orch-*"))


def test_a_committed_change_is_restored_and_left_for_a_person_to_commit(
    repo: Path, tmp_path: Path
) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/test_a.py").write_text("def test_a():\n    pass\n")
    git(repo, "commit", "-qam", "x")
    violations = changes(baseline)
    restore(repo, baseline, violations, tmp_path / "b", time.time())
    sync_index(repo, ["tests/test_a.py"], [])
    assert (repo / "tests/test_a.py").read_bytes() == HEAD_FILES["tests/test_a.py"]
    assert status(repo) == {" M tests/test_a.py"}  # the revert, visible


def test_backups_of_the_same_second_do_not_collide(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    backups = []
    for text in ("one\n", "two\n"):
        (repo / "SPRINT.md").write_text(text)
        backups.append(restore(repo, baseline, changes(baseline), tmp_path / "b", 1714564800.0))
    assert [b.dir.name for b in backups] == ["20240501T120000Z-1", "20240501T120000Z-2"]
    assert (backups[1].dir / FILES_NAME / "SPRINT.md").read_text() == "two\n"


def test_the_agents_final_write_is_in_the_backup(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent writes through an open file while the restore runs: its last bytes are kept."""
    baseline = take_baseline(repo, tmp_path)
    (repo / "SPRINT.md").write_text("draft\n")
    violations = changes(baseline)
    writer = open(repo / "SPRINT.md", "r+b")  # noqa: SIM115 - the agent's open file
    real_save = guardrestore._save

    def save_after_the_final_write(*args: object, **kwargs: object) -> tuple[Path, list[str]]:
        writer.seek(0)
        writer.write(b"FINAL-1\n")
        writer.truncate()
        writer.close()
        return real_save(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(guardrestore, "_save", save_after_the_final_write)
    backup = restore(repo, baseline, violations, tmp_path / "b", time.time())
    assert (backup.dir / FILES_NAME / "SPRINT.md").read_text() == "FINAL-1\n"
    assert (repo / "SPRINT.md").read_bytes() == HEAD_FILES["SPRINT.md"]


@pytest.mark.parametrize("trial", range(3))
def test_a_writer_racing_restores_loses_no_final_version(
    repo: Path, tmp_path: Path, trial: int
) -> None:
    """An agent rewriting a protected file every 2 ms, then writing FINAL: whatever the restores
    took away is in a backup, and FINAL ends up in one (issue 10: it was lost 2 times in 12)."""
    baseline = take_baseline(repo, tmp_path)
    final = f"FINAL-{trial}\n"

    def writer() -> None:
        for n in range(150):
            (repo / "SPRINT.md").write_text(f"v{n}\n")
            time.sleep(0.002)  # the agent's own pace, not synchronisation
        (repo / "SPRINT.md").write_text(final)

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        if violations := changes(baseline):
            restore(repo, baseline, violations, tmp_path / "b", time.time())
    thread.join()
    if violations := changes(baseline):
        restore(repo, baseline, violations, tmp_path / "b", time.time())
    kept = [
        (folder / FILES_NAME / "SPRINT.md").read_text()
        for folder in (tmp_path / "b").iterdir()
        if (folder / FILES_NAME / "SPRINT.md").exists()
    ]
    assert final in kept
    assert (repo / "SPRINT.md").read_bytes() == HEAD_FILES["SPRINT.md"]


def test_a_backup_that_fails_midway_leaves_no_backup_and_restores_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/test_a.py").write_text("agent work\n")
    (repo / "tests/new.py").write_text("new\n")

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(guardrestore, "write_atomic", disk_full)
    with pytest.raises(BaselineError, match="nothing restored"):
        restore(repo, baseline, changes(baseline), tmp_path / "b", time.time())
    assert (repo / "tests/test_a.py").read_text() == "agent work\n"
    assert (repo / "tests/new.py").read_text() == "new\n"
    assert not list(repo.rglob(".orch-*"))
    assert StatePaths(tmp_path).backups("x") == []
    assert [p.name[:9] for p in (tmp_path / "b").iterdir()] == [".partial-"]  # a torn one
    monkeypatch.undo()
    backup = restore(repo, baseline, changes(baseline), tmp_path / "b", time.time())
    assert [p.name for p in (tmp_path / "b").iterdir()] == [backup.dir.name]  # torn one pruned


def test_backups_are_pruned_by_count_and_size(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guardrestore, "MAX_BACKUPS", 3)
    baseline = take_baseline(repo, tmp_path)
    made = []
    for n in range(5):
        (repo / "SPRINT.md").write_text(f"version {n}\n")
        made.append(restore(repo, baseline, changes(baseline), tmp_path / "b", 1714564800.0 + n))
    assert sorted((tmp_path / "b").iterdir()) == [b.dir for b in made[-3:]]
    monkeypatch.setattr(guardrestore, "MAX_BACKUP_BYTES", 1)
    prune(tmp_path / "b", keep=made[-1].dir)
    assert list((tmp_path / "b").iterdir()) == [made[-1].dir]


def test_guard_files_go_with_the_agent(repo: Path, tmp_path: Path) -> None:
    agent_dir = tmp_path / "agents" / "x"
    record(agent_dir / "guard", ("u", 1), repo, repo, None, RULES)
    (agent_dir / "backups" / "20240501T120000Z-1").mkdir(parents=True)
    (agent_dir / "exit-1").write_text("0")
    remove_guard_files(agent_dir)
    assert [p.name for p in agent_dir.iterdir()] == ["exit-1"]


def test_paths_are_literal_never_globs(repo: Path, tmp_path: Path) -> None:
    """A new file named like a glob must not make a restore touch its look-alikes."""
    baseline = take_baseline(repo, tmp_path)
    (repo / "tests/test_a.py").write_text("changed\n")
    (repo / "tests/*.py").write_text("star\n")
    (repo / "tests/-rf [x] ?.py").write_text("odd\n")
    backup = restore(repo, baseline, changes(baseline), tmp_path / "b", time.time())
    assert not (repo / "tests/*.py").exists()
    assert not (repo / "tests/-rf [x] ?.py").exists()
    assert (repo / "tests/test_b.py").exists()
    assert (backup.dir / FILES_NAME / "tests/*.py").read_text() == "star\n"
    assert status(repo) == set()


def test_restore_refuses_paths_outside_the_workdir(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    evil = Violation("../outside", "added", 0, "**", "../outside")
    with pytest.raises(ValueError):
        restore(repo, baseline, [evil], tmp_path / "b", time.time())


def test_a_changed_baseline_copy_is_not_restored(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    blob = baseline.blob(baseline.files["SPRINT.md"].digest)
    blob.write_bytes(b"planted\n")
    (repo / "SPRINT.md").write_text("agent\n")
    with pytest.raises(BaselineError, match="was changed"):
        restore(repo, baseline, changes(baseline), tmp_path / "b", time.time())
    assert (repo / "SPRINT.md").read_bytes() != b"planted\n"


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
    baseline = take_baseline(workdir, tmp_path)
    (workdir / "tests/test_x.py").write_text("agent\n")
    (workdir / "tests/new.py").write_text("new\n")
    (workdir / "main.py").write_text("agent main\n")
    (repo / "tests/test_root.py").write_text("outside the workdir\n")
    violations = changes(baseline, workdir)
    assert {(v.path, v.local_path, v.kind) for v in violations} == {
        ("svc/tests/test_x.py", "tests/test_x.py", "modified"),
        ("svc/tests/new.py", "tests/new.py", "added"),
    }
    backup = restore(workdir, baseline, violations, tmp_path / "b", time.time())
    assert (workdir / "tests/test_x.py").read_bytes() == b"x\n"
    assert not (workdir / "tests/new.py").exists()
    assert (workdir / "main.py").read_text() == "agent main\n"
    assert (repo / "tests/test_root.py").read_text() == "outside the workdir\n"
    assert (backup.dir / FILES_NAME / "tests/new.py").read_text() == "new\n"


def test_messages_name_the_rule_how_and_the_backup(repo: Path, tmp_path: Path) -> None:
    baseline = take_baseline(repo, tmp_path)
    (repo / "SPRINT.md").write_text("mine\n")
    violations = changes(baseline)
    backup = restore(repo, baseline, violations, tmp_path / "b", time.time())
    assert isinstance(backup, Backup)
    details = {"SPRINT.md": "committed in abc1234"}
    line = event_message(violations, backup, details, ".git removed")
    assert "SPRINT.md (modified, committed in abc1234, guards[0] SPRINT.md)" in line
    assert ".git removed" in line and line.endswith(str(backup.dir)) and "\n" not in line
    told = agent_message(violations, backup)
    assert "SPRINT.md" in told and "guards[0]" in told and str(backup.dir) in told
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
