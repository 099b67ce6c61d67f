"""Finding each agent CLI's own usage record on disk, and reading what was added since last time.

Where the CLIs keep them (as the real CLIs were seen to, see e2e/FINDINGS-*.md):

- Claude Code: `$CLAUDE_CONFIG_DIR` or `~/.claude`, `projects/<workdir with every non-alphanumeric
  character as "-">/<session id>.jsonl`.
- Codex: `$CODEX_HOME` or `~/.codex`, `sessions/YYYY/MM/DD/rollout-*.jsonl`; the first line's
  `session_meta` names the session's `cwd`.
- Gemini CLI: `~/.gemini/tmp/<project>/chats/session-*.jsonl`; the first line's `projectHash` is
  the SHA-256 of the workdir.
- aider: `.aider.chat.history.md` in the workdir.

`~` is the agent's `HOME` (its spec's env, else the controller's). Reading is incremental: the
caller keeps a byte offset per file and gets only whole lines added after it, at most
`MAX_READ_BYTES` per call, so a huge transcript is read over several passes, never whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path

#: The most read from one file in one call; the rest waits for the next.
MAX_READ_BYTES = 4 << 20
#: The most bytes of a file's first line read to learn whose session it is.
MAX_HEADER_BYTES = 64 << 10
#: The most session files looked at per agent and call (newest first).
MAX_FILES = 200


def transcript_files(
    profile: str, workdir: str, env: Mapping[str, str], since: float
) -> list[Path]:
    """The usage records of `profile`'s CLI for an agent in `workdir`, changed since `since`."""
    home = Path(env.get("HOME") or Path.home())
    if profile == "claude":
        root = Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude")
        found = _recent((root / "projects" / re.sub(r"[^A-Za-z0-9]", "-", workdir)).glob("*.jsonl"))
    elif profile == "codex":
        root = Path(env.get("CODEX_HOME") or home / ".codex") / "sessions"
        found = [p for p in _recent(_codex_days(root, since)) if _codex_cwd(p) == workdir]
    elif profile == "gemini":
        digest = hashlib.sha256(workdir.encode()).hexdigest()
        sessions = (home / ".gemini" / "tmp").glob("*/chats/session-*.jsonl")
        found = [p for p in _recent(sessions) if _header(p).get("projectHash") == digest]
    elif profile == "aider":
        found = [Path(workdir) / ".aider.chat.history.md"]
    else:
        return []
    return [p for p in found if _mtime(p) >= since]


def read_new_lines(path: Path, offset: int) -> tuple[list[tuple[int, str]], int]:
    """Whole lines added after `offset`, each with its own offset, and the offset to keep.

    A file that shrank was replaced or truncated: it is read again from the start.
    """
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < offset:
                offset = 0
            file.seek(offset)
            data = file.read(min(size - offset, MAX_READ_BYTES))
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = []
    position = offset
    for raw in data[:end].splitlines(keepends=True):
        lines.append((position, raw.decode("utf-8", "replace").rstrip("\r\n")))
        position += len(raw)
    return lines, offset + end


def _recent(paths: Iterator[Path]) -> list[Path]:
    """At most MAX_FILES of `paths`, newest first."""
    return sorted(paths, key=_mtime, reverse=True)[:MAX_FILES]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _codex_days(root: Path, since: float) -> Iterator[Path]:
    """Rollout files in the date folders from `since` to tomorrow (time zones differ)."""
    first = date.fromtimestamp(max(since, 0)) - timedelta(days=1)
    last = date.today() + timedelta(days=1)
    days = min((last - first).days, 400)
    for n in range(days + 1):
        day = first + timedelta(days=n)
        yield from (root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}").glob("rollout-*.jsonl")


def _codex_cwd(path: Path) -> str:
    payload = _header(path).get("payload")
    return str(payload.get("cwd", "")) if isinstance(payload, dict) else ""


def _header(path: Path) -> dict[str, object]:
    """The first line of a JSONL file as an object ({} when it is not one)."""
    try:
        with open(path, "rb") as file:
            line = file.readline(MAX_HEADER_BYTES)
        data = json.loads(line)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
