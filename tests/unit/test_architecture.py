"""Mechanical checks of the architecture: the pure core stays pure, the docs stay current."""

from __future__ import annotations

import ast
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Modules that decide without doing: given inputs and a clock they return decisions.
PURE_MODULES = (
    "actions",
    "duration",
    "globmatch",
    "health",
    "lifecycle",
    "messages",
    "observation",
    "plan",
    "planner",
    "profiles",
    "resettime",
    "runs",
    "sanitize",
    "screen",
    "status",
    "steps",
)
#: What the pure core must never import: tmux, watchers, processes, YAML, the store.
FORBIDDEN = {"libtmux", "watchdog", "subprocess", "ruamel", "sqlite3", "psutil", "os", "socket"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_core_imports_no_adapters(module: str) -> None:
    assert imported_roots(REPO / "reconciler" / f"{module}.py") & FORBIDDEN == set()


def test_only_the_tmux_adapter_runs_tmux() -> None:
    offenders = [
        path.name
        for path in (REPO / "reconciler").glob("*.py")
        if path.name != "tmux.py" and '"tmux"' in path.read_text()
    ]
    assert offenders == []


def test_lifecycle_diagram_is_current() -> None:
    render = runpy.run_path(str(REPO / "docs" / "render_lifecycle.py"))["render"]
    assert (REPO / "docs" / "lifecycle.md").read_text() == render(), "run `make docs`"
