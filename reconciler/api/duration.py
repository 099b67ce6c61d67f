"""Durations as users write them in manifests and flags: "500ms", "10s", "30m", "1h30m" or seconds.

Pure and dependency-free, so the manifest models, the CLI and the planner all read and print the
same forms. Durations are at most MAX_SECONDS (30 days): no wait orch supervises needs more,
and a bound keeps every deadline a valid date. Durations have millisecond resolution:
`parse_duration(format_duration(x)) == x` for every value `parse_duration` returns, which keeps
specs stable when they are stored and re-read.
"""

from __future__ import annotations

import json
import math
import re

#: Milliseconds per unit, largest first (the order `format_duration` writes them in).
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_NUMBER = r"\d+(?:\.\d+)?"
# Longest unit names first, so "ms" is not read as "m" followed by junk.
_UNIT = "|".join(sorted(_UNIT_MS, key=len, reverse=True))
_PART = re.compile(rf"({_NUMBER})({_UNIT})")

#: The longest duration: 30 days.
MAX_SECONDS = 30 * 86_400

#: The string forms `parse_duration` accepts, as a regex (also used in the manifest JSON Schema).
DURATION_PATTERN = rf"^{_NUMBER}$|^(?:{_NUMBER}(?:{_UNIT}))+$"
_DURATION = re.compile(DURATION_PATTERN)


def parse_duration(value: str | float) -> float:
    """Seconds in `value`: a non-negative number of seconds, or a string like "1h30m" or "15".

    Raises ValueError with a one-line message naming the accepted forms.
    """
    if isinstance(value, str):
        text = value.strip()
        if not _DURATION.fullmatch(text):
            raise _invalid(value)
        if not text[-1].isalpha():  # a bare number of seconds
            millis = float(text) * 1000
        else:
            millis = sum(float(count) * _UNIT_MS[unit] for count, unit in _PART.findall(text))
    # bool is an int to Python but never a duration; other types can arrive from YAML via pydantic.
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            millis = float(value) * 1000
        except OverflowError:
            raise _invalid(value) from None
    else:
        raise _invalid(value)
    if not math.isfinite(millis) or millis < 0:
        raise _invalid(value)
    if millis > MAX_SECONDS * 1000:
        raise _invalid(value, f"at most {format_duration(MAX_SECONDS)} ({MAX_SECONDS} seconds)")
    return round(millis) / 1000


def format_duration(seconds: float) -> str:
    """The shortest unit form of `seconds`, largest units first: "1h30m", "10s", "500ms", "0s"."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration: must be finite and >= 0")
    millis = round(seconds * 1000)
    parts = []
    for unit, size in _UNIT_MS.items():
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def human_duration(seconds: float) -> str:
    """A measured time as people read it: whole seconds from 1s up ("15s", "2m5s"), ms below."""
    if not math.isfinite(seconds) or seconds < 0:
        return "0s"
    return format_duration(seconds if seconds < 1 else round(seconds))


def human_size(size: int) -> str:
    """A byte count as people read it: "1 byte", "512 bytes", "195 KiB", "3.2 MiB"."""
    if size == 1:
        return "1 byte"
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _invalid(
    value: object, reason: str = "use 500ms, 10s, 30m, 1h30m or a number of seconds"
) -> ValueError:
    shown = json.dumps(value, ensure_ascii=False, default=repr)  # as YAML would write it, one line
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ValueError(f"invalid duration {shown}: {reason}")
