"""Duration parsing and printing: every accepted form, every refusal, and the round trip."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.api.duration import DURATION_PATTERN, MAX_SECONDS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m10s500ms", 5410.5),
        ("1.5h", 5400.0),
        ("15", 15.0),
        ("0.25", 0.25),
        ("0s", 0.0),
        (" 10s ", 10.0),
        (15, 15.0),
        (0, 0.0),
        (2.5, 2.5),
        (0.0004, 0.0),  # millisecond resolution
    ],
)
def test_parse_accepts(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        *(
            "10x",
            "",
            "s",
            "-5",
            "1h 30m",
            "1e3",
            "1.s",
            ".5s",
            "10 s",
            "ten",
            "10S",
            "9" * 400 + "s",
        ),
        *(-1, -0.5, True, float("nan"), float("inf"), 10**400, None, [1], {"a": 1}),
    ],
)
def test_parse_refuses(value: object) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration .*: use 500ms, 10s, 30m, 1h30m"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["99999999999999999999h", "31d", "30d1ms", MAX_SECONDS + 1, 1e300, "720h1s"]
)
def test_parse_refuses_more_than_thirty_days(value: str | float) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration .*: at most 30d \(2592000 seconds\)"):
        parse_duration(value)


def test_thirty_days_is_the_longest_duration() -> None:
    assert parse_duration("30d") == parse_duration("720h") == MAX_SECONDS


def test_parse_message_quotes_the_value() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("10x")
    assert str(caught.value) == (
        'invalid duration "10x": use 500ms, 10s, 30m, 1h30m or a number of seconds'
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (10, "10s"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061.001, "1d1h1m1s1ms"),
        (1.5, "1s500ms"),
        (0.0004, "0s"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan")])
def test_format_refuses(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(seconds)


@given(st.integers(min_value=0, max_value=MAX_SECONDS * 1000))
def test_format_then_parse_round_trips(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == seconds


@given(st.floats(min_value=0, max_value=MAX_SECONDS))
def test_parse_then_format_is_stable(value: float) -> None:
    seconds = parse_duration(value)
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=20))
def test_parse_never_raises_anything_but_value_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError as error:
        assert str(error).startswith("invalid duration")
