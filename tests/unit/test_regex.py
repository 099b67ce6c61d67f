"""Patterns compile with RE2: linear-time search, Python spellings translated, limits refused."""

from __future__ import annotations

import time

import pytest

from reconciler.api.regex import MAX_PATTERN_LENGTH, compile_pattern
from reconciler.core.profiles import profile_for


def test_the_catastrophic_pattern_answers_at_once() -> None:
    started = time.monotonic()
    # Words of several letters: Python's re tries every split of each word (hours for 30 words).
    found = compile_pattern(r"^(\w+\s?)+$").search("word " * 20_000 + "!")
    assert found is None
    assert time.monotonic() - started < 1.0


def test_caret_and_dollar_anchor_lines() -> None:
    assert compile_pattern("^b$").search("a\nb\nc") is not None


@pytest.mark.parametrize(
    ("pattern", "text"),
    [(r"[\u2800-\u28ff]x", "\u2801x"), (r"\U0001F600", "\U0001f600"), (r"end\Z", "the end")],
)
def test_python_spellings_are_translated(pattern: str, text: str) -> None:
    assert compile_pattern(pattern).search(text) is not None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=x)", "invalid perl operator"),
        (r"(a)\1", "invalid escape sequence"),
        ("(", r"missing \)"),
        ("a" * (MAX_PATTERN_LENGTH + 1), "longer than"),
        ("x{1000}{1000}", "bad repetition operator"),
    ],
)
def test_what_re2_cannot_run_in_linear_time_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        compile_pattern(pattern)


@pytest.mark.parametrize("name", ["generic", "codex", "claude", "gemini", "aider", "hermes"])
def test_every_built_in_profile_pattern_compiles(name: str) -> None:
    profile = profile_for(name)
    for pattern in (
        *profile.human_patterns,
        *profile.never_answer,
        *profile.rate_limit_patterns,
        *profile.noise_patterns,
        *profile.busy_patterns,
        *profile.idle_patterns,
        *((profile.ready,) if profile.ready else ()),
    ):
        compile_pattern(pattern)
