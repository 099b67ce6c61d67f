"""Mechanical checks of the architecture that import-linter cannot express; the docs stay current.

The layers and the purity of the core are import-linter contracts in pyproject.toml (`make lint`).
"""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_only_the_tmux_adapter_runs_tmux() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "reconciler").rglob("*.py")
        if path.name != "tmux.py" and '"tmux"' in path.read_text()
    ]
    assert offenders == []


def test_lifecycle_diagram_is_current() -> None:
    render = runpy.run_path(str(REPO / "docs" / "render_lifecycle.py"))["render"]
    assert (REPO / "docs" / "lifecycle.md").read_text() == render(), "run `make docs`"
