"""Mechanical checks of the architecture that import-linter cannot express; the docs stay current.

The layers and the purity of the core are import-linter contracts in pyproject.toml (`make lint`).
"""

from __future__ import annotations

import runpy
import subprocess
import sys
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


#: What a short command must not pay for at start-up: model building, YAML, file watching, the
#: controller, process inspection, the state machine engine, the lock library, starting processes
#: (only commands that start a controller or tmux need `subprocess`), the user database.
HEAVY = (
    "subprocess",
    "getpass",
    "pydantic",
    "ruamel",
    "watchdog",
    "psutil",
    "libtmux",
    "transitions",
    "filelock",
    "tabulate",
    "reconciler.api.manifest",
    "reconciler.controller.loop",
    "reconciler.controller.guardkeeper",
    "reconciler.controller.apply",
)


def test_the_cli_imports_nothing_heavy_at_start_up() -> None:
    """`orch get`/`send`/`describe`/`--help` import their heavy dependencies only on use."""
    probe = "import sys, reconciler.cli.main; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []
