"""`get -w` prints a row again only when something besides its age changed, in fixed columns."""

from __future__ import annotations

from reconciler.cli.watch import FixedColumns, RowWatch


def test_a_row_whose_only_change_is_its_age_is_not_printed_again() -> None:
    watch = RowWatch(age_column=3)
    first = [["a", "Running", "0", "5s", "Started"], ["b", "Running", "0", "7s", "Started"]]
    assert watch.changed(first) == first
    assert (
        watch.changed(
            [["a", "Running", "0", "6s", "Started"], ["b", "Running", "0", "2m", "Started"]]
        )
        == []
    )
    changed = [["b", "Stopped", "0", "2m", "StoppedByUser"]]
    assert watch.changed([["a", "Running", "0", "9s", "Started"], *changed]) == changed


def test_a_new_row_is_printed() -> None:
    watch = RowWatch(age_column=1)
    watch.changed([["a", "1s"]])
    assert watch.changed([["a", "2s"], ["c", "1s"]]) == [["c", "1s"]]


def test_later_rows_line_up_with_the_header_of_the_first_listing() -> None:
    columns = FixedColumns(("name", "state", "age"), [["architect", "Running", "5s"]], (0, 13, 5))
    header = columns.header()
    later = columns.line(["x", "CrashLooping", "12m"])
    assert header.index("STATE") == later.index("CrashLooping")
    assert header.index("AGE") == later.index("12m")


def test_minimum_widths_leave_room_for_longer_cells() -> None:
    columns = FixedColumns(("age", "reason", "message"), [], (9, 20, 0))
    line = columns.line(["1s", "ControllerStarted", "hello"])
    assert columns.header().index("MESSAGE") == line.index("hello")
