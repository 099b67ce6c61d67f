"""Trusting a state dir: only one that is ours.

The state dir holds what orch runs (specs in orch.db become commands in panes) and where it
writes (controller.pid, controller.log). One that another local user made or can write into
could have planted an agent that a root `orch apply` then runs as root, or symlinks that make
orch overwrite someone else's files. So before anything reads or writes there: the folder must
belong to the invoking user and not be writable by group or others, and none of its entries
(nor those of agents/) may be a symlink or belong to someone else. Anything else is a one-line
refusal (exit 3) naming the problem; nothing is changed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reconciler.api.errors import Unavailable


class UntrustedStateDir(Unavailable):
    """The state dir, or a file in it, could have been planted by someone else."""


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state dir private to the user (0700), or check that an existing one is ours."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_state_dir(state_dir)
    make_private(state_dir, 0o700)
    return state_dir


def make_private(path: Path, mode: int) -> None:
    """chmod `path` to `mode` unless it has it already (a read-only state dir refuses a chmod,
    and one that needs none must still be readable)."""
    if stat.S_IMODE(os.lstat(path).st_mode) != mode:
        os.chmod(path, mode)


def read_only_folder(folder: Path) -> bool:
    """Whether nothing can be written in `folder` (a read-only mount, or no write permission)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False


def check_state_dir(state_dir: Path) -> None:
    """Raise UntrustedStateDir unless `state_dir` and its entries are the invoking user's own."""
    _check_folder(state_dir, "state dir")
    agents = state_dir / "agents"
    for entry in _entries(state_dir):
        _check_entry(entry)
    if agents.is_dir() and not agents.is_symlink():
        _check_folder(agents, "folder")
        for entry in _entries(agents):
            _check_entry(entry)


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open of a file in the state dir that never follows a symlink (O_NOFOLLOW)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError:
        if os.path.islink(path):
            raise UntrustedStateDir(f"refused: {path} is a symlink") from None
        raise


def _check_folder(folder: Path, what: str) -> None:
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UntrustedStateDir(f"refused: {what} {folder} is not a folder")
    _check_owner(folder, info)
    if info.st_mode & 0o022:
        raise UntrustedStateDir(
            f"refused: {what} {folder} is writable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); it must be private to you"
        )


def _check_entry(entry: Path) -> None:
    info = os.lstat(entry)
    if stat.S_ISLNK(info.st_mode):
        raise UntrustedStateDir(f"refused: {entry} in the state dir is a symlink")
    _check_owner(entry, info)


def _check_owner(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise UntrustedStateDir(
            f"refused: {path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})"
        )


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as error:
        raise UntrustedStateDir(f"refused: cannot list {folder}: {error.strerror}") from None
