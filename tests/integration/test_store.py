"""The SQLite store against the real thing: permissions, generations, concurrency, kill -9."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.adapters.store import DELIVERED_KEPT, Store
from reconciler.adapters.store_rows import Declaration
from reconciler.api.history import Event, EventType
from reconciler.api.messages import Phase
from reconciler.api.status import AgentRecord, AgentState
from tests.helpers import wait_until


def integrity_ok(state_dir: Path) -> bool:
    """SQLite's own integrity check of the store passes."""
    with sqlite3.connect(state_dir / "orch.db") as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def declaration(name: str, command: str = "codex", source: str = "/m/team.yaml") -> Declaration:
    document: dict[str, Any] = {
        "apiVersion": "orch/v1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"command": command},
    }
    return Declaration("Agent", name, document, source, 1)


def test_state_dir_and_files_are_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = Store(state_dir)
    store.apply([declaration("a")], ["/m/team.yaml"])
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    for path in state_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_generation_bumps_only_when_the_spec_changes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    verbs = [c.verb for c in store.apply([declaration("a")], ["/m/team.yaml"])]
    assert verbs == ["created"]
    assert [c.verb for c in store.apply([declaration("a")], ["/m/team.yaml"])] == ["unchanged"]
    assert store.object("Agent", "a").generation == 1  # type: ignore[union-attr]
    changed = store.apply([declaration("a", "codex --new")], ["/m/team.yaml"])
    assert [c.verb for c in changed] == ["configured"]
    assert store.object("Agent", "a").generation == 2  # type: ignore[union-attr]


def test_apply_deletes_what_the_same_file_no_longer_declares(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply([declaration("a"), declaration("b")], ["/m/team.yaml"])
    store.apply([declaration("c", source="/m/other.yaml")], ["/m/other.yaml"])
    changes = store.apply([declaration("a")], ["/m/team.yaml"])
    assert {(c.name, c.verb) for c in changes} == {("a", "unchanged"), ("b", "deleted")}
    assert [o.name for o in store.objects("Agent")] == ["a", "c"]


def test_records_and_events_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    record = AgentRecord(
        "a", AgentState.RUNNING, 1.0, "Started", "ok", restarts=3, pid=42, crash_times=(1.0, 2.0)
    )
    event = Event("agent/a", EventType.WARNING, "Restarted", "exited")
    store.commit_pass({"a": record}, [event], [])
    assert store.agent_record("a") == record
    (stored,) = store.events("agent/a")
    assert (stored.reason, stored.type) == ("Restarted", EventType.WARNING)
    store.commit_pass({"a": None}, [], [])
    assert store.agent_records() == {}


def _hammer(state_dir: str, prefix: str, rounds: int) -> None:
    store = Store(Path(state_dir))
    source = f"/m/{prefix}.yaml"
    for i in range(rounds):
        store.apply([declaration(f"{prefix}-{i % 5}", f"cmd {i}", source)], [source])
        store.commit_pass(
            {f"{prefix}-r": AgentRecord(f"{prefix}-r", AgentState.RUNNING, i)},
            [Event(f"agent/{prefix}", EventType.NORMAL, "Tick", str(i))],
            [],
        )


def test_concurrent_writers_leave_a_consistent_store(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(tmp_path), f"w{n}", 40)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = Store(tmp_path)
    assert integrity_ok(tmp_path)
    assert sorted(o.name for o in store.objects("Agent")) == ["w0-4", "w1-4", "w2-4", "w3-4"]
    assert len(store.events()) == 160


WRITER = """
import sys
from pathlib import Path
from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import Declaration
store = Store(Path(sys.argv[1]))
i = 0
print("ready", flush=True)
while True:
    doc = {"apiVersion": "orch/v1", "kind": "Agent", "metadata": {"name": "a"},
           "spec": {"command": f"cmd {i}"}}
    store.apply([Declaration("Agent", "a", doc, "/m/t.yaml", 1)], ["/m/t.yaml"])
    i += 1
"""


def _generation(state_dir: Path) -> int:
    stored = Store(state_dir).object("Agent", "a")
    return stored.generation if stored else 0


def test_kill_9_of_a_writer_leaves_the_store_intact(tmp_path: Path) -> None:
    for _ in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        wait_until(lambda: _generation(tmp_path) > 5, what="writes under way")
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        store = Store(tmp_path)
        assert integrity_ok(tmp_path)
        assert store.object("Agent", "a") is not None


def test_runs_unfinished_only_leaves_finished_runs_out(tmp_path: Path) -> None:
    from dataclasses import replace

    from reconciler.api.manifest import Playbook
    from reconciler.api.status import RunState
    from reconciler.core.runs import RunRecord

    document: dict[str, Any] = {
        "apiVersion": "orch/v1",
        "kind": "Playbook",
        "metadata": {"name": "p"},
        "spec": {"steps": [{"name": "s", "agent": "a", "prompt": "go"}]},
    }
    spec = Playbook.model_validate(document).spec
    store = Store(tmp_path)
    for name, state in [
        ("done", RunState.SUCCEEDED),
        ("busy", RunState.RUNNING),
        ("lost", RunState.FAILED),
    ]:
        store.create_run(
            replace(RunRecord.new(name, "p", spec, {}, 1.0), state=state), document["spec"]
        )
    store.cancel_run("lost")
    assert [r.name for r in store.runs(unfinished_only=True)] == ["busy", "lost"]
    assert len(store.runs()) == 3


def test_delivered_messages_are_pruned_and_a_pass_reads_only_queue_heads(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ids = [store.enqueue("a", "user", f"m{i}") for i in range(DELIVERED_KEPT + 20)]
    later = store.enqueue("a", "user", "still queued")
    delivered = [
        replace(m, phase=Phase.DELIVERED, delivered_at=1.0) for m in map(store.message, ids) if m
    ]
    store.commit_pass({}, [], [], delivered)
    assert store.pending_messages()["a"].id == later
    store.prune_history()
    kept = store.messages("a", limit=1000)
    assert len(kept) == DELIVERED_KEPT + 1
    assert kept[-1].id == later and kept[0].id == ids[20]


def test_gate_results_of_an_older_store_are_labelled_with_their_steps_attempt(
    tmp_path: Path,
) -> None:
    from reconciler.api.manifest import Playbook
    from reconciler.core.runs import RunRecord, StepPhase
    from reconciler.core.steps import GateResult

    spec: dict[str, Any] = {"steps": [{"name": "draft", "agent": "w", "prompt": "p"}]}
    document = {"apiVersion": "orch/v1", "kind": "Playbook", "metadata": {"name": "f"}}
    document["spec"] = spec
    record = RunRecord.new("flow-1", "flow", Playbook.model_validate(document).spec, {}, 1.0)
    step = replace(
        record.steps[0], phase=StepPhase.WORKING, attempt=2, gates=(GateResult("g", False, "x"),)
    )
    store = Store(tmp_path)
    store.create_run(replace(record, steps=(step,)), spec)
    store.close()
    with sqlite3.connect(tmp_path / "orch.db") as conn:  # as a version-4 orch wrote it
        (text,) = conn.execute("SELECT record FROM runs").fetchone()
        old = json.loads(text)
        del old["steps"][0]["gates"][0]["attempt"]
        conn.execute("UPDATE runs SET record=?", (json.dumps(old),))
        conn.execute("PRAGMA user_version=4")
    stored = Store(tmp_path).run("flow-1")
    assert stored is not None
    (gate,) = stored.record.steps[0].gates
    assert gate.attempt == 2 and stored.record.steps[0].current_gates == (gate,)
