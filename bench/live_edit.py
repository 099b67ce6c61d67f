"""Figure 2: manifest saved -> change applied.

One recording agent (see bench.workload) is applied from a file; each round, once the current
launch is Running, the file is rewritten in place with a new value of an env var in the agent's
spec (a spec change that needs a new process). t0 = time.time() right before the write; the
figure is the new launch's own recorded start time minus t0. The controller learns of the edit
from its file watcher alone: no `orch apply` is run after the first.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.report import Budget, Figure
from bench.sandbox import StoreReader, sandbox
from bench.workload import StartLog, agent_document, manifest, recording_command
from reconciler.adapters.deadline import wait_until

AGENT = "edited"
EDITS = 10


def run(edits: int = EDITS) -> Figure:
    """Edit the applied manifest `edits` times; return the save -> new process delays in ms."""
    with sandbox() as box:
        starts = StartLog(box.workdir / "starts")
        path = box.workdir / "agent.yaml"
        _write(path, starts, revision=0)
        box.orch("apply", "-f", str(path))
        reader = StoreReader(box.state_dir)
        try:
            delays = [_edit_once(path, reader, starts, rev) for rev in range(1, edits + 1)]
        finally:
            reader.close()
    return Figure(
        "manifest saved -> change applied",
        "ms",
        tuple(delays),
        Budget(300.0),
        note="in-place rewrite of the applied file (env change) to the new launch's start time",
    )


def _edit_once(path: Path, reader: StoreReader, starts: StartLog, revision: int) -> float:
    """Wait for the current launch to be Running, save `revision`, return ms to its launch."""
    wait_until(lambda: starts.count() == revision, what=f"{revision} recorded starts")
    previous = starts.previous()
    wait_until(
        lambda: reader.running_since(AGENT, previous), what=f"revision {revision - 1} Running"
    )
    t0 = time.time()
    _write(path, starts, revision)
    wait_until(lambda: starts.count() > revision, what=f"revision {revision} started")
    return (starts.times()[revision] - t0) * 1000.0


def _write(path: Path, starts: StartLog, revision: int) -> None:
    """Write the manifest with the agent's spec at `revision`."""
    env = {"BENCH_REVISION": str(revision)}
    path.write_text(manifest([agent_document(AGENT, recording_command(starts.path), env)]))
