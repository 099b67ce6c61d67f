"""Putting protected paths back to their baseline, keeping the agent's version.

A restore never loses the agent's work and never reaches beyond the violating paths:

1. The baseline's version of each path is written beside it first (a temporary file, its bytes
   checked against the baseline's digest): a damaged copy stops the restore before any change.
2. Each protected file is exchanged with its baseline version in one step (renameat2
   RENAME_EXCHANGE): there is no moment without the file, and what the exchange takes away is
   the agent's last version, including a write still under way through an open descriptor. New
   files are renamed aside; a file the agent creates meanwhile is left for the next check.
3. The agent's versions are copied into a backup folder written as `.partial-…` and renamed to
   its final name once all of it is fsynced: a crash never leaves a torn backup under a real
   name (partial ones are removed by the next backup). Only then are the agent's versions
   deleted; if the backup fails they are put back and the error says nothing was restored.

Backups are pruned, oldest first, to MAX_BACKUPS and MAX_BACKUP_BYTES per agent, and are
deleted with the agent.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.adapters.atomic import sync_folder, write_atomic
from reconciler.adapters.baseline import (
    Baseline,
    BaselineError,
    Violation,
)
from reconciler.adapters.protected import FileState, file_state
from reconciler.core.globmatch import first_match

#: Most backups kept per agent, and most bytes they take together (the newest is always kept).
MAX_BACKUPS = 20
MAX_BACKUP_BYTES = 256 * 1024 * 1024
_RENAMEAT2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: Folder of copies of every violating file as the agent left it, under its workdir path.
FILES_NAME = "files"
#: What the backup holds and why, as JSON.
INDEX_NAME = "backup.json"


@dataclass(frozen=True)
class Backup:
    """Where the agent's version of restored paths was kept, and what was put back.

    `files` are the workdir paths copied under `dir/files/`; `restored` the paths put back to
    the baseline or removed; `again` those the agent wrote anew during the restore (checked on
    the next pass).
    """

    dir: Path
    files: tuple[str, ...]
    restored: tuple[str, ...]
    again: tuple[str, ...] = ()


def restore(
    workdir: Path,
    baseline: Baseline,
    violations: Sequence[Violation],
    backup_root: Path,
    when: datetime | float,
    how: str = "",
) -> Backup:
    """Keep the agent's version of the violating paths under `backup_root`, then put them back
    to `baseline` (new files removed, then folders left empty under a protected pattern)."""
    if not violations:
        raise ValueError("restore needs at least one violation")
    paths = sorted({v.local_path for v in violations})
    for path in paths:
        _check_relative(path)
    staged: dict[str, Path] = {}
    kept: dict[str, Path] = {}  # path -> the name that holds the agent's version now
    try:
        for path in paths:  # the baseline's versions first: a bad copy stops before any change
            wanted = baseline.files.get(path)
            if wanted is not None:
                staged[path] = _stage(workdir / path, baseline, wanted)
        again = []
        for path in paths:
            target = workdir / path
            if path not in staged:
                aside = _displace(target)
                if aside is not None:
                    kept[path] = aside
            elif _swap_in(staged[path], target):
                kept[path] = staged.pop(path)  # the exchange left the agent's version there
            elif not target.exists():
                again.append(path)
        try:
            folder, copied = _save(backup_root, kept, violations, when, how)
        except OSError as err:
            _undo(workdir, baseline, kept)
            kept.clear()
            raise BaselineError(
                f"could not back up the agent's changes, nothing restored: {err}"
            ) from err
    finally:
        for temporary in [*staged.values(), *kept.values()]:
            temporary.unlink(missing_ok=True)
    restored = [path for path in paths if path not in again]
    for path in restored:
        if path not in baseline.files:
            patterns = [v.pattern for v in violations if v.local_path == path]
            _remove_empty_parents(workdir, path, patterns)
    prune(backup_root, keep=folder)
    return Backup(folder, tuple(copied), tuple(restored), tuple(again))


def prune(backup_root: Path, keep: Path | None = None) -> None:
    """Remove partial backups, then the oldest beyond MAX_BACKUPS or MAX_BACKUP_BYTES."""
    if not backup_root.is_dir():
        return
    complete = []
    for entry in sorted(backup_root.iterdir()):
        if entry.name.startswith(".partial-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_dir() and not entry.is_symlink():
            complete.append(entry)
    total = 0
    for kept, folder in enumerate(reversed(complete), start=1):  # newest first: names sort by time
        total += _size(folder)
        if folder != keep and (kept > MAX_BACKUPS or total > MAX_BACKUP_BYTES):
            shutil.rmtree(folder, ignore_errors=True)


def _check_relative(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or "" in parts or ".git" in parts:
        raise ValueError(f"not a workdir-relative file path: {path!r}")


def _displace(target: Path) -> Path | None:
    """Rename `target` aside in its own folder; where it went (None: it was gone)."""
    aside = target.with_name(f".orch-displaced-{secrets.token_hex(6)}")
    try:
        os.rename(target, aside)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return aside


def _swap_in(staged: Path, target: Path) -> bool:
    """Put `staged` at `target` in one step. True: the two were exchanged (`staged` now holds
    what was at `target`); False: `target` was missing and `staged` was linked there (or the
    agent created it meanwhile: checked again next pass)."""
    try:
        _exchange(staged, target)
        return True
    except FileNotFoundError:
        pass
    with contextlib.suppress(FileExistsError):
        os.link(staged, target, follow_symlinks=False)
    return False


def _exchange(first: Path, second: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE): no moment without either file,
    and whatever the agent last wrote at `second` is what ends up at `first`. Where the kernel
    or file system cannot, `second` is renamed aside and `first` renamed to it."""
    error = errno.ENOSYS
    if _RENAMEAT2 is not None:
        names = (os.fsencode(first), os.fsencode(second))
        if _RENAMEAT2(_AT_FDCWD, names[0], _AT_FDCWD, names[1], _RENAME_EXCHANGE) == 0:
            return
        error = ctypes.get_errno()
    if error == errno.ENOENT:
        raise FileNotFoundError(error, os.strerror(error), str(second))
    if error not in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        raise OSError(error, os.strerror(error), str(second))
    aside = second.with_name(f".orch-displaced-{secrets.token_hex(6)}")
    os.rename(second, aside)
    os.rename(first, second)
    os.rename(aside, first)


def _undo(workdir: Path, baseline: Baseline, kept: dict[str, Path]) -> None:
    """The backup failed: give the agent its versions back (a newer write it made meanwhile
    stays where it is, nothing is deleted that differs from the baseline)."""
    for path, holder in kept.items():
        target = workdir / path
        wanted = baseline.files.get(path)
        if wanted is None:
            with contextlib.suppress(OSError):
                os.link(holder, target, follow_symlinks=False)
                holder.unlink()
            continue
        try:
            _exchange(holder, target)
        except OSError:
            continue
        if _holds(holder, wanted):
            holder.unlink(missing_ok=True)


def _holds(path: Path, wanted: FileState) -> bool:
    try:
        now = file_state(path, path.lstat())
    except OSError:
        return False
    return (now.digest, now.link) == (wanted.digest, wanted.link)


def _save(
    backup_root: Path,
    displaced: dict[str, Path],
    violations: Sequence[Violation],
    when: datetime | float,
    how: str,
) -> tuple[Path, list[str]]:
    """Write the backup under a partial name, fsync it, rename it to its final name."""
    backup_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(backup_root, 0o700)
    name = _backup_name(backup_root, when)
    partial = backup_root / f".partial-{name}"
    partial.mkdir(mode=0o700)
    files = partial / FILES_NAME
    copied = []
    for path, aside in sorted(displaced.items()):
        target = files / path
        _makedirs(target.parent, files)
        if aside.is_symlink():
            os.symlink(os.readlink(aside), target)
        elif aside.is_file():
            _copy(aside, target)
        else:
            continue  # a FIFO or device: nothing to keep
        copied.append(path)
    index = {
        "time": _moment(when).isoformat(),
        "how": how,
        "paths": {v.local_path: v.kind for v in violations},
    }
    write_atomic(partial / INDEX_NAME, json.dumps(index, indent=1).encode())
    for current, _dirs, _files in os.walk(partial, topdown=False):
        sync_folder(Path(current))
    final = backup_root / name
    os.rename(partial, final)
    sync_folder(backup_root)
    return final, copied


def _backup_name(backup_root: Path, when: datetime | float) -> str:
    """<UTC timestamp>-<n>, n counting up within the same second."""
    stamp = _moment(when).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 10_000):
        name = f"{stamp}-{n}"
        if not (backup_root / name).exists() and not (backup_root / f".partial-{name}").exists():
            return name
    raise OSError(f"too many backups in {backup_root} for {stamp}")


def _moment(when: datetime | float) -> datetime:
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return moment.astimezone(UTC)


def _stage(target: Path, baseline: Baseline, wanted: FileState) -> Path:
    """The baseline's version of `target` in a temporary file beside it, ready to be linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".orch-restore-{secrets.token_hex(6)}")
    if wanted.link is not None:
        os.symlink(wanted.link, temporary)
    else:
        _copy_blob(baseline.blob(wanted.digest), wanted.digest, temporary, wanted.mode)
    return temporary


def _copy_blob(blob: Path, digest: str, target: Path, mode: int) -> None:
    """Write the blob's bytes to `target` with `mode`, checking they are the baseline's."""
    check = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        try:
            with open(blob, "rb") as src:
                while chunk := src.read(1 << 20):
                    check.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            raise BaselineError(f"the guard baseline lost its copy {blob}") from None
        out.flush()
        os.fsync(out.fileno())
        os.fchmod(out.fileno(), mode)
    if check.hexdigest() != digest:
        target.unlink(missing_ok=True)
        raise BaselineError(f"the guard baseline's copy {blob} was changed: not restored")


def _copy(source: Path, target: Path) -> None:
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())


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


def _remove_empty_parents(workdir: Path, path: str, patterns: Sequence[str]) -> None:
    """Remove folders above `path` that are now empty and protected, up to the workdir."""
    parts = path.split("/")[:-1]
    while parts:
        folder = "/".join(parts)
        if first_match(patterns, folder) is None:
            return
        try:
            (workdir / folder).rmdir()
        except OSError:
            return  # not empty (or gone): stop climbing
        parts.pop()


def _size(folder: Path) -> int:
    total = 0
    for current, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(current) / name).lstat().st_size
            except OSError:
                continue
    return total


# -- messages ------------------------------------------------------------------------------------


def event_message(
    violations: Sequence[Violation],
    backup: Backup | None,
    details: Mapping[str, str] | None = None,
    note: str = "",
) -> str:
    """One line for the `ProtectedFileRestored` (or alert) Warning event: each path, how it
    changed (`details`: workdir path -> "committed in abc1234"…), and `note` (".git removed")."""
    changes = ", ".join(
        f"{v.local_path} ({_how(v, details)}guards[{v.rule_index}] {v.pattern})"
        for v in _by_path(violations)
    )
    noted = f"; {note}" if note else ""
    if backup is None:
        return f"protected paths changed since the agent started: {changes}{noted}"
    return (
        f"restored to their content when the agent started: {changes}{noted}; "
        f"the agent's version is kept in {backup.dir}"
    )


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
        lines.append(
            f"They were restored to what they were when you started. Your version was kept in "
            f"{backup.dir}"
        )
        lines.append("Do not change these paths; ask a person if the change is needed.")
    return "\n".join(lines)


def _how(violation: Violation, details: Mapping[str, str] | None) -> str:
    detail = (details or {}).get(violation.local_path)
    return f"{violation.kind}, {detail}, " if detail else f"{violation.kind}, "


def _by_path(violations: Sequence[Violation]) -> list[Violation]:
    seen: dict[str, Violation] = {}
    for violation in violations:
        seen.setdefault(violation.local_path, violation)
    return [seen[path] for path in sorted(seen)]
