"""Pure: a usage limit that an agent CLI reports only in its own debug log (Gemini CLI).

Gemini CLI 0.61 shows nothing of a per-minute 429 on screen, in its title or its hooks: it retries
by itself, and only its debug log (`GEMINI_DEBUG_LOG_FILE`) says so, one entry per failed attempt
(tests/fixtures/signals/gemini/debug-log-429.txt):

    [2026-11-30T14:12:32.092Z] [WARN] Attempt 1 failed: You exceeded your current quota, …
    * Quota exceeded for metric: …, limit: 10, model: gemini-2.5-flash
    Please retry in 27.418791237s.
    Suggested retry after 27s.. Retrying after 28723ms...

Only WARN and ERROR entries count (the log's DEBUG entries may echo anything, the user's prompt
included), matched against the profile's and the spec's limit patterns. Every such entry is a new
limit: the caller passes only lines written since it last read, and the log starts empty at each
launch, so history never counts. Lines are clipped to LINE_CHARS and an entry to ENTRY_LINES.

The CLI retries on its own, so the truthful cooldown lasts until its own next attempt has had time
to answer (`Retrying after Nms` plus RETRY_OUTCOME_SECONDS), or else until the reset it was told
(`Please retry in …`); a further failed attempt is a further entry and extends it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from reconciler.api.manifest import AgentSpec
from reconciler.api.regex import compile_pattern
from reconciler.core.profiles import profile_for
from reconciler.core.resettime import parse_reset_time
from reconciler.core.screen import LINE_CHARS

#: Lines of one log entry looked at (its header and what follows it).
ENTRY_LINES = 20
#: How long after the CLI's own retry its outcome may take to show (a failure is a new entry).
RETRY_OUTCOME_SECONDS = 10.0
#: The longest own retry believed (a larger figure is not a retry the CLI will make soon).
MAX_RETRY_MS = 24 * 3600 * 1000
#: The header of a log entry: `[<ISO time>] [LEVEL] …`.
_HEADER = re.compile(r"^\[\d{4}-\d\d-\d\dT[0-9:.]{1,20}Z?\] \[([A-Z]{1,10})\]")
#: The CLI's own countdown to its next attempt.
_OWN_RETRY = re.compile(r"\bRetrying after (\d{1,9})\s?ms\b")
_COUNTED_LEVELS = ("WARN", "ERROR")


@dataclass(frozen=True, slots=True)
class LogLimit:
    """A limit the CLI's log reported: its line, and when the cooldown it calls for ends."""

    text: str
    until: float | None
    """Epoch seconds; None: the log names no time (the spec's cooldown applies)."""
    retrying: bool
    """The CLI said it retries by itself (orch then types no resume text)."""


def limit_in_log(lines: Iterable[str], spec: AgentSpec, now: datetime) -> LogLimit | None:
    """The newest limit among `lines` (new lines of the CLI's debug log, read at `now`)."""
    patterns = tuple(
        compile_pattern(pattern)
        for pattern in (
            *profile_for(spec.profile).rate_limit_patterns,
            *(spec.rate_limit.patterns if spec.rate_limit else ()),
        )
    )
    if not patterns:
        return None
    newest: LogLimit | None = None
    for entry in _entries(lines):
        text = "\n".join(entry)
        matched = next((m for p in patterns if (m := p.search(text)) is not None), None)
        if matched is not None:
            newest = _limit(entry, text, text.count("\n", 0, matched.start()), now)
    return newest


def _entries(lines: Iterable[str]) -> Iterable[list[str]]:
    """WARN and ERROR entries: a header line and the lines up to the next header (clipped)."""
    entry: list[str] | None = None
    for raw in lines:
        # (lone surrogates, which no pattern engine encodes, become "?")
        line = raw[:LINE_CHARS].encode("utf-8", "replace").decode("utf-8")
        header = _HEADER.match(line)
        if header is not None:
            if entry:
                yield entry
            entry = [line] if header.group(1) in _COUNTED_LEVELS else None
        elif entry is not None and len(entry) < ENTRY_LINES:
            entry.append(line)
    if entry:
        yield entry


def _limit(entry: list[str], text: str, line: int, now: datetime) -> LogLimit:
    reset = parse_reset_time(text, now)
    own = _OWN_RETRY.search(text)
    times = [reset.timestamp()] if reset is not None else []
    if own is not None and int(own.group(1)) <= MAX_RETRY_MS:
        times.append(now.timestamp() + int(own.group(1)) / 1000 + RETRY_OUTCOME_SECONDS)
    return LogLimit(
        text=entry[line].strip(),
        until=max(times) if times else None,
        retrying=own is not None,
    )
