"""Times a store holds are shown, never fatal: a planted or pre-bounds store cannot break `get`."""

from __future__ import annotations

import pytest

from reconciler.api.localtime import local_time
from reconciler.cli.output import iso


@pytest.mark.parametrize("timestamp", [1e300, -1e300, 2.0**63, 1e18])
def test_out_of_range_timestamps_are_shown_as_numbers(timestamp: float) -> None:
    assert "out of range" in (iso(timestamp) or "")
    assert "out of range" in local_time(timestamp)


def test_ordinary_timestamps_are_dates() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
