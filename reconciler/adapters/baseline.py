"""The guard baseline: the protected files of an agent's workdir as they were when orch started
the agent for its current spec generation, kept under the state dir.

Why a copy under the state dir and not a ref in the repository: the baseline must outlive
everything the agent can do to the repository (`rm -rf .git`, a rewritten ref, `git gc`), and a
restore must give back the exact bytes and mode bits without git. Content is stored once per
digest (`blobs/<sha256>`, 0600), so a new generation's baseline of unchanged files costs nothing,
and `baseline.json` names the files, their digests and modes, the repository root and HEAD then.
Every file is written to a temporary name and renamed, so a crashed controller leaves the
previous baseline or the new one, never half of one. `baseline.json` is fsynced; blobs are not
(an fsync each would hold a launch for seconds with a few hundred protected files): after a
power loss a blob may be short, and a restore checks every blob against its digest and refuses
rather than put back the wrong bytes.

One baseline per agent: the one of (uid, generation) it was taken for. A new generation (the
user applied a changed spec) or a new object of the same name (deleted and applied again) gets a
new one; a restart of the same generation, or a controller restart, keeps it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.adapters.atomic import write_atomic
from reconciler.adapters.protected import DigestCache, FileState, file_state, protected_files
from reconciler.api.errors import OrchError
from reconciler.core.globmatch import first_match

#: Most files one baseline holds, and most bytes it copies.
MAX_BASELINE_FILES = 20_000
MAX_BASELINE_BYTES = 512 * 1024 * 1024
#: The folder of an agent's guard files under its agent dir.
GUARD_DIR = "guard"
_DIGEST = re.compile(r"[0-9a-f]{64}")

Kind = Literal["modified", "deleted", "added"]


class BaselineError(OrchError):
    """A baseline cannot be recorded, read or used (too big, unreadable, corrupt)."""


@dataclass(frozen=True)
class Baseline:
    """The protected files of a workdir at a moment: local path -> FileState.

    `root` is the repository root then (where `.gitignore` files are read from), `head` its
    HEAD commit (None without commits or outside git), `folder` where the blobs are kept.
    """

    uid: str
    generation: int
    workdir: Path
    root: Path
    head: str | None
    recorded_at: float
    files: dict[str, FileState]
    folder: Path

    @property
    def key(self) -> tuple[str, int]:
        return (self.uid, self.generation)

    def blob(self, digest: str) -> Path:
        """The kept copy of the bytes with `digest`."""
        if not _DIGEST.fullmatch(digest):
            raise BaselineError(f"not a content digest: {digest!r}")
        return self.folder / "blobs" / digest


@dataclass(frozen=True)
class Violation:
    """A protected path that differs from the baseline.

    `local_path` is relative to the agent's workdir (what its globs see); `path` is relative to
    the repository root (what git uses). A path matched by several rules gives one Violation per
    rule, `pattern` being the rule's first glob that matched.
    """

    path: str
    kind: Kind
    rule_index: int
    pattern: str
    local_path: str


def load(guard_dir: Path) -> Baseline | None:
    """The recorded baseline, or None when there is none (BaselineError when it is unreadable)."""
    path = guard_dir / "baseline.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise BaselineError(f"cannot read the guard baseline {path}: {err}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            data: dict[str, Any] = json.loads(f.read())
        return Baseline(
            uid=str(data["uid"]),
            generation=int(data["generation"]),
            workdir=Path(data["workdir"]),
            root=Path(data["root"]),
            head=data["head"] and str(data["head"]),
            recorded_at=float(data["recordedAt"]),
            files={
                str(name): FileState(str(d), int(mode), None if link is None else str(link))
                for name, (d, mode, link) in data["files"].items()
            },
            folder=guard_dir,
        )
    except (ValueError, KeyError, TypeError) as err:
        raise BaselineError(f"the guard baseline {path} is corrupt: {err}") from None


def record(
    guard_dir: Path,
    key: tuple[str, int],
    workdir: Path,
    root: Path,
    head: str | None,
    rules: Sequence[Sequence[str]],
    skip: Sequence[Path] = (),
) -> Baseline:
    """Copy the protected files of `workdir` under `guard_dir` and make them the baseline of
    `key` (uid, generation); blobs no longer named by it are removed."""
    found = protected_files(workdir, root, rules, skip)
    if len(found) > MAX_BASELINE_FILES:
        raise BaselineError(
            f"guards protect {len(found)} files in {workdir}, more than {MAX_BASELINE_FILES}"
        )
    blobs = guard_dir / "blobs"
    _private_dirs(blobs)
    files: dict[str, FileState] = {}
    total = 0
    for local, info in sorted(found.items()):
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > MAX_BASELINE_BYTES:
                raise BaselineError(
                    f"guards protect more than {MAX_BASELINE_BYTES // 2**20} MiB in {workdir}"
                )
            state = _keep_blob(workdir / local, info, blobs)
        else:
            state = file_state(workdir / local, info)
        if state is not None:
            files[local] = state
    baseline = Baseline(key[0], key[1], workdir, root, head, time.time(), files, guard_dir)
    document = {
        "uid": baseline.uid,
        "generation": baseline.generation,
        "workdir": str(workdir),
        "root": str(root),
        "head": head,
        "recordedAt": baseline.recorded_at,
        "files": {name: [s.digest, s.mode, s.link] for name, s in files.items()},
    }
    write_atomic(guard_dir / "baseline.json", json.dumps(document).encode())
    named = {s.digest for s in files.values()}
    for blob in blobs.iterdir():
        if blob.name not in named:
            blob.unlink(missing_ok=True)
    return baseline


def compare(
    baseline: Baseline,
    workdir: Path,
    rules: Sequence[Sequence[str]],
    prefix: str,
    cache: DigestCache,
    skip: Sequence[Path] = (),
) -> list[Violation]:
    """Protected paths that differ from the baseline, sorted by rule, then path.

    A file of the baseline counts wherever it is (a `.gitignore` added later does not hide its
    change); a new file counts unless a `.gitignore` ignores it. `prefix` is the workdir's path in
    the repository (`sub/` or ""), to name paths as git does.
    """
    found = protected_files(workdir, baseline.root, rules, skip)
    for local in baseline.files:
        if local not in found and any(first_match(p, local) for p in rules):
            try:
                found[local] = (workdir / local).lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
    changed: dict[str, Kind] = {}
    for local, info in found.items():
        now = cache.state(workdir / local, info)
        before = baseline.files.get(local)
        if before is None:
            changed[local] = "added"
        elif (now.digest, now.mode, now.link) != (before.digest, before.mode, before.link):
            changed[local] = "modified"
    for local in baseline.files:
        if local not in found and any(first_match(p, local) for p in rules):
            changed[local] = "deleted"
    cache.keep_only(workdir / local for local in found)
    violations = []
    for local, kind in sorted(changed.items()):
        for index, patterns in enumerate(rules):
            pattern = first_match(patterns, local)
            if pattern is not None:
                violations.append(Violation(prefix + local, kind, index, pattern, local))
    return sorted(violations, key=lambda v: (v.rule_index, v.path))


def remove_guard_files(agent_dir: Path) -> None:
    """Delete an agent's baseline and backups (the agent is being forgotten)."""
    for name in (GUARD_DIR, "backups"):
        shutil.rmtree(agent_dir / name, ignore_errors=True)


def _keep_blob(source: Path, info: os.stat_result, blobs: Path) -> FileState | None:
    """Copy a regular file into `blobs` under the digest of exactly the bytes copied."""
    temporary = blobs / f".incoming-{os.getpid()}"
    digest = hashlib.sha256()
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None  # gone while we looked: not part of the baseline
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return file_state(source, source.lstat())
        out_fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(out_fd, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    name = digest.hexdigest()
    os.replace(temporary, blobs / name)
    return FileState(name, stat.S_IMODE(info.st_mode))


def _private_dirs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (folder, folder.parent):
        os.chmod(path, 0o700)
