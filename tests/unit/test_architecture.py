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
    # tmuxbinary only looks the binary up on PATH (for commands that start a controller)
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "reconciler").rglob("*.py")
        if path.name not in ("tmux.py", "tmuxbinary.py") and '"tmux"' in path.read_text()
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


def _loaded_by(module: str) -> list[str]:
    """The modules a fresh interpreter has loaded once it imported `module`."""
    probe = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()


def test_the_cli_imports_nothing_heavy_at_start_up() -> None:
    """`orch get`/`send`/`describe`/`--help` import their heavy dependencies only on use."""
    loaded = _loaded_by("reconciler.cli.main")
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []


def test_run_records_are_read_without_the_manifest_models() -> None:
    """`get runs` and `describe run` read run records; pydantic is for starting a run only."""
    loaded = _loaded_by("reconciler.core.runs")
    assert [
        m for m in loaded if m.split(".")[0] == "pydantic" or m == "reconciler.api.manifest"
    ] == []


#: What `entry`'s fast path (plain get/describe of agents, send) must not import at start-up:
#: click and the verb modules, and what only other commands need (each was once imported there).
NOT_ON_THE_FAST_PATH = (
    "click",
    "typing",  # modules on it guard their annotations' imports with TYPE_CHECKING = False
    "subprocess",
    "uuid",
    "tempfile",
    "reconciler.cli.main",
    "reconciler.cli.reading",
    "reconciler.cli.messaging",
    "reconciler.adapters.tmux",
    "reconciler.adapters.store_rows",
    "reconciler.core.usage",
    "reconciler.core.selectors",
)


def test_the_fast_path_imports_neither_click_nor_what_other_commands_need() -> None:
    loaded = _loaded_by(
        "reconciler.cli.entry, reconciler.cli.boundary, reconciler.cli.showing,"
        " reconciler.cli.sending, reconciler.cli.sender, reconciler.adapters.store,"
        " reconciler.adapters.tmuxbinary, reconciler.controller.daemon, reconciler.cli.helppage"
    )
    assert [
        m for m in loaded if m.split(".")[0] in NOT_ON_THE_FAST_PATH or m in NOT_ON_THE_FAST_PATH
    ] == []


def test_help_imports_neither_click_nor_a_verb_module() -> None:
    """`orch --help` prints helppage's page: no click, no verb module (they list themselves)."""
    probe = (
        "import sys\nfrom reconciler.cli.entry import main\nsys.argv = ['orch', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    print(sorted(n for n in sys.modules if n == 'click' or n.startswith("
        "('click.', 'reconciler.cli.main', 'reconciler.cli.reading', 'reconciler.cli.declare'))),"
        " file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert "Commands:" in proc.stdout and proc.stderr == "[]\n"
