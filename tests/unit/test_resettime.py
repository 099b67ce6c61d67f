"""Reset times read from limit texts: every form the agent CLIs print, and what stays unknown."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.resettime import parse_reset_time

NEW_YORK = ZoneInfo("America/New_York")
#: Wednesday 1 July 2026, 10:00 in New York (14:00 UTC, 07:00 in Los Angeles, 09:00 in Chicago).
NOW = datetime(2026, 7, 1, 10, 0, tzinfo=NEW_YORK)


def at(year: int, month: int, day: int, hour: int, minute: int = 0, zone: str = "") -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone) if zone else NEW_YORK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("You've hit your limit · resets 3pm", at(2026, 7, 1, 15)),
        ("5-hour limit reached ∙ resets 5am", at(2026, 7, 2, 5)),
        ("Approaching usage limit · resets at 2am", at(2026, 7, 2, 2)),
        (
            "You've hit your session limit · resets 11:50pm (America/Los_Angeles)",
            at(2026, 7, 1, 23, 50, "America/Los_Angeles"),
        ),
        (
            "You've hit your weekly limit · resets Aug 3 at 12am (Asia/Tokyo)",
            at(2026, 8, 3, 0, 0, "Asia/Tokyo"),
        ),
        (
            "Claude usage limit reached. Your limit will reset at 9am (America/Chicago).",
            at(2026, 7, 2, 9, 0, "America/Chicago"),
        ),
        (
            "or try again in 5 days 22 hours 11 minutes.",
            NOW + timedelta(days=5, hours=22, minutes=11),
        ),
        ("try again in 30 seconds", NOW + timedelta(seconds=30)),
        ("retry after 120 seconds", NOW + timedelta(seconds=120)),
        ("Retry-After: 120", NOW + timedelta(seconds=120)),
        ("Retrying in 0.2 seconds...", None),  # the client's retry countdown, not a reset
        ("Retrying in 20s...", None),
        ("Please retry in 37.5s.", NOW + timedelta(seconds=37.5)),
        ("resets in 4h 12m", NOW + timedelta(hours=4, minutes=12)),
        ("or try again at Jul 5th, 2026 8:19 PM.", at(2026, 7, 5, 20, 19)),
        ("Claude AI usage limit reached|1760000400", datetime.fromtimestamp(1760000400, NEW_YORK)),
        ('{"type":"usage_limit_reached","resets_at":1782999960}', at(2026, 7, 2, 13, 46, "UTC")),
        ('{"resets_in_seconds": 3600}', NOW + timedelta(hours=1)),
        ("resets at 14:30", at(2026, 7, 1, 14, 30)),
        ("resets 12pm", at(2026, 7, 1, 12)),
    ],
)
def test_reads_the_reset_time_each_cli_prints(text: str, expected: datetime) -> None:
    assert parse_reset_time(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Please wait and try again later.",
        "The API provider has rate limited you. Try again later or check your quotas.",
        "resets soon",
        "resets 5 days",  # a number without am/pm or minutes is not a time of day
        "resets 13pm",
        "resets at 24:00",
        "resets Feb 30 at 1am",
        "resets 3pm (Mars/Olympus_Mons)",  # an unknown zone would put the time hours off
        "try again in 3 fortnights",
        "Claude usage limit reached",
        "",
    ],
)
def test_text_without_a_readable_reset_time_gives_none(text: str) -> None:
    assert parse_reset_time(text, NOW) is None


def test_a_time_of_day_already_past_is_tomorrow() -> None:
    assert parse_reset_time("resets 9am", NOW) == at(2026, 7, 2, 9)


def test_a_time_of_day_equal_to_now_is_tomorrow() -> None:
    assert parse_reset_time("resets 10am", NOW) == at(2026, 7, 2, 10)


def test_a_date_already_past_this_year_is_next_year() -> None:
    assert parse_reset_time("resets Jun 3 at 12am", NOW) == at(2027, 6, 3, 0)


def test_a_date_with_a_year_is_taken_as_written_even_when_past() -> None:
    assert parse_reset_time("try again at Jan 2nd, 2026 8:19 AM", NOW) == at(2026, 1, 2, 8, 19)


def test_a_named_zone_decides_which_day_a_time_of_day_falls_on() -> None:
    # 10:00 in New York is 23:00 in Tokyo: 11:30pm there is still today, 10pm is tomorrow.
    tonight = at(2026, 7, 1, 23, 30, "Asia/Tokyo")
    assert parse_reset_time("resets 11:30pm (Asia/Tokyo)", NOW) == tonight
    assert parse_reset_time("resets 10pm (Asia/Tokyo)", NOW) == at(2026, 7, 2, 22, 0, "Asia/Tokyo")


def test_the_result_is_in_the_zone_of_now() -> None:
    reset = parse_reset_time("resets 11:50pm (America/Los_Angeles)", NOW)
    assert reset is not None and reset.tzinfo is NEW_YORK


def test_a_duration_is_elapsed_time_across_a_clock_change() -> None:
    # The night of 7 to 8 March 2026 is 23 hours long in New York.
    before = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)
    assert parse_reset_time("try again in 1 day", before) == datetime(
        2026, 3, 8, 13, 0, tzinfo=NEW_YORK
    )


def test_the_first_reset_written_wins() -> None:
    text = "try again in 30 seconds, or after the window: resets 3pm"
    assert parse_reset_time(text, NOW) == NOW + timedelta(seconds=30)


@given(st.text(max_size=300))
def test_never_raises_and_returns_an_aware_time_or_none(text: str) -> None:
    reset = parse_reset_time(text, NOW)
    assert reset is None or reset.tzinfo is not None


@given(
    st.lists(
        st.sampled_from(
            [
                "resets",
                "try again",
                "retry",
                "in",
                "at",
                "after",
                "Aug",
                "3rd,",
                "2026",
                "99999",
                "12:00",
                "11:50pm",
                "5am",
                "days",
                "hours",
                "s",
                "(Asia/Tokyo)",
                "(Nowhere/X)",
                "|9999999999",
                '"resets_in_seconds": 999999999',
                "Retry-After: 999999999",
            ]
        ),
        max_size=12,
    ).map(" ".join)
)
def test_never_raises_on_reset_like_words(text: str) -> None:
    parse_reset_time(text, NOW)
