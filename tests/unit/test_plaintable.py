"""plain_table prints what tabulate's plain format prints, byte for byte, wherever it answers."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tabulate import tabulate

from reconciler.api.status import AgentState, ConditionStatus
from reconciler.cli.output import table
from reconciler.cli.plaintable import plain_table

ASCII = st.text(alphabet=string.printable[:-5], max_size=12)  # printable ASCII, space included
CELL = st.one_of(
    ASCII,
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.booleans(),
    st.sampled_from(["True", "False", " 1 ", *ConditionStatus, *AgentState]),
)
ANY_CELL = st.one_of(CELL, st.text(max_size=6), st.binary(max_size=4))


def _tabulate(headers: list[str], rows: list[list[Any]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


@st.composite
def tables(draw: st.DrawFn, cell: st.SearchStrategy[Any]) -> tuple[list[str], list[list[Any]]]:
    headers = draw(
        st.lists(
            st.text(alphabet=string.ascii_uppercase + " _", max_size=9), min_size=1, max_size=5
        )
    )
    rows = draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), max_size=6))
    return headers, rows


@given(tables(CELL))
def test_ascii_tables_are_tabulates(case: tuple[list[str], list[list[Any]]]) -> None:
    headers, rows = case
    assert plain_table(headers, rows) == _tabulate(headers, rows)


@given(tables(ANY_CELL))
def test_any_table_is_tabulates_through_table(case: tuple[list[str], list[list[Any]]]) -> None:
    headers, rows = case
    assert table(headers, rows) == _tabulate([h.upper() for h in headers], rows)


def test_what_it_cannot_measure_is_left_to_tabulate() -> None:
    for cell in ("wide 字", "e\u0301", "\x1b[31mred\x1b[0m", "two\nlines", "tab\there", b"bytes"):
        assert plain_table(["A"], [[cell]]) is None
    assert plain_table(["A", "B"], [["only one"]]) is None
