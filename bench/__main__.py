"""`make bench`: measure orch against the performance budgets of DESIGN.md; print the tables.

Figures (each module's docstring says exactly what it measures and how):

1. bench.restart    agent process killed -> replacement process started   median < 50 ms
2. bench.live_edit  manifest saved -> change applied                       median < 300 ms
3. bench.observe    one observation pass over 10 / 50 / 100 agents         < 30 ms at 100, linear
                    (plus a full Controller.run_pass() per size, for information)
4. bench.idle       idle CPU and PSS of orch (all but the agents), 20 agents  < 0.25 %, < 64 MiB
5. bench.stale      stale.after elapsed since the last output -> Stale     info (ref: 1 s pass)
6. bench.classify   screen.classify() on a 200x50 screen + 2,000 lines     info (µs per call)
7. bench.delivery   orch send 1 KB / 100 KB / 1 MB -> recorded by agent    100 KB median < 1 s
8. bench.throughput 50 msgs to 1 agent, 100 msgs over 20 agents            info (msg/s)
9. bench.peers      kill -> replacement: orch at 1/20/100 agents, seed loop,   side by side
                    supervisord (silent death, sh -c child), pm2, circus
10. bench.cli       orch --help / get agents / describe agent / send wall   median < 80 / 100 ms
11. bench.scale     one controller pass and one observation at 100 / 500 / 1,000 real agents
                    (observation < 30 ms per 100 agents; the pass for information)
12. bench.lifecycle next_state / next_run_state, one edge of a machine built once  < 10 µs
13. bench.peer_idle idle CPU and PSS with 20 idle programs: orch, seed loop,       side by side
                    supervisord, pm2, circus (each one's tree besides the programs)

Every benchmark runs in its own sandbox (bench.sandbox): a temp state dir and a tmux socket named
`orch-bench-<random>`, torn down in a `finally` that kills only what that sandbox started. The
results, raw samples included, go to a JSON file in a fresh temp dir (or --json PATH); nothing is
written inside the repository. Progress goes to stderr, the tables to stdout: one for every
figure, then one per side-by-side group (bench.peers, bench.peer_idle) with each peer's ratio to
orch, then the goals (bench.goals): every budget with its figure and ✓ or ✗.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    classify,
    cli,
    delivery,
    idle,
    lifecycle,
    live_edit,
    observe,
    peer_idle,
    peers,
    restart,
    scale,
    stale,
    throughput,
)
from bench.goals import MISSED, goal_rows, goal_table
from bench.report import Figure, failed_figure, render_table, write_json

BENCHMARKS: dict[str, tuple[str, Callable[[], list[Figure]]]] = {
    "restart": ("agent killed -> replacement started", lambda: [restart.run()]),
    "edit": ("manifest saved -> change applied", lambda: [live_edit.run()]),
    "observe": ("observation pass over 10/50/100 agents", observe.run),
    "idle": ("idle CPU and memory of orch, 20 agents", idle.run),
    "stale": ("stale.after elapsed -> Stale", stale.run),
    "classify": ("classify() cost per screen", classify.run),
    "send": ("orch send 1 KB / 100 KB / 1 MB -> recorded", delivery.run),
    "throughput": ("messages per second, 1 and 20 agents", throughput.run),
    "peers": ("crash -> replacement: orch, seed loop, supervisord, pm2, circus", peers.run),
    "cli": ("CLI wall time: --help, get, describe, send", cli.run),
    "scale": ("one controller pass at 100/500/1,000 agents", scale.run),
    "lifecycle": ("next_state / next_run_state per call", lifecycle.run),
    "peer-idle": ("idle CPU and memory: orch, seed loop, supervisord, pm2, circus", peer_idle.run),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table, write the JSON; 1 if any budget or goal (the
    side-by-side ones included) is missed."""
    args = _parser().parse_args(argv)
    figures: list[Figure] = []
    for key in args.only or list(BENCHMARKS):
        figures.extend(_run_one(key))
    print(render_table(figures))
    print("\n" + goal_table(figures))
    path = args.json or Path(tempfile.mkdtemp(prefix="orch-bench-results-")) / "results.json"
    write_json(figures, path)
    print(f"\nraw samples: {path}", file=sys.stderr)
    met = all(row[-1] != MISSED for row in goal_rows(figures))
    return 0 if met and all(_acceptable(f) for f in figures) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="write the results here (default: a temp dir)")
    return parser


def _run_one(key: str) -> list[Figure]:
    """One benchmark; a failure becomes an ERROR row instead of ending the run."""
    title, run = BENCHMARKS[key]
    print(f"bench: {title} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        figures = run()
    except Exception as err:  # noqa: BLE001 - report it in the table and go on with the rest
        figures = [failed_figure(title, err)]
    print(f"bench: {title}: {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    return figures


def _acceptable(figure: Figure) -> bool:
    return figure.verdict.startswith(("PASS", "info", "skipped"))


if __name__ == "__main__":
    sys.exit(main())
