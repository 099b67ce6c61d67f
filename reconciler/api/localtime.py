"""Times in a local time zone: the one helper the planner (reset times, deadlines in messages)
and the CLI (`describe`, listings) read and print them with.

Pure and dependency-free. A stored timestamp no calendar holds (a planted or pre-bounds store)
is shown as a number, never fatal.
"""

from __future__ import annotations

from datetime import datetime, tzinfo


def local_datetime(timestamp: float, timezone: tzinfo | None = None) -> datetime:
    """An aware datetime in `timezone` (the machine's when None): what reset times are read in."""
    return datetime.fromtimestamp(timestamp, timezone).astimezone(timezone)


def local_time(timestamp: float, timezone: tzinfo | None = None) -> str:
    """A timestamp as people read it, `2026-11-30 13:40:00 UTC`, in `timezone` (the machine's
    when None)."""
    try:
        return local_datetime(timestamp, timezone).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, ValueError, OSError):
        return out_of_range(timestamp)


def out_of_range(timestamp: float) -> str:
    """A timestamp no calendar holds, shown as the number it is."""
    return f"{timestamp:.0f} (epoch seconds, out of range)"
