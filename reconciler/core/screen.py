"""What an agent's screen says: the live prompt, a usage limit, its activity, and a digest.

Pure and total: `classify` reads the captured text of a pane, the agent's spec, the time it was
taken and where the cursor was, and returns a verdict; it never talks to tmux, reads the clock or
raises on what an agent printed. The patterns are the built-in profile named by `spec.profile`
(reconciler.core.profiles) extended by the spec's own: `prompts[].match` and `humanPatterns` for
prompts, `rateLimit.patterns` for limits, `ignore` for the digest.

Only the bottom of the screen counts for prompts and limits (the last 10 and 15 non-blank lines):
what scrolled up is history, not what the agent waits on now. Only the *live* prompt counts: for
a program that asks on its cursor's line (a shell, aider) that is the cursor's row and what
follows it, so a question answered and left on screen (`[Yes]: y`, `[y/N] y`) is history and
cannot mask the next one; a full-screen CLI draws its dialog at the bottom and erases it once
answered. Lines are clipped to LINE_CHARS before any pattern sees them.

The digest covers the whole text, minus the parts that change while nothing happens (spinners,
timers, token counters), so the stale check can compare two captures with ==. Noise is removed
from the last 200 lines only: scrollback above them never changes in place, so its noise cannot
differ between two captures unless new lines pushed it up, which changes the digest anyway; this
keeps a capture with long history cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from reconciler.api.activity import Activity
from reconciler.api.manifest import AgentSpec
from reconciler.api.regex import Regex, compile_pattern
from reconciler.core.profiles import Profile, profile_for
from reconciler.core.resettime import parse_reset_time

#: Non-blank lines at the bottom of the screen searched for a prompt.
PROMPT_LINES = 10
#: Non-blank lines at the bottom of the screen searched for a usage or rate limit.
LIMIT_LINES = 15
#: Lines at the bottom of the screen cleared of noise for the digest: more than any pane's rows.
NOISE_LINES = 200
#: Lines read for the reset time, from the limit's line down (wrapped messages continue below).
_RESET_LINES = 3
#: Characters of a line that prompt, limit and activity patterns see: bounds their work.
LINE_CHARS = 1000
#: Box borders around dialog lines: a line of only these and blanks is blank, and the text
#: reported for a prompt or a limit leaves them out.
_BORDERS = "│┃║"


@dataclass(frozen=True, slots=True)
class PromptSeen:
    """The agent waits for a human."""

    text: str
    """The prompt's line: the topmost line of the bottom region that a pattern matched, stripped."""
    rule_index: int | None
    """Index in spec.prompts of the rule that answers it; None: no rule does, or it is blocked."""
    blocked: bool
    """A never-answer menu is on screen (billing, model picker): only a human may answer."""


@dataclass(frozen=True, slots=True)
class LimitSeen:
    """A usage or rate limit stops the agent."""

    text: str
    """The limit's line (the bottommost that a pattern matched), stripped."""
    reset_at: datetime | None
    """When the limit resets, as the screen says; None: it does not say (use the cooldown)."""
    pattern: str
    """The pattern that matched that line."""
    lines: int = 1
    """How many lines of the bottom region a limit pattern matches: one more than before means a
    new limit, even with the same words (see health: only new limits start a cooldown)."""


@dataclass(frozen=True, slots=True)
class ScreenVerdict:
    """Everything one capture of an agent's screen says."""

    prompt: PromptSeen | None
    """The live prompt, if the agent waits on one."""
    limit: LimitSeen | None
    digest: str
    """sha256 hex of the screen without its noise: equal digests mean nothing happened."""
    activity: Activity = Activity.UNKNOWN
    """What the screen says the agent does: Waiting (a live prompt), Busy, Idle, or Unknown."""


def classify(
    screen: str, spec: AgentSpec, now: datetime, cursor_row: int | None = None
) -> ScreenVerdict:
    """Classify `screen`, captured at `now` (timezone-aware), for an agent running `spec`.

    `cursor_row` is the cursor's row in `screen` (tmux's `#{cursor_y}` for a capture of the
    visible pane); None when unknown, and then a line-mode program's cursor is taken to be on
    its last non-blank line.
    """
    profile = profile_for(spec.profile)
    lines = screen.splitlines()
    bottom = _bottom(lines, LIMIT_LINES)
    live = _live(lines, profile, cursor_row)
    prompt = _prompt(live[-PROMPT_LINES:], spec, profile)
    return ScreenVerdict(
        prompt=prompt,
        limit=_limit(bottom, spec, profile, now),
        digest=_digest(lines, (*profile.noise_patterns, *spec.ignore)),
        activity=Activity.WAITING if prompt else _activity(live, profile),
    )


def _live(lines: list[str], profile: Profile, cursor_row: int | None) -> list[str]:
    """What the agent shows now: the bottom region, and for a line-mode program only from the
    cursor's row down (answered questions and old spinners above it are history)."""
    if profile.line_mode:
        if cursor_row is None or not 0 <= cursor_row < len(lines):
            cursor_row = _last_non_blank(lines)
        lines = lines[cursor_row:]
    return _bottom(lines, LIMIT_LINES)


def _activity(live: list[str], profile: Profile) -> Activity:
    """Busy when a busy marker is on the live lines, else Idle when the empty input is, else
    Unknown (a program without markers: the stale check falls back to the screen's digest)."""
    region = "\n".join(live)
    if any(pattern.search(region) for pattern in _compiled(profile.busy_patterns)):
        return Activity.BUSY
    if any(pattern.search(region) for pattern in _compiled(profile.idle_patterns)):
        return Activity.IDLE
    return Activity.UNKNOWN


def _prompt(lines: list[str], spec: AgentSpec, profile: Profile) -> PromptSeen | None:
    """The prompt in `lines`, if a human, user or rule pattern matches there."""
    if not lines:
        return None
    region = "\n".join(lines)
    rules = _compiled(tuple(rule.match for rule in spec.prompts))
    waiting = _compiled((*profile.human_patterns, *spec.human_patterns))
    starts = [match.start() for pattern in rules + waiting if (match := pattern.search(region))]
    if not starts:
        return None
    blocked = any(pattern.search(region) for pattern in _compiled(profile.never_answer))
    answering = next((index for index, rule in enumerate(rules) if rule.search(region)), None)
    return PromptSeen(
        text=_clean(lines[region.count("\n", 0, min(starts))]),
        rule_index=None if blocked else answering,
        blocked=blocked,
    )


def _limit(lines: list[str], spec: AgentSpec, profile: Profile, now: datetime) -> LimitSeen | None:
    """The newest limit in `lines`: the bottommost line a limit pattern matches."""
    patterns = (
        *profile.rate_limit_patterns,
        *(spec.rate_limit.patterns if spec.rate_limit else ()),
    )
    typed = profile.input_prefixes
    region = "\n".join("" if typed and line.lstrip().startswith(typed) else line for line in lines)
    found: tuple[int, str] | None = None
    matched: set[int] = set()
    for pattern, compiled in zip(patterns, _compiled(patterns), strict=True):
        for match in compiled.finditer(region):
            line = region.count("\n", 0, match.start())
            matched.add(line)
            if found is None or line > found[0]:
                found = (line, pattern)
    if found is None:
        return None
    line, pattern = found
    reset_text = " ".join(text.strip() for text in lines[line : line + _RESET_LINES])
    return LimitSeen(_clean(lines[line]), parse_reset_time(reset_text, now), pattern, len(matched))


def _digest(lines: list[str], noise: tuple[str, ...]) -> str:
    """sha256 hex of the screen's `lines`, `noise` removed from the last NOISE_LINES of them,
    without trailing blanks on any line or trailing blank lines."""
    tail = "\n".join(lines[-NOISE_LINES:])
    for pattern in _compiled(noise):
        tail = pattern.sub("", tail)
    kept = [line.rstrip() for line in (*lines[:-NOISE_LINES], *tail.split("\n"))]
    while kept and not kept[-1]:
        kept.pop()
    return hashlib.sha256("\n".join(kept).encode("utf-8", "surrogatepass")).hexdigest()


def _bottom(lines: list[str], count: int) -> list[str]:
    """The last `count` non-blank lines (box borders alone are blank), clipped to LINE_CHARS,
    top to bottom."""
    picked: list[str] = []
    for line in reversed(lines):
        if _clean(line):
            picked.append(line[:LINE_CHARS])
            if len(picked) == count:
                break
    picked.reverse()
    return picked


def _last_non_blank(lines: list[str]) -> int:
    """The index of the last non-blank line (0 for a blank screen)."""
    return next((index for index in range(len(lines) - 1, -1, -1) if _clean(lines[index])), 0)


def _clean(line: str) -> str:
    """A line as reported: without surrounding blanks and dialog box borders."""
    return line.strip().strip(_BORDERS).strip()


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[Regex, ...]:
    """`patterns` compiled once (linear-time RE2), with ^ and $ anchoring lines."""
    return tuple(compile_pattern(pattern) for pattern in patterns)
