"""Pure helpers of guards: gitignore-style globs and git's porcelain status, with no git or files.

The globs in a guard's `protect` list follow gitignore, relative to the agent's workdir, because
that is the syntax people already write for "these paths":

- `*` matches anything but `/`, `?` one character but `/`, `[abc]`, `[a-z]`, `[!a]` a class;
  a backslash makes the next character literal.
- A pattern with no slash (other than a trailing one) matches at any depth: `SPRINT.md` is
  also `docs/SPRINT.md`; `secret*` matches any file or folder whose name starts with `secret`.
- A pattern with a slash at its start or in its middle is anchored to the workdir: `src/*.py` is
  `src/app.py` but not `lib/src/app.py` (nor `src/sub/app.py`: `*` stops at `/`).
- `**/` matches zero or more folders (`**/secret*`, `a/**/b`), a trailing `/**` everything inside
  (`tests/**`); `**` anywhere else is a plain `*`.
- A pattern that matches a folder matches everything under it (`tests` protects `tests/a.py`);
  a trailing slash (`build/`) matches only folders, so it protects what is under them.
- A leading `./` is dropped, a leading `/` only anchors. `!` negation is not supported: a leading
  `!` is a literal character.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass


def glob_match(pattern: str, path: str) -> bool:
    """Whether `path` (relative, `/`-separated, no leading `./`) matches the gitignore glob."""
    compiled = _compile(pattern)
    if compiled is None or not path:
        return False
    regex, dirs_only = compiled
    parts = path.split("/")
    # The path itself, unless the pattern names folders only; then every folder above it.
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts))]
    if not dirs_only:
        candidates.append(path)
    return any(regex.fullmatch(candidate) for candidate in candidates)


def first_match(patterns: Sequence[str], path: str) -> str | None:
    """The first of `patterns` that matches `path`, if any."""
    return next((pattern for pattern in patterns if glob_match(pattern, path)), None)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> tuple[re.Pattern[str], bool] | None:
    """The regex of a pattern and whether it matches folders only; None for an empty pattern."""
    while pattern.startswith("./"):
        pattern = pattern[2:]
    dirs_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    if not pattern:
        return None
    segments = pattern.split("/")
    out = [] if anchored else ["(?:.*/)?"]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out.append(".+" if last else "(?:.*/)?")
            continue
        out.append(_segment(segment))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL), dirs_only


def _segment(segment: str) -> str:
    """One path component of a glob as a regex (no `/` inside)."""
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif char == "[":
            end, klass = _char_class(segment, i)
            if klass is None:
                out.append(re.escape(char))
            else:
                out.append(klass)
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _char_class(segment: str, start: int) -> tuple[int, str | None]:
    """Parse `[...]` at `start`: the index of its `]` and its regex, or None if unterminated."""
    i = start + 1
    negate = i < len(segment) and segment[i] in "!^"
    if negate:
        i += 1
    body: list[str] = []
    first = True
    while i < len(segment):
        char = segment[i]
        if char == "]" and not first:
            inner = "".join(body)
            return i, f"(?!/)[{'^' if negate else ''}{inner}]"
        if char == "\\" and i + 1 < len(segment):
            i += 1
            char = segment[i]
        if char == "-" and body and i + 1 < len(segment) and segment[i + 1] != "]":
            body.append("-")
        else:
            body.append(re.escape(char))
        first = False
        i += 1
    return start, None


# -- git status --porcelain=v1 -z --------------------------------------------------------------


@dataclass(frozen=True)
class StatusEntry:
    """One line of `git status --porcelain=v1 -z`: index (x) and worktree (y) codes and the path.

    `orig_path` is the source of a rename or copy (`R`/`C`), which git prints after the entry.
    Paths are relative to the repository root, decoded like file names (surrogateescape).
    """

    x: str
    y: str
    path: str
    orig_path: str | None = None

    @property
    def untracked(self) -> bool:
        """A file git does not track (`??`)."""
        return self.x == "?" and self.y == "?"


def parse_porcelain(data: bytes) -> list[StatusEntry]:
    """Parse NUL-separated porcelain v1 output; ignored (`!!`) entries are skipped."""
    fields = data.split(b"\0")
    entries: list[StatusEntry] = []
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4 or field[2:3] != b" ":
            continue  # the empty tail after the last NUL, or something we do not understand
        x, y = chr(field[0]), chr(field[1])
        path = _decode(field[3:])
        orig = None
        if x in "RC" or y in "RC":
            orig = _decode(fields[i]) if i < len(fields) else None
            i += 1
        if x == "!" and y == "!":
            continue
        entries.append(StatusEntry(x, y, path, orig))
    return entries


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
