"""Screen text is hostile input: classification and reset-time parsing are total.

Real captures of every profile, followed by what an agent could print next: reset times with
out-of-range dates, years and numbers, unknown zones, escape bytes, surrogates, huge counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.manifest import AgentSpec
from reconciler.core.resettime import MAX_RESET, parse_reset_time
from reconciler.core.screen import classify

SCREENS = Path(__file__).resolve().parents[1] / "fixtures" / "screens"
REAL = sorted(
    (path.parent.name, path.read_text()) for path in SCREENS.glob("*/*.txt") if path.is_file()
)
NUMBER = st.one_of(
    st.integers(min_value=0, max_value=99),
    st.sampled_from([0, 9999, 10**10, 10**20, 10**400, 2**63]),
)
ZONE = st.sampled_from(["Etc/GMT+12", "Etc/GMT-14", "UTC", "Nope/Zone", "../../etc/passwd", "X"])
RESET = st.builds(
    lambda month, day, year, hour, minute, zone, half: (
        f"You've hit your usage limit · resets {month} {day}, {year} {hour}:{minute:02}{half} "
        f"({zone})"
    ),
    st.sampled_from(["Dec", "Jan", "Feb", "Xyz"]),
    NUMBER,
    NUMBER,
    NUMBER,
    st.integers(min_value=0, max_value=99),
    ZONE,
    st.sampled_from(["am", "pm", ""]),
)
OTHER = st.one_of(
    NUMBER.map(lambda n: f"try again in {n} days {n} hours"),
    NUMBER.map(lambda n: f"Retry-After: {n}"),
    NUMBER.map(lambda n: f'"resets_in_seconds": {n}'),
    NUMBER.map(lambda n: f"usage limit reached|{n}"),
    NUMBER.map(lambda n: f'"resets_at": {n}'),
    st.text(max_size=200),
)
NOWS = st.sampled_from(
    [datetime(2026, 7, 1, 10, tzinfo=UTC), datetime(9999, 12, 31, 12, tzinfo=UTC)]
)


@settings(max_examples=200, deadline=None)
@given(real=st.sampled_from(REAL), suffix=st.lists(st.one_of(RESET, OTHER), max_size=4), now=NOWS)
def test_real_screens_with_hostile_suffixes_never_raise(
    real: tuple[str, str], suffix: list[str], now: datetime
) -> None:
    profile, screen = real
    spec = AgentSpec.model_validate({"command": "agent", "profile": profile})
    verdict = classify(screen + "\n" + "\n".join(suffix), spec, now)
    if verdict.limit is not None and verdict.limit.reset_at is not None:
        assert verdict.limit.reset_at - now <= MAX_RESET


def test_the_year_9999_limit_line_is_no_reset_time() -> None:
    text = "You've hit your usage limit · resets Dec 31, 9999 11:59pm (Etc/GMT+12)"
    assert parse_reset_time(text, datetime(2026, 7, 1, tzinfo=UTC)) is None


def test_a_reset_decades_away_is_not_believed() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    assert parse_reset_time("Retry-After: 999999999", now) is None
    assert parse_reset_time("Retry-After: 3600", now) == now + timedelta(hours=1)
