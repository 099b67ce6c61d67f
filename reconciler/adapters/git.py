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

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

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


# -- noticing changes ----------------------------------------------------------------------------

#: watchdog event types that mean something in a workdir was written, created, moved or deleted.
CHANGE_EVENTS = {
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_CLOSED,
}


class GuardWatcher(FileSystemEventHandler):
    """Wakes the controller when anything under a guarded workdir changes, outside `.git/`.

    The wake-up carries no state: the pass that follows runs `find_violations`, so a missed event
    costs at most the one-second safety pass. Wake-ups are at most one per `min_interval` (a build
    writing thousands of files costs a few passes, not thousands), the last one always delivered.
    `ignore` holds folders whose writes never wake it: the state dir, when it lies inside a
    workdir, is written on every pass and would otherwise wake the loop forever.
    """

    def __init__(
        self, wake: Callable[[], None], ignore: Iterable[Path] = (), min_interval: float = 0.05
    ) -> None:
        self._wake = wake
        self._ignore = tuple(os.path.realpath(folder) for folder in ignore)
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._changed: set[Path] = set()
        self._last = 0.0
        self._timer: threading.Timer | None = None
        # Watches are on resolved paths (inotify does not follow a symlinked root); events are
        # reported under the spellings the caller gave.
        self._watches: dict[str, object] = {}
        self._spellings: dict[str, set[Path]] = {}
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, workdirs: Iterable[Path]) -> None:
        """Watch exactly these workdirs, recursively (missing ones are skipped)."""
        spellings: dict[str, set[Path]] = {}
        for workdir in workdirs:
            spellings.setdefault(os.path.realpath(workdir), set()).add(Path(workdir))
        with self._lock:
            self._spellings = spellings
            current = set(self._watches)
        for real in current - set(spellings):
            with contextlib.suppress(KeyError, ValueError):
                self._observer.unschedule(self._watches[real])  # type: ignore[arg-type]
            with self._lock:
                del self._watches[real]
        for real in set(spellings) - current:
            if not os.path.isdir(real):
                continue
            try:
                handle = self._observer.schedule(self, real, recursive=True)
            except OSError as err:  # inotify limits: the every-pass check still covers it
                log.warning("cannot watch %s for guards: %s", real, err)
                continue
            with self._lock:
                self._watches[real] = handle

    def take_changed(self) -> set[Path]:
        """Workdirs that changed since the last call (as given to `watch`), and forget them."""
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        """A change under a watched workdir: note which one and wake the loop."""
        if event.event_type not in CHANGE_EVENTS:
            return  # opens and reads are not changes
        paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        hit: set[Path] = set()
        with self._lock:
            watched = {real: set(given) for real, given in self._spellings.items()}
        for path in filter(None, paths):
            if any(_inside(path, folder) is not None for folder in self._ignore):
                continue
            for real, given in watched.items():
                inside = _inside(path, real)
                if inside is not None and ".git" not in inside.split(os.sep):
                    hit |= given
        if hit:
            with self._lock:
                self._changed |= hit
            self._poke()

    def _poke(self) -> None:
        with self._lock:
            wait = self._last + self._min_interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._fire_later)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._wake()

    def _fire_later(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._wake()

    def stop(self) -> None:
        """Stop the watcher thread and any pending wake-up."""
        self._observer.stop()
        self._observer.join(timeout=5)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def _inside(path: str, folder: str) -> str | None:
    """`path` relative to `folder` ("" for the folder itself), or None when outside it."""
    if path == folder:
        return ""
    return path[len(folder) + 1 :] if path.startswith(folder + os.sep) else None


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
