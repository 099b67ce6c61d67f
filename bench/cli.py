"""CLI wall time: `orch --help`, `orch get agents`, `orch send`, `orch describe agent`.

A sandbox with 20 idle agents applied (`apply --wait`, so the controller runs and every agent has
a record); then each command is run once untimed (a warm-up, as hyperfine does: the first run
after the agents' start reads its files from disk) and then ROUNDS times, the four commands in turn
in each round so that a slow moment of the machine falls on all of them alike. `send` ends each
round, and the next round waits until the controller has finished delivering that message (about
2.5 s to a `sleep` agent: paste, Enter, one more Enter, unconfirmed): every command is measured
beside an idle team, not beside the controller and tmux typing the message before. Each run is
what a shell runs: the installed `orch` script (the venv's console entry point) in a new process,
its output read and dropped. The figure is each run's wall time from spawn to exit, start-up and
imports included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.report import Budget, Figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import idle_agents
from reconciler.adapters.deadline import wait_until
from reconciler.adapters.store import Store
from reconciler.api.messages import FINISHED

AGENTS = 20
ROUNDS = 15
#: DESIGN.md's budgets: the read verbs and send, and --help.
VERB_BUDGET_MS = 100.0
HELP_BUDGET_MS = 80.0


def run(rounds: int = ROUNDS) -> list[Figure]:
    """Each command's wall time over `rounds` runs against 20 applied agents."""
    commands: list[tuple[str, tuple[str, ...], float]] = [
        ("orch --help", ("--help",), HELP_BUDGET_MS),
        ("orch get agents", ("get", "agents"), VERB_BUDGET_MS),
        ("orch describe agent", ("describe", "agent", "idle-0"), VERB_BUDGET_MS),
        ("orch send", ("send", "idle-1", "hello"), VERB_BUDGET_MS),  # last: see the docstring
    ]
    with sandbox() as box:
        path = box.workdir / "agents.yaml"
        path.write_text(idle_agents("idle", AGENTS))
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "60s")
        store = Store(box.state_dir)
        try:
            rounds_ms = []
            for n in range(rounds + 1):  # round 0: the untimed warm-up
                one_round = [_wall_ms(box, args) for _, args, _ in commands]
                wait_until(lambda: _delivered(store, "idle-1"), what="the message delivered")
                if n:
                    rounds_ms.append(one_round)
        finally:
            store.close()
    return [
        Figure(
            f"CLI wall time, {AGENTS} agents: {label}",
            "ms",
            tuple(one_round[i] for one_round in rounds_ms),
            Budget(budget),
            note="spawn -> exit of the installed `orch` script",
        )
        for i, (label, _, budget) in enumerate(commands)
    ]


def _delivered(store: Store, agent: str) -> bool:
    """Whether the agent's newest message is out of the queue (delivered, or given up on)."""
    newest = store.messages(agent, limit=1)
    return not newest or newest[-1].phase in FINISHED


def _orch() -> list[str]:
    """The console script next to this interpreter (what users run), else `python -m reconciler`."""
    script = Path(sys.executable).parent / "orch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def _wall_ms(box: Sandbox, args: tuple[str, ...]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [*_orch(), *args],
        env=box.env,
        cwd=box.workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        raise RuntimeError(f"orch {' '.join(args)} exited {proc.returncode}: {proc.stderr!r}")
    return elapsed
