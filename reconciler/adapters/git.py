"""The git adapter: what git says about guarded paths, and worktrees per agent.

This is the only module that runs git. Every call is one `git -C DIR ...` argument list (never a
shell) with a timeout, `--literal-pathspecs` so a file named `*` or `:(top)` is only itself, `--`
before paths, hooks and fsmonitor switched off, and the caller's GIT_DIR-style variables dropped,
so the repository git works on is the workdir's and nothing the repository configures runs.

Guards do not take git's word for what changed (see `baseline`): git only says where the
repository is, which commits carried a change (for the message), and keeps the index tidy after a
restore (skip-worktree/assume-unchanged bits cleared, what the agent staged unstaged).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.api.errors import OrchError
from reconciler.core.globmatch import parse_porcelain

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


#: Most paths whose commits one guard message names.
MAX_DESCRIBED = 20


class GuardError(OrchError):
    """git is missing, failed or timed out."""


# -- what git says about guarded paths ----------------------------------------------------------


def repository(workdir: Path) -> tuple[Path, str] | None:
    """The repository root of `workdir` and the workdir's path inside it (`sub/` or ""), or
    None outside a git work tree."""
    return _repo(workdir)


def head_commit(root: Path) -> str | None:
    """The commit HEAD names, or None in a repository without commits."""
    result = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return os.fsdecode(result.stdout).strip() or None if result.returncode == 0 else None


def commits_since(root: Path, since: str | None, paths: Sequence[str]) -> dict[str, str]:
    """For each of `paths` (repository-relative) changed by a commit made after `since`: the
    newest such commit, abbreviated. At most MAX_DESCRIBED paths are looked up."""
    head = head_commit(root)
    if head is None or head == since:
        return {}
    found = {}
    revs = [f"{since}..HEAD"] if since else ["HEAD"]
    for path in sorted(paths)[:MAX_DESCRIBED]:
        result = _git(root, "log", "-1", "--format=%h", *revs, "--", path)
        commit = os.fsdecode(result.stdout).strip() if result.returncode == 0 else ""
        if commit:
            found[path] = commit
    return found


def unhide(root: Path, paths: Sequence[str]) -> dict[str, str]:
    """Clear `skip-worktree` and `assume-unchanged` on `paths` (with either set, `git status`
    takes the index's word for the file); which were set, path -> the bit."""
    if not paths:
        return {}
    result = _git(root, "ls-files", "-z", "-v", "--full-name", "--", *paths)
    if result.returncode != 0:
        raise GuardError(f"git ls-files failed in {root}: {_first_line(result.stderr)}")
    hidden = {}
    for entry in _nul_list(result.stdout):
        tag, _, path = entry.partition(" ")
        if tag == "S":
            hidden[path] = "skip-worktree"
        elif tag.islower():
            hidden[path] = "assume-unchanged"
    # One flag per call: git applies only the last of the two when given both.
    for flag in ("--no-skip-worktree", "--no-assume-unchanged") if hidden else ():
        result = _git(root, "update-index", flag, "--", *hidden)
        if result.returncode != 0:
            raise GuardError(f"git update-index failed in {root}: {_first_line(result.stderr)}")
    return hidden


def sync_index(root: Path, restored: Sequence[str], removed: Sequence[str]) -> None:
    """After a restore: unstage what the agent staged of `restored` paths that are HEAD's again,
    and drop `removed` new files from the index (committed ones stay: a person sees the revert)."""
    if head_commit(root) is None:
        staged_new = list(removed)
        unchanged: list[str] = []
    else:
        in_head = _in_head(root, [*restored, *removed])
        staged_new = [p for p in removed if p not in in_head]
        differ = (
            _git(root, "diff", "--name-only", "-z", "HEAD", "--", *restored) if restored else None
        )
        if differ is not None and differ.returncode != 0:
            raise GuardError(f"git diff failed in {root}: {_first_line(differ.stderr)}")
        changed = set(_nul_list(differ.stdout)) if differ is not None else set()
        unchanged = [p for p in restored if p in in_head and p not in changed]
    if unchanged:
        result = _git(root, "reset", "-q", "HEAD", "--", *unchanged)
        if result.returncode != 0:
            raise GuardError(f"git reset failed in {root}: {_first_line(result.stderr)}")
    if staged_new:
        result = _git(root, "rm", "--cached", "-q", "--ignore-unmatch", "--", *staged_new)
        if result.returncode != 0:
            raise GuardError(f"git rm --cached failed in {root}: {_first_line(result.stderr)}")


def _in_head(root: Path, paths: Sequence[str]) -> set[str]:
    """Which of `paths` are files in HEAD."""
    if not paths:
        return set()
    result = _git(root, "ls-tree", "-r", "-z", "--name-only", "--full-tree", "HEAD", "--", *paths)
    if result.returncode != 0:
        raise GuardError(f"git ls-tree failed in {root}: {_first_line(result.stderr)}")
    return set(_nul_list(result.stdout)) & set(paths)


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
