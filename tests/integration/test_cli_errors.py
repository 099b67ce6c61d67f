"""The CLI under store faults and internal errors: one line naming the file, the right exit
code, no long waits; `--debug` and cli.log keep the traceback."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from reconciler.adapters.store import Store
from reconciler.cli.main import main
from tests.conftest import Orch
from tests.integration.test_core import agent_doc


def test_an_internal_error_is_one_line_and_its_traceback_is_kept(
    broken_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = broken_state
    with pytest.raises(SystemExit) as done:
        main(["--state-dir", str(state), "get", "agents"])
    assert done.value.code == 1
    err = capsys.readouterr().err.removeprefix("orch: warning: no controller runs for ")
    err = err.split("\n", 1)[1] if err.startswith(str(state)) else err  # operate's warning
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err
    assert "Traceback" not in err and str(state / "cli.log") in err
    assert "RuntimeError: boom" in (state / "cli.log").read_text()
    with pytest.raises(SystemExit):
        main(["--debug", "--state-dir", str(state), "get", "agents"])
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_locked_store_is_one_line_with_exit_3_without_a_long_wait(orch: Orch) -> None:
    Store(orch.state_dir).close()
    holder = sqlite3.connect(orch.state_dir / "orch.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert orch.run("get", "agents").returncode == 0  # readers are not blocked
        started = time.monotonic()
        manifest = orch.state_dir.parent / "x.yaml"
        manifest.write_text(agent_doc("x"))
        proc = orch.run("apply", "-f", str(manifest), check=False)  # a write
        assert time.monotonic() - started < 25  # the lock is held for good: no 30 s wait
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1] == (
        f"orch: error: store {orch.state_dir / 'orch.db'}: locked by another process (try again)"
    )


def test_a_corrupt_store_is_one_line_naming_the_file(orch: Orch) -> None:
    orch.state_dir.mkdir(mode=0o700)
    (orch.state_dir / "orch.db").write_bytes(b"this is not a database" * 100)
    proc = orch.run("get", "agents", check=False)
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1
    assert f"store {orch.state_dir / 'orch.db'}: not a readable database" in proc.stderr


def test_an_old_store_is_upgraded_in_place(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "orch.db") as conn:  # the shape before schema versions
        conn.execute(
            "CREATE TABLE objects (kind TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,"
            " generation INTEGER NOT NULL, source TEXT NOT NULL, line INTEGER,"
            " created REAL NOT NULL, updated REAL NOT NULL, PRIMARY KEY (kind, name))"
        )
        conn.execute("INSERT INTO objects VALUES ('Agent', 'a', '{}', 3, '/m.yaml', 1, 0, 0)")
    store = Store(state)
    (stored,) = store.objects("Agent")
    assert stored.generation == 3 and len(stored.uid) == 36
    assert store.pending_messages() == {} and store.signals() == []
    version = sqlite3.connect(state / "orch.db").execute("PRAGMA user_version").fetchone()[0]
    assert version >= 3
