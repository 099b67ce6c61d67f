"""Patterns from manifests and profiles, compiled with RE2: matching takes linear time.

Every pattern orch runs (prompts, humanPatterns, rateLimit.patterns, ignore, startup.ready,
fileMatches gates and `when`, the built-in profiles) searches text an agent wrote. Python's
backtracking `re` can take exponential time on a pattern like `^(\\w+\\s?)+$`, and a search
holds the GIL, so one such pattern froze the whole controller. RE2 (google-re2) guarantees time
linear in the text and refuses what it cannot do that way (look-around, back-references): those
are validation errors when a manifest is applied.

Python spellings RE2 lacks are translated: `\\uXXXX`, `\\UXXXXXXXX` and `\\Z`. Patterns are
searched with `^` and `$` anchoring lines. RE2's `\\w`, `\\d`, `\\s` and `\\b` are ASCII-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Protocol, cast

import re2

#: Longer patterns are refused: no screen or file pattern needs more.
MAX_PATTERN_LENGTH = 4096
#: Memory RE2 may use for one compiled pattern; a pattern that needs more is refused.
MAX_PATTERN_MEMORY = 8 << 20


class Match(Protocol):
    """The part of a match orch reads."""

    def start(self, group: int = 0) -> int: ...


class Regex(Protocol):
    """A compiled pattern: the methods orch uses, with `re`'s meaning."""

    def search(self, text: str) -> Match | None: ...

    def finditer(self, text: str) -> Iterator[Match]: ...

    def sub(self, replacement: str, text: str) -> str: ...


def compile_pattern(pattern: str) -> Regex:
    """`pattern` compiled for line-wise search; ValueError with RE2's reason when it is refused."""
    return _compiled(pattern)


def check_pattern(pattern: str) -> str:
    """Return `pattern` when it compiles; raise ValueError saying why not."""
    compile_pattern(pattern)
    return pattern


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Regex:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    translated = _translated(pattern)
    try:
        return cast(Regex, re2.compile("(?m)" + translated, options))
    except re2.error as error:
        reason = error.args[0] if error.args else "not a valid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(str(reason).replace("(?m)" + translated, pattern)) from None


_HEX = frozenset("0123456789abcdefABCDEF")


def _translated(pattern: str) -> str:
    """`pattern` with Python's `\\uXXXX`, `\\UXXXXXXXX` and `\\Z` in RE2's spelling."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char != "\\" or index + 1 == len(pattern):
            out.append(char)
            index += 1
            continue
        escape = pattern[index + 1]
        width = {"u": 4, "U": 8}.get(escape, 0)
        digits = pattern[index + 2 : index + 2 + width]
        if width and len(digits) == width and set(digits) <= _HEX:
            out.append(f"\\x{{{digits}}}")
            index += 2 + width
            continue
        out.append("\\z" if escape == "Z" else pattern[index : index + 2])
        index += 2
    return "".join(out)
