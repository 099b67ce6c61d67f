"""Pane output through `tmux pipe-pane`, the agents' FIFOs and the one log writer, on a private
tmux server per test.

The agent script waits for a GO file before printing, so the pipe is attached before any output
(pipe-pane only sees output produced after it is attached). The fixture marks the environment of
our tmux clients, so the server, its panes and their `cat`s carry the mark; the log writer is
marked with the test's state dir. Teardown kills all of them.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from reconciler.adapters.agentlog import fifo_path, log_path, make_fifo, pipe_command, read_log
from reconciler.adapters.logwriter import LogWriterKeeper, notify_new_fifo, writer_running
from reconciler.adapters.tmux import Tmux
from tests.helpers import kill_marked, wait_until

LINES = [f"line {i}" for i in range(1, 51)]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "state"
    (folder / "agents").mkdir(parents=True)
    yield folder
    kill_marked("ORCH_STATE_DIR", str(folder))


def start_printer(tmux: Tmux, state_dir: Path, name: str, go: Path, folder: str = "") -> Path:
    """Session NAME piping into the FIFO of agent dir `folder` (default NAME): waits for `go`,
    prints LINES and a colored line, idles. Returns its log."""
    agent_dir = state_dir / "agents" / (folder or name)
    agent_dir.mkdir(exist_ok=True)
    make_fifo(fifo_path(agent_dir))
    script = (
        f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done; "
        "for i in $(seq 1 50); do echo line $i; done; "
        "printf '\\033[1;32mcolored\\033[0m\\n'; sleep 1000"
    )
    tmux.start(name, script, str(state_dir), {}, pipe_command=pipe_command(fifo_path(agent_dir)))
    notify_new_fifo(state_dir)  # as the executor does after every launch
    return log_path(agent_dir)


def run_writer(state_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.adapters.logwriter", str(state_dir), *args],
        env={"ORCH_STATE_DIR": str(state_dir), "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )


def python_processes_of(state_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("ORCH_STATE_DIR") == str(state_dir) and "python" in proc.name():
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.tmux
def test_pane_output_of_every_agent_reaches_its_log_through_one_writer(
    tmux: Tmux, state_dir: Path, tmp_path: Path
) -> None:
    keeper = LogWriterKeeper(state_dir, tmp_path / "writer.err")
    keeper.ensure()
    go = tmp_path / "go"
    logs = [start_printer(tmux, state_dir, name, go) for name in ("alpha", "beta", "gamma")]

    go.touch()

    wait_until(lambda: all(read_log(log)[-1:] == ["colored"] for log in logs), what="the logs")
    for log in logs:
        assert read_log(log) == [*LINES, "colored"]
    assert read_log(logs[0], tail=2) == ["line 50", "colored"]
    assert len(python_processes_of(state_dir)) == 1
    keeper.ensure()  # a writer runs: no second one
    assert len(python_processes_of(state_dir)) == 1


@pytest.mark.tmux
def test_output_printed_while_the_writer_is_down_is_logged_when_it_returns(
    tmux: Tmux, state_dir: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    log = start_printer(tmux, state_dir, "alpha", go)
    first = run_writer(state_dir)
    wait_until(lambda: writer_running(state_dir), what="the first writer")
    first.kill()
    first.wait(timeout=10)

    go.touch()  # the pane prints with no writer running
    wait_until(lambda: "colored" in tmux.capture_many(["alpha"])["alpha"], what="the pane's output")
    second = run_writer(state_dir)
    try:
        wait_until(lambda: read_log(log)[-1:] == ["colored"], what="the log to catch up")
        assert read_log(log) == [*LINES, "colored"]
    finally:
        second.kill()
        second.wait(timeout=10)


@pytest.mark.tmux
def test_pane_output_is_rotated_without_loss(tmux: Tmux, state_dir: Path, tmp_path: Path) -> None:
    writer = run_writer(state_dir, "--max-bytes", "100", "--keep", "50")
    try:
        go = tmp_path / "go"
        log = start_printer(tmux, state_dir, "alpha", go, "it's alpha;$(touch pwned)")

        go.touch()

        wait_until(lambda: read_log(log)[-1:] == ["colored"], what="the last line in the log")
        assert read_log(log) == [*LINES, "colored"]
        assert len(list(log.parent.glob("pane.log.*"))) >= 3
        assert not list(tmp_path.rglob("pwned*"))
    finally:
        writer.kill()
        writer.wait(timeout=10)


def test_the_writer_exits_when_its_state_dir_is_gone(state_dir: Path) -> None:
    writer = run_writer(state_dir)
    wait_until(lambda: writer_running(state_dir), what="the writer")
    shutil.rmtree(state_dir)
    assert writer.wait(timeout=30) == 0
