"""Figures, their statistics and verdicts, and the one table `make bench` prints at the end."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tabulate import tabulate

Statistic = Literal["median", "p90", "p95", "mean"]


@dataclass(frozen=True)
class Budget:
    """An upper bound on one statistic of a figure; `limit` None means informational only.

    An informational budget may still carry a `text` (a reference value to read the figure by).
    """

    limit: float | None
    statistic: Statistic = "median"
    text: str = ""

    def describe(self, unit: str) -> str:
        """The budget as the table shows it."""
        if self.limit is None:
            return self.text or "-"
        return self.text or f"{self.statistic} < {self.limit:g} {unit}"


@dataclass(frozen=True)
class Figure:
    """One measured figure: its samples (in `unit`) and the budget they are held to."""

    name: str
    unit: str
    samples: tuple[float, ...]
    budget: Budget
    note: str = ""
    error: str = ""
    group: str = ""
    """Figures sharing a non-empty group form their own side-by-side table (see render_table)."""
    baseline: bool = False
    """In a group: the figure every other one is compared with (its ratio is 1)."""
    model: bool = False
    """The samples come from a model, not a measurement (the table's n column says so)."""

    @property
    def median(self) -> float:
        """The median sample."""
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        """The 90th percentile (linear interpolation between samples)."""
        if len(self.samples) == 1:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=10, method="inclusive")[8]

    @property
    def p95(self) -> float:
        """The 95th percentile (linear interpolation between samples)."""
        if len(self.samples) == 1:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=20, method="inclusive")[18]

    @property
    def mean(self) -> float:
        """The mean sample."""
        return statistics.fmean(self.samples)

    def value(self, statistic: Statistic) -> float:
        """The named statistic."""
        values = {"median": self.median, "p90": self.p90, "p95": self.p95, "mean": self.mean}
        return values[statistic]

    @property
    def verdict(self) -> str:
        """PASS or MISS against the budget (with the value when the table does not show it)."""
        if self.error:
            return self.error if self.error.startswith("skipped") else f"ERROR {self.error}"
        if self.budget.limit is None:
            return "info"
        value = self.value(self.budget.statistic)
        word = "PASS" if value < self.budget.limit else "MISS"
        if self.budget.statistic == "mean":
            return f"{word} (mean {value:.3g} {self.unit})"
        return word


def failed_figure(name: str, error: BaseException) -> Figure:
    """A placeholder row for a benchmark that could not produce its figure."""
    first_line = next(iter(str(error).strip().splitlines()), "")
    return Figure(
        name, "", (float("nan"),), Budget(None), error=f"{type(error).__name__}: {first_line}"
    )


def render_table(figures: Sequence[Figure]) -> str:
    """The results table (figure, n, median, p90, p95, budget, verdict), then one per group."""
    ungrouped = [f for f in figures if not f.group]
    tables = [_main_table(ungrouped)] if ungrouped or not figures else []
    groups = dict.fromkeys(f.group for f in figures if f.group)
    tables.extend(_group_table(group, [f for f in figures if f.group == group]) for group in groups)
    return "\n\n".join(tables)


def _main_table(figures: Sequence[Figure]) -> str:
    rows = []
    for fig in figures:
        if fig.error:
            rows.append((fig.name, "0", "-", "-", "-", "-", fig.verdict))
            continue
        rows.append(
            (
                fig.name,
                _count(fig),
                _format(fig.median, fig.unit),
                _format(fig.p90, fig.unit),
                _format(fig.p95, fig.unit),
                fig.budget.describe(fig.unit),
                fig.verdict,
            )
        )
    headers = ("figure", "n", "median", "p90", "p95", "budget", "verdict")
    return tabulate(rows, headers=headers, disable_numparse=True)


def _group_table(group: str, figures: Sequence[Figure]) -> str:
    """Side by side: each figure's statistics and their ratios to the baseline's.

    The statistics are median, p90 and p95, with the mean first when a figure of the group is
    judged by its mean (an idle CPU figure: one-second samples move in 1 % steps).
    """
    base = next((f for f in figures if f.baseline and not f.error), None)
    shown: tuple[Statistic, ...] = ("median", "p90", "p95")
    if any(f.budget.statistic == "mean" for f in figures):
        shown = ("mean", *shown)
    rows = []
    for fig in figures:
        if fig.error:
            rows.append((fig.name, "0", *("-" for _ in shown * 2), fig.verdict))
            continue
        rows.append(
            (
                fig.name,
                _count(fig),
                *(_format(fig.value(statistic), fig.unit) for statistic in shown),
                *(_ratio(fig, base, statistic) for statistic in shown),
                fig.verdict,
            )
        )
    name = base.name if base else "baseline"
    headers = (
        group,
        "n",
        *shown,
        *(f"{statistic} / {name}" for statistic in shown),
        "verdict",
    )
    return tabulate(rows, headers=headers, disable_numparse=True)


def _ratio(fig: Figure, base: Figure | None, statistic: Statistic) -> str:
    if base is None or base.unit != fig.unit:
        return "-"
    denominator = base.value(statistic)
    if denominator <= 0:
        return "-"
    return _format(fig.value(statistic) / denominator, "x")


def _count(fig: Figure) -> str:
    return "model" if fig.model else str(len(fig.samples))


def write_json(figures: Sequence[Figure], path: Path) -> None:
    """All figures with their raw samples and statistics, as JSON."""
    document = [
        {
            **asdict(fig),
            "median": fig.median,
            "p90": fig.p90,
            "p95": fig.p95,
            "mean": fig.mean,
            "verdict": fig.verdict,
        }
        for fig in figures
    ]
    path.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n")


def _format(value: float, unit: str) -> str:
    """Three significant digits, without an exponent for values of 1000 and more."""
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"
