"""`get -w` and `events -w`: rows printed in fixed columns aligned with the header, and a row
printed again only when something other than its age changed."""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any

#: Space between columns, as kubectl prints them.
GAP = 3


class FixedColumns:
    """Formats rows in the column widths of the first listing, so later rows line up with it."""

    def __init__(
        self,
        headers: Sequence[str],
        first_rows: Sequence[Sequence[Any]],
        minimum: Sequence[int] = (),
    ) -> None:
        self.headers = [h.upper() for h in headers]
        cells = [self.headers, *([_cell(c) for c in row] for row in first_rows)]
        least = [*minimum, *([0] * len(self.headers))]
        self.widths = [
            max(least[i], *(len(row[i]) for row in cells)) for i in range(len(self.headers))
        ]

    def header(self) -> str:
        """The header line."""
        return self.line(self.headers)

    def line(self, row: Sequence[Any]) -> str:
        """One row padded to the columns' widths (a longer cell pushes only its own row)."""
        texts = [_cell(c) for c in row]
        padded = [t.ljust(w) for t, w in zip(texts[:-1], self.widths, strict=False)]
        return (" " * GAP).join([*padded, texts[-1]]).rstrip()


class RowWatch:
    """Remembers the rows shown, keyed by their first cell, and tells which changed.

    `age_column` is left out of the comparison: a row whose only change is its age is not
    printed again.
    """

    def __init__(self, age_column: int | None) -> None:
        self.age_column = age_column
        self.shown: dict[str, tuple[str, ...]] = {}

    def _key(self, row: Sequence[Any]) -> tuple[str, ...]:
        return tuple(_cell(c) for i, c in enumerate(row) if i != self.age_column)

    def changed(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """Rows new or changed since last time (other than their age), in the order given."""
        out = []
        for row in rows:
            key = self._key(row)
            name = _cell(row[0])
            if self.shown.get(name) != key:
                self.shown[name] = key
                out.append(row)
        return out


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
