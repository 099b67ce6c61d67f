"""When a usage or rate limit resets, read from the text an agent CLI printed about it.

Pure: given the text and `now` (timezone-aware), it returns an aware datetime or None, and never
reads the clock. It understands the forms the agent CLIs print (see agents-in-the-wild.md, section
5): a time of day with an optional date and zone ("resets 11:50pm (America/Los_Angeles)",
"resets Aug 3 at 12am (Asia/Tokyo)", "try again at Jul 5th, 2026 8:19 PM"), a duration ("try again
in 5 days 22 hours 11 minutes", "Retry-After: 120"), an epoch ("usage limit reached|1760000400",
`"resets_at": 1760000400`) and `"resets_in_seconds": 3600`. When the text holds several, the one
written first wins. A time of day without a date is its next occurrence after `now`, in the zone
named in parentheses or else in now's zone. Anything else is None: the caller then waits for the
configured cooldown instead; so is a time more than MAX_RESET (a year and a day) after `now`,
which no limit announces honestly. Total: no text raises (dates out of range are simply not times).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The furthest reset time believed: a date without a year can be up to a year away.
MAX_RESET = timedelta(days=367)

_Reader = Callable[[re.Match[str], datetime], datetime | None]
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

#: A clock time, optionally with a date and a zone, after a word that announces a reset.
_CLOCK = re.compile(
    r"\b(?:resets?|try\s+again|available\s+again)\s+(?:at\s+|on\s+)?"
    r"(?:(?P<month>" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?:(?P<year>\d{4}),?\s+)?(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?(?:\s*(?P<half>[ap])\.?m\.?)?(?![\w:])"
    r"(?:\s*\((?P<zone>[A-Za-z][\w+-]*(?:/[\w+-]+){0,2})\))?",
    re.IGNORECASE,
)
#: A duration after a word that announces a retry or a reset: "in 5 days 22 hours", "after 120s".
#: Not "Retrying in 0.2 seconds": that is the client's own countdown to its next try (aider,
#: hermes), which says nothing about when the limit resets.
_AFTER = re.compile(
    r"\b(?:try\s+again|retry|resets?|available\s+again)\s+(?:in|after)\s+"
    r"(?P<amount>(?:\d+(?:\.\d+)?\s*[a-z]+\b[\s,]*(?:and\s+)?)+)",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_UNIT_SECONDS = {
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
}
_RETRY_AFTER = re.compile(r"\bretry-after\s*:\s*(\d{1,9})\b", re.IGNORECASE)
_RESETS_IN = re.compile(r'"resets_in_seconds"\s*:\s*(\d{1,9})\b')
_EPOCH = re.compile(r'(?:\||"resets_at"\s*:\s*)(\d{10})(?!\d)')


def parse_reset_time(text: str, now: datetime) -> datetime | None:
    """The reset time that `text` announces, in now's zone; None when it announces none."""
    found = [
        (match.start(), when)
        for pattern, read in _READERS
        for match in pattern.finditer(text)
        if (when := _safely(read, match, now)) is not None
    ]
    if not found:
        return None
    return min(found, key=lambda item: item[0])[1]


def _safely(read: _Reader, match: re.Match[str], now: datetime) -> datetime | None:
    """`read(match, now)` in now's zone, or None when the numbers are out of range (day 40, year
    9999 + 1) or it is more than MAX_RESET away."""
    try:
        when = read(match, now)
        if when is None or when - now > MAX_RESET:
            return None
        return when.astimezone(now.tzinfo)
    except (ValueError, OverflowError):
        return None


def _clock(match: re.Match[str], now: datetime) -> datetime | None:
    hour, minute, half = int(match["hour"]), int(match["minute"] or 0), match["half"]
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    elif match["minute"] is None:
        return None  # a bare number ("resets 5 days") is not a time of day
    zone = _zone(match["zone"], now)
    if zone is None:
        return None
    today = now.astimezone(zone).date()
    if match["month"] is None:
        days = [today, today + timedelta(days=1)]
    else:
        month, day = _MONTHS.index(match["month"][:3].lower()) + 1, int(match["day"])
        years = [int(match["year"])] if match["year"] else [today.year, today.year + 1]
        days = [date(year, month, day) for year in years]
    times = [datetime.combine(day, time(hour, minute), tzinfo=zone) for day in days]
    return next((when for when in times if when > now), times[-1])


def _after(match: re.Match[str], now: datetime) -> datetime | None:
    seconds = 0.0
    for amount, unit in _AMOUNT.findall(match["amount"]):
        if unit.lower() not in _UNIT_SECONDS:
            return None
        seconds += float(amount) * _UNIT_SECONDS[unit.lower()]
    return _later(now, seconds)


def _seconds(match: re.Match[str], now: datetime) -> datetime | None:
    return _later(now, float(match[1]))


def _epoch(match: re.Match[str], now: datetime) -> datetime | None:
    return datetime.fromtimestamp(int(match[1]), UTC)


#: Each form of reset text and how to read it.
_READERS: tuple[tuple[re.Pattern[str], _Reader], ...] = (
    (_CLOCK, _clock),
    (_AFTER, _after),
    (_RETRY_AFTER, _seconds),
    (_RESETS_IN, _seconds),
    (_EPOCH, _epoch),
)


def _zone(name: str | None, now: datetime) -> tzinfo | None:
    """The zone named on screen, now's zone when none is named, None when the name is unknown."""
    if name is None:
        return now.tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _later(now: datetime, seconds: float) -> datetime:
    """`seconds` of elapsed time after `now` (in UTC, so a DST change does not shift it)."""
    return now.astimezone(UTC) + timedelta(seconds=seconds)
