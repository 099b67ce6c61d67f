"""The side-by-side tables of `make bench` and its goal table, on made-up figures (no run)."""

from __future__ import annotations

from bench.goals import goal_table
from bench.peer_idle import CPU_GROUP, MEMORY_GROUP
from bench.peers import GROUP as CRASH_GROUP
from bench.report import Budget, Figure, render_table


def _idle(name: str, percents: tuple[float, ...], baseline: bool = False) -> Figure:
    return Figure(name, "%", percents, Budget(None, "mean"), group=CPU_GROUP, baseline=baseline)


def _lines(table: str) -> dict[str, list[str]]:
    """Each row's cells (split on two spaces or more), by its first cell."""
    rows = [[cell for cell in line.split("  ") if cell.strip()] for line in table.splitlines()]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows if row}


def test_a_group_judged_by_its_mean_shows_the_mean_and_its_ratio_first() -> None:
    figures = [
        _idle("orch", (0.0, 1.0, 0.0, 1.0), baseline=True),  # mean 0.5, median 0.5
        _idle("pm2", (0.0, 0.0, 0.0, 1.0)),  # mean 0.25, median 0
    ]
    rows = _lines(render_table(figures))
    assert rows[CPU_GROUP][:3] == ["n", "mean", "median"]
    assert "mean / orch" in rows[CPU_GROUP]
    assert rows["pm2"][:3] == ["4", "0.25 %", "0 %"]
    assert rows["pm2"][rows[CPU_GROUP].index("mean / orch")] == "0.5 x"


def test_a_group_judged_by_its_median_has_no_mean_column() -> None:
    figures = [
        Figure("orch, 20 agents", "ms", (10.0, 20.0), Budget(None), group=CRASH_GROUP),
        Figure("pm2, silent death", "ms", (10.0,), Budget(None), group=CRASH_GROUP),
    ]
    header = _lines(render_table(figures))[CRASH_GROUP]
    assert header[:2] == ["n", "median"]
    assert "mean" not in header


def test_the_goal_table_takes_its_peer_rows_from_the_crash_group_only() -> None:
    idle_only = [
        _idle("orch", (1.0,), baseline=True),
        Figure("orch", "MiB", (50.0,), Budget(None), group=MEMORY_GROUP, baseline=True),
    ]
    assert "crash -> replacement" not in goal_table(idle_only)
    crash = [Figure("orch, 20 agents", "ms", (10.0,), Budget(None), group=CRASH_GROUP)]
    assert "crash -> replacement" in goal_table([*idle_only, *crash])
