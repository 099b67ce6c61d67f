"""The goal table `make bench` ends with: every budget of DESIGN.md, its figure and ✓ or ✗.

A row per figure that carries a budget (restart, live edit, observation, idle CPU, memory, send,
CLI wall times), plus the side-by-side goals of the crash -> replacement group: orch at 20 agents
no slower than pm2 in the same run (median), and orch's median at 1, 20 and 100 agents within
20 % of each other. A goal whose figure is missing (not run, failed, peer skipped) says so with
"-" instead of a mark.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from bench.peers import GROUP as CRASH_GROUP
from bench.report import Figure

#: orch's medians at 1, 20 and 100 agents may differ by this factor at most ("flat").
FLATNESS = 1.2
PASSED, MISSED, UNKNOWN = "✓", "✗", "-"


def goal_table(figures: Sequence[Figure]) -> str:
    """One row per goal: what it is, the measured value, the budget, and ✓ / ✗ / -."""
    return tabulate(
        goal_rows(figures), headers=("goal", "measured", "budget", ""), disable_numparse=True
    )


def goal_rows(figures: Sequence[Figure]) -> list[tuple[str, str, str, str]]:
    """The goal table's rows; the last field is ✓, ✗ or - (no figure to judge)."""
    rows = [_budget_row(f) for f in figures if f.budget.limit is not None and not f.group]
    rows.extend(_peer_rows([f for f in figures if f.group == CRASH_GROUP]))
    return rows


def _budget_row(figure: Figure) -> tuple[str, str, str, str]:
    budget = figure.budget.describe(figure.unit)
    if figure.error:
        return figure.name, figure.verdict, budget, UNKNOWN
    statistic = figure.budget.statistic
    value = figure.value(statistic)
    mark = PASSED if figure.verdict.startswith("PASS") else MISSED
    return figure.name, f"{statistic} {_shown(value, figure.unit)}", budget, mark


def _peer_rows(group: Sequence[Figure]) -> list[tuple[str, str, str, str]]:
    if not group:
        return []
    by_name = {f.name: f for f in group if not f.error}
    orch = {
        team: by_name.get(f"orch, {team} agent{'s' if team > 1 else ''}") for team in (1, 20, 100)
    }
    pm2 = by_name.get("pm2, silent death")
    rows = []
    twenty = orch[20]
    if twenty is None or pm2 is None:
        missing = "orch at 20 agents" if twenty is None else "pm2 (skipped or failed)"
        rows.append(("crash -> replacement, 20 agents, vs pm2", f"{missing}: -", "<= pm2", "-"))
    else:
        rows.append(
            (
                "crash -> replacement, 20 agents, vs pm2",
                f"median {_shown(twenty.median, 'ms')} vs pm2 {_shown(pm2.median, 'ms')}",
                "median <= pm2's, same run",
                PASSED if twenty.median <= pm2.median else MISSED,
            )
        )
    medians = [f.median for f in orch.values() if f is not None]
    if len(medians) == len(orch) and min(medians) > 0:
        spread = max(medians) / min(medians)
        rows.append(
            (
                "crash -> replacement flat over 1 / 20 / 100 agents",
                f"max / min median {spread:.2f}x",
                f"<= {FLATNESS:g}x",
                PASSED if spread <= FLATNESS else MISSED,
            )
        )
    else:
        rows.append(("crash -> replacement flat over 1 / 20 / 100 agents", "-", "-", UNKNOWN))
    return rows


def _shown(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if abs(value) >= 1000 else f"{value:.3g} {unit}"
