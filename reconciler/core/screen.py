"""What an agent's screen says: a prompt waiting for a human, a usage limit, and a digest.

Pure: `classify` reads the captured text of a pane, the agent's spec and the time it was taken,
and returns a verdict; it never talks to tmux or reads the clock. The patterns are the built-in
profile named by `spec.profile` (reconciler.core.profiles) extended by the spec's own:
`prompts[].match` and `humanPatterns` for prompts, `rateLimit.patterns` for limits, `ignore` for
the digest.

Only the bottom of the screen counts for prompts and limits (the last 10 and 15 non-blank lines):
what scrolled up is history, not what the agent waits on now. The digest covers the whole text,
minus the parts that change while nothing happens (spinners, timers, token counters), so the
stale check can compare two captures with ==. Noise is removed from the last 200 lines only:
scrollback above them never changes in place, so its noise cannot differ between two captures
unless new lines pushed it up, which changes the digest anyway; this keeps a capture with long
history cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

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


@dataclass(frozen=True, slots=True)
class ScreenVerdict:
    """Everything one capture of an agent's screen says."""

    prompt: PromptSeen | None
    limit: LimitSeen | None
    digest: str
    """sha256 hex of the screen without its noise: equal digests mean nothing happened."""


def classify(screen: str, spec: AgentSpec, now: datetime) -> ScreenVerdict:
    """Classify `screen`, captured at `now` (timezone-aware), for an agent running `spec`."""
    profile = profile_for(spec.profile)
    lines = screen.splitlines()
    bottom = _bottom(lines, LIMIT_LINES)
    return ScreenVerdict(
        prompt=_prompt(bottom[-PROMPT_LINES:], spec, profile),
        limit=_limit(bottom, spec, profile, now),
        digest=_digest(lines, (*profile.noise_patterns, *spec.ignore)),
    )


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
    region = "\n".join(lines)
    found: tuple[int, str] | None = None
    for pattern, compiled in zip(patterns, _compiled(patterns), strict=True):
        for match in compiled.finditer(region):
            line = region.count("\n", 0, match.start())
            if found is None or line > found[0]:
                found = (line, pattern)
    if found is None:
        return None
    line, pattern = found
    reset_text = " ".join(text.strip() for text in lines[line : line + _RESET_LINES])
    return LimitSeen(_clean(lines[line]), parse_reset_time(reset_text, now), pattern)


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
    """The last `count` non-blank lines (box borders alone are blank), top to bottom."""
    picked: list[str] = []
    for line in reversed(lines):
        if _clean(line):
            picked.append(line)
            if len(picked) == count:
                break
    picked.reverse()
    return picked


def _clean(line: str) -> str:
    """A line as reported: without surrounding blanks and dialog box borders."""
    return line.strip().strip(_BORDERS).strip()


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[Regex, ...]:
    """`patterns` compiled once (linear-time RE2), with ^ and $ anchoring lines."""
    return tuple(compile_pattern(pattern) for pattern in patterns)
