"""The pane log writer attached with `tmux pipe-pane`, on a private tmux server per test.

The agent script waits for a GO file before printing, so the pipe is attached before any output
(pipe-pane only sees output produced after it is attached). The fixture marks the environment of
our tmux clients, so the server, its panes and the log writers carry the mark; teardown kills the
server and anything still marked.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import psutil
import pytest

from reconciler.adapters.agentlog import log_path, pipe_command, read_log
from reconciler.adapters.tmux import Tmux
from tests.helpers import wait_until

LINES = [f"line {i}" for i in range(1, 51)]


def start_printer(tmux: Tmux, workdir: Path, go: Path, pipe: str) -> None:
    """Session `alpha`: waits for `go`, prints LINES and a colored line, then idles."""
    script = (
        f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done; "
        "for i in $(seq 1 50); do echo line $i; done; "
        "printf '\\033[1;32mcolored\\033[0m\\n'; sleep 1000"
    )
    tmux.start("alpha", script, str(workdir), {}, pipe_command=pipe)


def writers_of(log: Path) -> list[psutil.Process]:
    """Log writer processes for `log`."""
    found = []
    for proc in psutil.process_iter():
        try:
            if str(log) in proc.cmdline():
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.tmux
def test_pane_output_reaches_the_log(tmux: Tmux, tmp_path: Path) -> None:
    log = log_path(tmp_path / "state" / "agents" / "alpha")
    go = tmp_path / "go"
    start_printer(tmux, tmp_path, go, pipe_command(log))

    go.touch()

    wait_until(lambda: read_log(log)[-1:] == ["colored"], what="the last line in the log")
    assert read_log(log) == [*LINES, "colored"]
    assert read_log(log, tail=2) == ["line 50", "colored"]

    tmux.kill_session("alpha")
    wait_until(lambda: not writers_of(log), what="the writer to exit with its pane")


@pytest.mark.tmux
def test_pane_output_is_rotated_without_loss(tmux: Tmux, tmp_path: Path) -> None:
    log = log_path(tmp_path / "it's alpha; $(touch pwned)")
    go = tmp_path / "go"
    start_printer(tmux, tmp_path, go, pipe_command(log, max_bytes=100, keep=50))

    go.touch()

    wait_until(lambda: read_log(log)[-1:] == ["colored"], what="the last line in the log")
    assert read_log(log) == [*LINES, "colored"]
    assert len(list(log.parent.glob("pane.log.*"))) >= 3
    assert not list(tmp_path.glob("pwned*"))
