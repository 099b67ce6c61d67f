"""tabulate's "plain" table for the common case, without importing tabulate.

Importing tabulate loads importlib.metadata (for its version) and wcwidth's tables: about a
fifth of `orch get agents`. Most tables are printable ASCII on one line, where tabulate's plain
format (`disable_numparse`: every cell formatted as f"{cell}", every column left-aligned) is
simple: each cell stripped, each column as wide as its widest cell and at least its header
plus two, columns joined by two spaces, lines right-stripped. `plain_table` produces exactly
that, and declines (None) anything else (wide or combining characters, escape sequences, line
breaks, bytes), which tabulate then renders; tests/unit/test_plaintable.py checks it against
tabulate.
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any

#: The padding tabulate adds to every header (its MIN_PADDING).
HEADER_PADDING = 2
#: Between two columns in the plain format.
COLUMN_GAP = "  "


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str | None:
    """The table tabulate's plain format prints, or None when the cells need tabulate itself."""
    if not headers or not all(_simple(h) for h in headers):
        return None
    texts: list[list[str]] = []
    for row in rows:
        if len(row) != len(headers):
            return None
        cells = [f"{cell}" for cell in row if not isinstance(cell, bytes)]  # as tabulate does
        if len(cells) != len(headers) or not all(_simple(cell) for cell in cells):
            return None
        texts.append([cell.strip() for cell in cells])
    widths = [
        max([len(header) + HEADER_PADDING, *(len(cells[i]) for cells in texts)])
        for i, header in enumerate(headers)
    ]
    return "\n".join(
        COLUMN_GAP.join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in [list(headers), *texts]
    )


def _simple(text: str) -> bool:
    """One line of printable ASCII: its width is its length, and nothing in it is invisible."""
    return text.isascii() and text.isprintable()
