"""Pure helpers of guards: gitignore-style globs and git's porcelain status, with no git or files.

The globs in a guard's `protect` list follow gitignore, relative to the agent's workdir, because
that is the syntax people already write for "these paths". Matching is `pathspec`'s gitignore
implementation (what git itself does), with three choices of orch's on top:

- A leading `./` is dropped (`./SPRINT.md` is `SPRINT.md`); a leading `#` and trailing spaces
  are part of the name (a manifest has no comments in its globs), and other trailing whitespace
  is refused by the manifest's validation.
- `!` negation is not supported: a leading `!` is a literal character.
- An unterminated `[` is a literal character (git would match nothing, silently).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from pathspec.patterns.gitignore.base import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern


def glob_match(pattern: str, path: str) -> bool:
    """Whether `path` (relative, `/`-separated, no leading `./`) matches the gitignore glob."""
    compiled = _compile(pattern)
    return compiled is not None and bool(path) and compiled.match_file(path) is not None


def first_match(patterns: Sequence[str], path: str) -> str | None:
    """The first of `patterns` that matches `path`, if any."""
    return next((pattern for pattern in patterns if glob_match(pattern, path)), None)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> GitIgnoreSpecPattern | None:
    """The compiled glob; None for a pattern that matches nothing (empty, or only slashes)."""
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if not pattern.strip("/"):
        return None
    if pattern.startswith(("!", "#")):
        pattern = "\\" + pattern
    stripped = pattern.rstrip(" ")
    pattern = stripped + "\\ " * (len(pattern) - len(stripped))
    for candidate in (pattern, pattern.replace("[", "\\[")):  # an unterminated class: literal
        try:
            compiled = GitIgnoreSpecPattern(candidate)
        except GitIgnorePatternError:  # e.g. a trailing lone backslash: it can match nothing
            return None
        if compiled.include is not None:
            return compiled
    return None


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
