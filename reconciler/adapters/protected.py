"""Which files of a workdir a guard protects, and what each holds, read from disk alone.

Guards compare what is on disk with a baseline, not with git, because everything git reports an
agent can change: a commit moves HEAD, `skip-worktree` and `.git/info/exclude` hide files from
`git status`, and `rm -rf .git` leaves nothing to ask. So the protected files are found by
walking the workdir: every file whose path (relative to the workdir) matches a guard's glob,
except what a `.gitignore` file ignores (build output such as `__pycache__/` under `tests/`) and
anything inside a `.git` folder or the state dir. `.gitignore` files are read from the repository
root recorded in the baseline down, so they keep working after `.git` is gone; `.git/info/exclude`
and the user's excludes file never count (an agent could add a protected folder to them).

A file is named by a digest of what it holds (its bytes, or a symlink's target); a digest is
reused while the file's stat (size, mtime, ctime, inode) is unchanged, as git's index does.
Every walk is bounded in entries, and a FIFO or device is never opened.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from reconciler.api.errors import OrchError
from reconciler.core.globmatch import first_match

#: Most directory entries one walk of a workdir looks at.
MAX_WALK_ENTRIES = 200_000
#: Largest `.gitignore` read; a bigger one is ignored as a whole (its rules do not apply).
MAX_GITIGNORE_BYTES = 256 * 1024

StatKey = tuple[int, int, int, int, int]


class ProtectedError(OrchError):
    """The workdir cannot be walked within the bounds (too many entries)."""


@dataclass(frozen=True)
class FileState:
    """What a protected path holds: `digest` of its bytes (or its symlink target), its mode bits
    (0 for a symlink) and its symlink target."""

    digest: str
    mode: int
    link: str | None = None


class DigestCache:
    """Digests of files by stat, so an unchanged file is not read again (one per agent)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[StatKey, FileState]] = {}

    def state(self, path: Path, info: os.stat_result) -> FileState:
        """What `path` holds; read only when its stat changed since the last call."""
        key = _stat_key(info)
        known = self._known.get(str(path))
        if known is not None and known[0] == key:
            return known[1]
        state = file_state(path, info)
        self._known[str(path)] = (key, state)
        return state

    def keep_only(self, paths: Iterable[Path]) -> None:
        """Forget files no longer seen (the cache stays as big as the protected set)."""
        keep = {str(p) for p in paths}
        self._known = {p: v for p, v in self._known.items() if p in keep}


def protected_files(
    workdir: Path,
    root: Path,
    rules: Sequence[Sequence[str]],
    skip: Sequence[Path] = (),
) -> dict[str, os.stat_result]:
    """Every protected file under `workdir` (path relative to it -> lstat), in a repository whose
    root is `root` (the workdir itself when unknown); `skip` folders are never entered."""
    skipped = {os.path.realpath(p) for p in skip}
    ignores = _IgnoreRules()
    for folder in _between(root, workdir):
        ignores.load(folder)
    found: dict[str, os.stat_result] = {}
    seen = 0
    for current, dirs, files in os.walk(workdir):
        here = Path(current)
        ignores.load(here)
        kept_dirs = []
        for name in sorted(dirs):
            path = here / name
            seen += 1
            if name == ".git" or os.path.realpath(path) in skipped:
                continue
            if path.is_symlink():
                files.append(name)  # a symlink to a folder is a file here: its target counts
            elif not ignores.ignored(path, is_dir=True):
                kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in files:
            seen += 1
            path = here / name
            local = path.relative_to(workdir).as_posix()
            if any(first_match(patterns, local) for patterns in rules) and not ignores.ignored(
                path, is_dir=False
            ):
                try:
                    found[local] = path.lstat()
                except FileNotFoundError:
                    continue  # gone while we looked: its absence is seen next time
        if seen > MAX_WALK_ENTRIES:
            raise ProtectedError(
                f"{workdir} has more than {MAX_WALK_ENTRIES} entries outside .gitignore: "
                "guard a smaller workdir"
            )
    return found


def file_state(path: Path, info: os.stat_result) -> FileState:
    """What `path` holds now (`info` is its lstat); never opens anything but a regular file."""
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        return FileState(_digest_bytes(b"link\0" + os.fsencode(target)), 0, target)
    if not stat.S_ISREG(info.st_mode):
        return FileState(f"special-{stat.S_IFMT(info.st_mode):o}", 0)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the lstat
            return FileState("special-changed", 0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return FileState(digest, stat.S_IMODE(info.st_mode))


def _digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stat_key(info: os.stat_result) -> StatKey:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


def _between(root: Path, workdir: Path) -> list[Path]:
    """The folders from `root` down to `workdir`'s parent (whose .gitignore files apply too)."""
    try:
        parts = workdir.relative_to(root).parts
    except ValueError:
        return []
    return [root.joinpath(*parts[:i]) for i in range(len(parts))]


class _IgnoreRules:
    """`.gitignore` files as git reads them: each applies to paths below its folder, a deeper
    file's decision wins, and a folder's own .gitignore is read before its entries."""

    def __init__(self) -> None:
        self._specs: dict[str, GitIgnoreSpec] = {}

    def load(self, folder: Path) -> None:
        path = folder / ".gitignore"
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_GITIGNORE_BYTES:
                return
            text = path.read_text(errors="surrogateescape")
        except OSError:
            return
        self._specs[str(folder)] = _gitignore(text)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        # Folders were loaded top-down, so their order is shallow to deep along any path.
        text = str(path)
        decision = False
        for folder, spec in self._specs.items():
            if not text.startswith(folder + os.sep):
                continue
            relative = text[len(folder) + 1 :] + ("/" if is_dir else "")
            include = spec.check_file(relative).include
            if include is not None:
                decision = include
        return decision


@functools.lru_cache(maxsize=256)
def _gitignore(text: str) -> GitIgnoreSpec:
    """A .gitignore's rules, compiled once per distinct text."""
    return GitIgnoreSpec.from_lines(text.splitlines())
