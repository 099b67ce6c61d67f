"""kubectl's JSONPath templates for `-o jsonpath=`."""

from __future__ import annotations

import pytest

from reconciler.api.errors import InvalidInput
from reconciler.cli.jsonpath import render

LIST = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "a"}, "status": {"state": "Running", "restarts": 0}},
        {"metadata": {"name": "b"}, "status": {"state": "Stopped", "restarts": 2}},
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.items[*].metadata.name}", "a b"),
        ("{.kind}", "List"),
        ("{.items[1].status.restarts}", "2"),
        ('{range .items[*]}{.metadata.name}={.status.state}{"\\n"}{end}', "a=Running\nb=Stopped\n"),
        ('{.items[?(@.status.state=="Stopped")].metadata.name}', "b"),
        ("names: {.items[0].metadata.name}", "names: a"),
        ("{.missing}", ""),
    ],
)
def test_templates(template: str, expected: str) -> None:
    assert render(template, LIST) == expected


@pytest.mark.parametrize("bad", ["{.items[}", "{range .items[*]}{.x}", "{end}"])
def test_bad_templates_are_one_clear_error(bad: str) -> None:
    with pytest.raises(InvalidInput, match="jsonpath"):
        render(bad, LIST)
