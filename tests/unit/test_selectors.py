"""kubectl label selectors, shared by `get -l` and a Notifier's selector."""

from __future__ import annotations

import pytest

from reconciler.core.selectors import parse_selector, selects

LABELS = {"role": "executor", "tier": "back"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("role=executor", True),
        ("role==executor", True),
        ("role=architect", False),
        ("role=executor,tier=back", True),
        ("role=executor,tier=front", False),
        ("tier!=front", True),
        ("role", True),
        ("!role", False),
        ("!gpu", True),
        ("gpu", False),
    ],
)
def test_selector_terms(selector: str, expected: bool) -> None:
    assert selects(parse_selector(selector), LABELS) is expected


@pytest.mark.parametrize("bad", ["", "=x", "role=a,", "!role=x", "a b=c"])
def test_bad_selectors_name_the_term(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid label selector"):
        parse_selector(bad)
