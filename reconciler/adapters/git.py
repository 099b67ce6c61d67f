"""The git adapter for guards: which protected paths an agent changed, and putting them back.

This is the only module that runs git. Every call is one `git -C DIR ...` argument list (never a
shell) with a timeout, `--literal-pathspecs` so a file named `*` or `:(top)` is only itself, `--`
before paths, hooks and fsmonitor switched off, and the caller's GIT_DIR-style variables dropped,
so the repository git works on is the workdir's and nothing the repository configures runs.

What counts as a change is what `git status` reports against HEAD: modified, deleted and new files,
staged or not, with `skip-worktree` and `assume-unchanged` cleared on protected paths first (they
would hide an edit). Files ignored by a `.gitignore` are not changes (`.git/info/exclude` and the
user's excludes file do not count: an agent could add a protected folder to them), so build
output under a protected folder is left alone; nor are submodules or nested repositories, which
are repositories of their own. Globs are relative to the agent's workdir (see `globmatch`);
changes outside the workdir never match.

`restore` never loses the agent's work and never reaches beyond the violating paths. It first
saves them under the backup dir (a patch against HEAD for tracked paths, plus a copy of every
violating file as the agent left it), fsyncs, and only then restores exactly those paths from HEAD
and removes exactly the new files, plus folders that became empty under a protected pattern. If
saving fails nothing is restored. It never runs `git checkout -- .`, `git clean` or `git stash`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

from reconciler.api.errors import OrchError
from reconciler.core.globmatch import StatusEntry, first_match, parse_porcelain

log = logging.getLogger(__name__)

#: Longest a single git call may take (a `status` of a huge tree, a slow disk).
GIT_TIMEOUT = 30.0
#: Options for every git call: paths are literal, nothing the repository configures runs.
GIT_OPTIONS = (
    "--literal-pathspecs",
    "--no-optional-locks",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
)
#: Variables that would point git at another repository, index or config than the workdir's
#: (`git rev-parse --local-env-vars`, as a hook would leave them), or clash with literal pathspecs.
GIT_LOCAL_ENV = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_CONFIG",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_PARAMETERS",
        "GIT_DIR",
        "GIT_GRAFT_FILE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_OBJECT_DIRECTORY",
        "GIT_PREFIX",
        "GIT_REPLACE_REF_BASE",
        "GIT_SHALLOW_FILE",
        "GIT_WORK_TREE",
        "GIT_GLOB_PATHSPECS",
        "GIT_ICASE_PATHSPECS",
        "GIT_NOGLOB_PATHSPECS",
    }
)
#: Patch of the tracked violating paths, HEAD -> the agent's working tree (`git apply` it).
PATCH_NAME = "changes.patch"
#: Patch HEAD -> index, kept only when the agent staged something other than its working tree.
STAGED_PATCH_NAME = "staged.patch"
#: Folder of copies of every violating file as the agent left it, under its repository path.
FILES_NAME = "files"

Kind = Literal["modified", "deleted", "added"]


class GuardError(OrchError):
    """git is missing, failed or timed out, or a backup could not be written."""


@dataclass(frozen=True)
class Violation:
    """A protected path the agent changed.

    `path` is relative to the repository root (what git and the backup use); `local_path` is the
    same file relative to the agent's workdir (what the agent and its globs see). A path matched by
    several rules gives one Violation per rule, `pattern` being the rule's first glob that matched.
    """

    path: str
    kind: Kind
    rule_index: int
    pattern: str
    local_path: str


@dataclass(frozen=True)
class Backup:
    """Where the agent's version of restored paths was kept, and what was put back.

    `patch` applies with `git apply` at the repository root on a clean checkout; `files` are the
    repository paths copied under `dir/files/`; `restored` the paths restored from HEAD or removed.
    """

    dir: Path
    patch: Path | None
    files: tuple[str, ...]
    restored: tuple[str, ...]
    staged_patch: Path | None = None


# -- finding violations --------------------------------------------------------------------------


def find_violations(workdir: Path, protect_rules: Sequence[Sequence[str]]) -> list[Violation]:
    """Protected paths changed in the workdir's repository, staged or not; [] outside git.

    `protect_rules[i]` is guard i's `protect` globs. Sorted by rule, then path.
    """
    repo = _repo(workdir)
    if repo is None or not protect_rules:
        return []
    root, prefix = repo
    _unhide(root, prefix, protect_rules)
    result = _git(
        root,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=all",
    )
    if result.returncode != 0:
        raise GuardError(f"git status failed in {root}: {_first_line(result.stderr)}")
    changed = dict(changed_paths(parse_porcelain(result.stdout)))
    for path in _untracked(root):
        changed.setdefault(path, "added")
    violations = []
    for path, kind in sorted(changed.items()):
        local = _local(path, prefix)
        if local is None:
            continue
        for index, patterns in enumerate(protect_rules):
            pattern = first_match(patterns, local)
            if pattern is not None:
                violations.append(Violation(path, kind, index, pattern, local))
    return sorted(violations, key=lambda v: (v.rule_index, v.path))


def _unhide(root: Path, prefix: str, protect_rules: Sequence[Sequence[str]]) -> None:
    """Clear `skip-worktree` and `assume-unchanged` on protected paths: with either bit set,
    `git status` takes the index's word for the file and an agent's edit goes unseen."""
    result = _git(root, "ls-files", "-z", "-v", "--full-name")
    if result.returncode != 0:
        raise GuardError(f"git ls-files failed in {root}: {_first_line(result.stderr)}")
    hidden = []
    for entry in _nul_list(result.stdout):
        tag, _, path = entry.partition(" ")
        local = _local(path, prefix)
        if (
            (tag == "S" or tag.islower())
            and local is not None
            and any(first_match(patterns, local) for patterns in protect_rules)
        ):
            hidden.append(path)
    # One flag per call: git applies only the last of the two when given both.
    for flag in ("--no-skip-worktree", "--no-assume-unchanged") if hidden else ():
        result = _git(root, "update-index", flag, "--", *hidden)
        if result.returncode != 0:
            raise GuardError(f"git update-index failed in {root}: {_first_line(result.stderr)}")


def _untracked(root: Path) -> list[str]:
    """New files that only `.gitignore` files may hide: `.git/info/exclude` and the user's
    excludes file are where an agent could hide a new protected file from `git status`."""
    result = _git(
        root, "ls-files", "-z", "--others", "--full-name", "--exclude-per-directory=.gitignore"
    )
    if result.returncode != 0:
        raise GuardError(f"git ls-files failed in {root}: {_first_line(result.stderr)}")
    return [path for path in _nul_list(result.stdout) if not path.endswith("/")]


def changed_paths(entries: Iterable[StatusEntry]) -> list[tuple[str, Kind]]:
    """Each changed file with how it changed; both sides of a rename count."""
    changed: dict[str, Kind] = {}
    for entry in entries:
        if entry.path.endswith("/"):
            continue  # a nested repository: not ours to guard
        if entry.untracked or entry.x in "ACR" or entry.y == "A":
            kind: Kind = "added"
        elif "D" in (entry.x, entry.y):
            kind = "deleted"
        else:
            kind = "modified"
        changed.setdefault(entry.path, kind)
        if entry.orig_path and entry.x == "R":
            changed.setdefault(entry.orig_path, "deleted")
    return sorted(changed.items())


def _local(path: str, prefix: str) -> str | None:
    """`path` (repository-relative) relative to the workdir at `prefix`, or None outside it."""
    if not prefix:
        return path
    return path[len(prefix) :] if path.startswith(prefix) else None


# -- restoring -----------------------------------------------------------------------------------


def restore(
    workdir: Path, violations: Sequence[Violation], backup_root: Path, when: datetime | float
) -> Backup:
    """Save the agent's version of the violating paths under `backup_root`, then restore them.

    Tracked paths go back to HEAD (index and working tree); new files are removed (and unstaged),
    then folders left empty under a protected pattern. Raises GuardError, restoring nothing, when
    the backup cannot be written; raises ValueError for an empty list or a path outside the repo.
    """
    if not violations:
        raise ValueError("restore needs at least one violation")
    repo = _repo(workdir)
    if repo is None:
        raise GuardError(f"{workdir} is not in a git repository")
    root, prefix = repo
    paths = sorted({v.path for v in violations})
    for path in paths:
        _check_relative(path)
    in_head = _in_head(root, paths)
    in_index = _in_index(root, paths)
    backup = _save(root, paths, in_head, in_index, backup_root, when)
    tracked = [p for p in paths if p in in_head]
    added = [p for p in paths if p not in in_head]
    _restore_tracked(root, tracked)
    removed = _remove_added(root, added, in_index)
    for path in removed:
        patterns = [v.pattern for v in violations if v.path == path]
        _remove_empty_parents(root, prefix, path, patterns)
    return Backup(backup.dir, backup.patch, backup.files, (*tracked, *removed), backup.staged_patch)


def _check_relative(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "" in parts or ".git" in parts:
        raise ValueError(f"not a repository-relative file path: {path!r}")


def _in_head(root: Path, paths: Sequence[str]) -> set[str]:
    """Which of `paths` are files in HEAD (none in a repository without commits)."""
    if _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0:
        return set()
    result = _git(root, "ls-tree", "-r", "-z", "--name-only", "--full-tree", "HEAD", "--", *paths)
    if result.returncode != 0:
        raise GuardError(f"git ls-tree failed in {root}: {_first_line(result.stderr)}")
    return set(_nul_list(result.stdout)) & set(paths)


def _in_index(root: Path, paths: Sequence[str]) -> set[str]:
    """Which of `paths` are in the index (tracked or staged)."""
    result = _git(root, "ls-files", "-z", "--cached", "--full-name", "--", *paths)
    if result.returncode != 0:
        raise GuardError(f"git ls-files failed in {root}: {_first_line(result.stderr)}")
    return set(_nul_list(result.stdout)) & set(paths)


def _save(
    root: Path,
    paths: Sequence[str],
    in_head: set[str],
    in_index: set[str],
    backup_root: Path,
    when: datetime | float,
) -> Backup:
    """Write the backup and fsync it; GuardError if any of it fails."""
    try:
        folder = _new_backup_dir(backup_root, when)
        tracked = [p for p in paths if p in in_head]
        patch = staged = None
        if tracked:
            diff = _diff(root, ["HEAD"], tracked)
            if diff:
                patch = _write(folder / PATCH_NAME, diff)
        staged_paths = [p for p in paths if p in in_index]
        if staged_paths and _index_differs_from_worktree(root, staged_paths):
            diff = _diff(root, ["--cached", "HEAD"], staged_paths)
            if diff:
                staged = _write(folder / STAGED_PATCH_NAME, diff)
        files = folder / FILES_NAME
        copied = [p for p in paths if _copy_agent_version(root, p, files, in_head, in_index)]
        _fsync_tree(folder)
        _fsync_dir(folder.parent)
    except OSError as err:
        raise GuardError(f"could not back up the agent's changes, nothing restored: {err}") from err
    return Backup(folder, patch, tuple(copied), (), staged)


def _new_backup_dir(backup_root: Path, when: datetime | float) -> Path:
    """backup_root/<UTC timestamp>-<n>, 0700, n counting up within the same second."""
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(backup_root, 0o700)
    for n in range(1, 10_000):
        folder = backup_root / f"{stamp}-{n}"
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)
        return folder
    raise OSError(f"too many backups in {backup_root} for {stamp}")


def _diff(root: Path, revs: Sequence[str], paths: Sequence[str]) -> bytes:
    """A binary patch with a/ b/ prefixes whatever the user's diff settings say."""
    result = _git(
        root,
        "diff",
        *revs,
        "--binary",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-relative",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--",
        *paths,
    )
    if result.returncode != 0:
        raise OSError(f"git diff failed: {_first_line(result.stderr)}")
    return result.stdout


def _index_differs_from_worktree(root: Path, paths: Sequence[str]) -> bool:
    result = _git(root, "diff", "--quiet", "--no-ext-diff", "--no-textconv", "--", *paths)
    return result.returncode == 1


def _copy_agent_version(
    root: Path, path: str, files: Path, in_head: set[str], in_index: set[str]
) -> bool:
    """Copy the agent's version of `path` under `files/`: the working tree's, else a staged one."""
    source = root / path
    target = files / path
    if source.is_symlink():
        _makedirs(target.parent, files)
        os.symlink(os.readlink(source), target)
        return True
    if source.is_file():
        _makedirs(target.parent, files)
        with open(source, "rb") as src:
            _write_stream(target, src)
        return True
    if path in in_index and path not in in_head and not source.exists():
        # Staged, then deleted from the working tree: the index holds the only copy.
        blob = _git(root, "cat-file", "blob", f":0:{path}")
        if blob.returncode == 0:
            _makedirs(target.parent, files)
            _write(target, blob.stdout)
            return True
    return False


def _makedirs(folder: Path, top: Path) -> None:
    """Create `folder` and its parents up to and including `top`, each 0700."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current == top:
            break
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)


def _write(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path


def _write_stream(path: Path, source: BinaryIO) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out)
        out.flush()
        os.fsync(out.fileno())


def _fsync_tree(folder: Path) -> None:
    """fsync every folder of the backup (files were synced as they were written)."""
    for current, _dirs, _files in os.walk(folder, topdown=False):
        _fsync_dir(Path(current))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _restore_tracked(root: Path, paths: Sequence[str]) -> None:
    """Index and working tree of exactly `paths` back to HEAD."""
    if not paths:
        return
    result = _git(root, "restore", "--source=HEAD", "--staged", "--worktree", "--", *paths)
    if result.returncode != 0 and b"is not a git command" in result.stderr:
        result = _git(root, "checkout", "HEAD", "--", *paths)  # git older than 2.23
    if result.returncode != 0:
        raise GuardError(f"git restore failed in {root}: {_first_line(result.stderr)}")


def _remove_added(root: Path, paths: Sequence[str], in_index: set[str]) -> list[str]:
    """Unstage and delete new files; returns the paths handled (folders are never removed)."""
    staged = [p for p in paths if p in in_index]
    if staged:
        result = _git(root, "rm", "--cached", "-f", "-q", "--ignore-unmatch", "--", *staged)
        if result.returncode != 0:
            raise GuardError(f"git rm --cached failed in {root}: {_first_line(result.stderr)}")
    removed = []
    for path in paths:
        target = root / path
        if target.is_symlink() or target.is_file():
            target.unlink()
            removed.append(path)
        elif path in in_index:
            removed.append(path)
    return removed


def _remove_empty_parents(root: Path, prefix: str, path: str, patterns: Sequence[str]) -> None:
    """Remove folders above `path` that are now empty and protected, up to the workdir."""
    parts = path.split("/")[:-1]
    while parts:
        folder = "/".join(parts)
        local = _local(folder, prefix)
        if not local or first_match(patterns, local) is None:
            return
        try:
            (root / folder).rmdir()
        except OSError:
            return  # not empty (or gone): stop climbing
        parts.pop()


# -- messages ------------------------------------------------------------------------------------


def event_message(violations: Sequence[Violation], backup: Backup | None) -> str:
    """One line for the `ProtectedFileRestored` (or alert) Warning event."""
    changes = ", ".join(
        f"{v.local_path} ({v.kind}, guards[{v.rule_index}] {v.pattern})"
        for v in _by_path(violations)
    )
    if backup is None:
        return f"protected paths changed: {changes}"
    return f"restored from HEAD: {changes}; the agent's version is kept in {backup.dir}"


def agent_message(violations: Sequence[Violation], backup: Backup | None) -> str:
    """What the agent is told: which rule it broke, what happened, and that its change was kept."""
    lines = ["orch: you changed files that a guard of yours protects:"]
    lines += [
        f"- {v.local_path} ({v.kind}) is protected by guards[{v.rule_index}]: {v.pattern}"
        for v in _by_path(violations)
    ]
    if backup is None:
        lines.append("Your change is still in place; a person has been alerted.")
    else:
        lines.append(f"They were restored from HEAD. Your version was kept in {backup.dir}")
        lines.append("Do not change these paths; ask a person if the change is needed.")
    return "\n".join(lines)


def _by_path(violations: Sequence[Violation]) -> list[Violation]:
    seen: dict[str, Violation] = {}
    for violation in violations:
        seen.setdefault(violation.path, violation)
    return [seen[path] for path in sorted(seen)]


# -- running git ---------------------------------------------------------------------------------


def in_repository(workdir: Path) -> bool:
    """Whether `workdir` is inside a git work tree (guards need one to see changes)."""
    return _repo(workdir) is not None


def _repo(workdir: Path) -> tuple[Path, str] | None:
    """The repository root of `workdir` and the workdir's path inside it (`sub/` or "")."""
    if not Path(workdir).is_dir():
        return None
    result = _git(Path(workdir), "rev-parse", "--show-toplevel", "--show-prefix")
    if result.returncode != 0:
        return None
    lines = os.fsdecode(result.stdout).split("\n")
    if len(lines) < 2 or not lines[0]:
        return None  # inside .git, or a bare repository
    return Path(lines[0]), lines[1]


def _git(where: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in GIT_LOCAL_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        return subprocess.run(
            ["git", "-C", str(where), *GIT_OPTIONS, *args],
            check=False,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GuardError("git is not installed: run apt-get install git") from None
    except subprocess.TimeoutExpired:
        raise GuardError(f"git {args[0]} in {where} took longer than {GIT_TIMEOUT:.0f}s") from None


def _nul_list(data: bytes) -> list[str]:
    return [os.fsdecode(item) for item in data.split(b"\0") if item]


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "(no message)"


# -- worktrees: a checkout per agent -------------------------------------------------------------


class WorktreeError(OrchError):
    """A worktree cannot be made or adopted as declared (branch taken, path not a worktree)."""


@dataclass(frozen=True)
class WorktreeStatus:
    """Where an agent's worktree stands against its base, for `describe`."""

    branch: str
    ahead: int
    behind: int
    dirty: tuple[str, ...]


def ensure_worktree(repo: Path, branch: str, base: str, path: Path) -> str:
    """Make `path` a worktree of `repo` on `branch` (from `base` if new): "created" or "adopted".

    An existing worktree at `path` on `branch` is adopted as it is (a restart keeps the agent's
    work); anything else at `path`, or `branch` checked out elsewhere, is a WorktreeError.
    """
    top = _repo(repo)
    if top is None:
        raise WorktreeError(f"{repo} is not a git repository")
    root = top[0]
    listed = _worktrees(root)
    ref = f"refs/heads/{branch}"
    here = listed.get(str(path.resolve())) if path.exists() else None
    if here is not None:
        if here != ref:
            on = here or "a detached HEAD"
            raise WorktreeError(f"{path} is a worktree on {on}, not {branch}")
        return "adopted"
    if path.exists():
        raise WorktreeError(f"{path} exists and is not a worktree of {root}")
    taken = next((where for where, on in listed.items() if on == ref), None)
    if taken is not None:
        raise WorktreeError(f"branch {branch} is checked out at {taken}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if _git(root, "rev-parse", "--verify", "--quiet", ref).returncode == 0:
        result = _git(root, "worktree", "add", "--", str(path), branch)
    else:
        result = _git(root, "worktree", "add", "-b", branch, "--", str(path), base)
    if result.returncode != 0:
        raise WorktreeError(f"git worktree add {branch}: {_first_line(result.stderr)}")
    return "created"


def remove_worktree_if_clean(path: Path) -> tuple[str, ...]:
    """Remove the worktree at `path` unless it has changes; return the changed files (kept then)."""
    if not path.is_dir():
        return ()
    status = _git(path, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if status.returncode != 0:
        raise WorktreeError(f"git status in {path}: {_first_line(status.stderr)}")
    dirty = tuple(entry.path for entry in parse_porcelain(status.stdout))
    if dirty:
        return dirty
    removed = _git(path, "worktree", "remove", "--", str(path))
    if removed.returncode != 0:
        raise WorktreeError(f"git worktree remove {path}: {_first_line(removed.stderr)}")
    return ()


def worktree_status(path: Path, base: str) -> WorktreeStatus | None:
    """Branch, commits ahead of and behind `base`, and changed files; None if it is no worktree."""
    head = _git(path, "symbolic-ref", "--quiet", "--short", "HEAD") if path.is_dir() else None
    if head is None or head.returncode != 0:
        return None
    counts = _git(path, "rev-list", "--left-right", "--count", f"{base}...HEAD", "--")
    behind, ahead = (int(n) for n in counts.stdout.split()) if counts.returncode == 0 else (0, 0)
    status = _git(path, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    dirty = tuple(e.path for e in parse_porcelain(status.stdout)) if status.returncode == 0 else ()
    return WorktreeStatus(os.fsdecode(head.stdout).strip(), ahead, behind, dirty)


def _worktrees(root: Path) -> dict[str, str]:
    """The repository's worktrees: resolved path -> checked-out ref ("" when detached)."""
    result = _git(root, "worktree", "list", "--porcelain", "-z")
    if result.returncode != 0:
        raise WorktreeError(f"git worktree list in {root}: {_first_line(result.stderr)}")
    found: dict[str, str] = {}
    where = ""
    for field in _nul_list(result.stdout):
        key, _, value = field.partition(" ")
        if key == "worktree":
            where = str(Path(value).resolve())
            found[where] = ""
        elif key == "branch" and where:
            found[where] = value
    return found
