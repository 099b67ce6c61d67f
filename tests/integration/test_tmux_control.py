"""The tmux adapter's control-mode client (adapters/tmux_control.py) against real tmux.

With `control`, `Tmux.observe` answers over one long-lived `tmux -C` client instead of a client
process per call: the same panes, its own session never among them, a fallback to a process when
the client is gone, and nothing left behind once it is closed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from reconciler.adapters.tmux import CHANGE_FORMAT, LISTING_FORMAT, SessionExists, Tmux
from reconciler.adapters.tmux_control import CONTROL_PREFIX, ControlClient
from reconciler.api.errors import Unavailable
from tests.conftest import REPO
from tests.helpers import wait_until


@pytest.fixture
def controlled(tmux: Tmux) -> Iterator[Tmux]:
    """A second adapter on the fixture's socket whose `observe` goes over a control client."""
    adapter = Tmux(tmux.socket_name, control="test-install")
    try:
        yield adapter
    finally:
        adapter.close()


def _sessions(tmux: Tmux) -> list[str]:
    result = tmux._run(("list-sessions", "-F", "#{session_name}"))
    return result.out.decode().split() if result.ok else []


def _no_client_processes(*_: object, **__: object) -> object:
    raise AssertionError("a tmux client process was started")


def test_observe_over_control_matches_a_client_process(
    tmux: Tmux, controlled: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {}, launch_id="alpha-1")
    tmux.start("beta", "sleep 100000", str(tmp_path), {}, launch_id="beta-1")
    first = controlled.observe()  # a client process, which starts the control client
    assert any(name.startswith(CONTROL_PREFIX) for name in _sessions(tmux))
    monkeypatch.setattr(controlled, "_run", _no_client_processes)
    over_control = controlled.observe()
    assert over_control == first == tmux.observe()
    assert sorted(over_control) == ["alpha", "beta"]  # the control session is never an agent


def test_launches_go_over_control_with_the_same_result(
    tmux: Tmux, controlled: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    controlled.observe()  # starts the control client
    monkeypatch.setattr(controlled, "_run", _no_client_processes)
    out = tmp_path / "seen"
    log = tmp_path / "pane.log"
    script = f'printf "%s|%s" "$TOKEN" "$ORCH_LAUNCH_ID" > {out}; echo in-beta; exec sleep 100000'
    env = {"TOKEN": 'it\'s a "secret"; $(touch pwned)\nline 2'}
    pane = controlled.start(
        "beta",
        script,
        str(tmp_path),
        env,
        launch_id="beta-1",
        installation="i",
        pipe_command=f"exec cat >> {log}",
    )
    seen = wait_until(lambda: out.read_text() if out.exists() else "", what="the shell's output")
    assert seen == f"{env['TOKEN']}|beta-1"
    # The output goes to the new pane's pipe (not to the control client's own pane).
    wait_until(lambda: log.exists() and "in-beta" in log.read_text(), what="piped output")
    assert not (tmp_path / "pwned").exists()
    seen_pane = controlled.observe()["beta"]  # the answer was the listing a process gives:
    assert (seen_pane.pane_id, seen_pane.pid) == (pane.pane_id, pane.pid)
    assert (seen_pane.launch_id, seen_pane.installation) == ("beta-1", "i")
    # A refusal comes back as the same error, and the client stays in step for the next call.
    with pytest.raises(SessionExists):
        controlled.start("beta", "sleep 1", str(tmp_path), {})
    assert sorted(controlled.observe()) == ["alpha", "beta"]
    replaced = controlled.start("beta", "sleep 100000", str(tmp_path), {}, replace=True)
    assert controlled.observe()["beta"].pid == replaced.pid != pane.pid


def test_an_idle_observation_asks_only_what_changes(
    tmux: Tmux, controlled: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {}, launch_id="alpha-1")
    controlled.observe()  # a client process, which starts the control client
    client = controlled._control
    assert client is not None
    # tmux lists the client's own session a moment after the client is in step: until then the
    # listing still changes.
    wait_until(
        lambda: client.session in str(client.run(("list-panes", "-a", "-F", "#{session_name}"))),
        what="the control client's session listed",
    )
    controlled.observe()
    asked: list[str] = []
    run = client.run

    def counted(command: Sequence[str]) -> bytes | None:
        asked.append(command[-1])
        return run(command)

    monkeypatch.setattr(client, "run", counted)
    first = controlled.observe()
    again = controlled.observe()
    assert again == first and asked[-1] == CHANGE_FORMAT  # unchanged: the short listing only
    tmux.start("beta", "sleep 100000", str(tmp_path), {}, launch_id="beta-1")
    seen = controlled.observe()
    assert asked[-2:] == [CHANGE_FORMAT, LISTING_FORMAT]  # changed: the whole listing again
    assert seen["beta"].launch_id == "beta-1" and seen == tmux.observe()


def test_a_killed_server_falls_back_to_no_sessions(
    tmux: Tmux, controlled: Tmux, tmp_path: Path
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    controlled.observe()
    tmux._run(("kill-server",))
    # kill-server returns before the server has gone: wait until a client finds none
    wait_until(lambda: "no server" in tmux._run(("list-sessions",)).err, what="server gone")
    assert controlled.observe() == {}


def test_closing_removes_the_control_session(tmux: Tmux, controlled: Tmux, tmp_path: Path) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    controlled.observe()
    controlled.close()
    wait_until(lambda: _sessions(tmux) == ["alpha"], what="only the agent's session left")


def test_a_dead_client_is_replaced_by_a_process_call(
    tmux: Tmux, controlled: Tmux, tmp_path: Path
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    controlled.observe()
    client = controlled._control
    assert client is not None and client._proc is not None
    os.kill(client._proc.pid, signal.SIGKILL)
    client._proc.wait()
    assert sorted(controlled.observe()) == ["alpha"]


def test_arguments_it_cannot_quote_are_refused(tmux: Tmux, tmp_path: Path) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    client = ControlClient(tmux.socket_name, "quote-test", tmux.tmux_bin, timeout=3.0)
    try:
        assert client.open()
        assert client.run(("display-message", "-p", "it's")) is None
        assert client.run(("display-message", "-p", "two\nlines")) is None
        # literal words reach tmux's parser whole; formats (which tmux expands) still expand
        said = client.run(("display-message", "-p", "plain $HOME ~ #{e|+:1,2};"))
        assert said == b"plain $HOME ~ 3;\n"
    finally:
        client.close()


def test_no_server_means_no_client(tmux: Tmux) -> None:
    adapter = Tmux(tmux.socket_name, control="test-install")
    try:
        assert adapter.observe() == {}
        assert adapter._control is not None and not adapter._control.connected
    except Unavailable:
        pytest.fail("observe without a server must answer {}")
    finally:
        adapter.close()


def test_a_killed_controllers_control_session_is_its_successors(tmux: Tmux, tmp_path: Path) -> None:
    """SIGKILL leaves no `close`, and the session stays: the successor's client attaches to it,
    so no session is made or ended while that client introduces itself (which crashes tmux
    before 3.7, issue #4980). Never `destroy-unattached` either (it can crash tmux 3.3a)."""
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    script = (
        "import sys\n"
        "from reconciler.adapters.tmux import Tmux\n"
        f"adapter = Tmux({tmux.socket_name!r}, control='killed')\n"
        "adapter.observe(); adapter.observe()\n"  # the first call starts the client
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        before = _sessions_with_ids(tmux)
        (session,) = [line.split()[0] for line in before if line.startswith(CONTROL_PREFIX)]
        assert tmux._run(("show-options", "-t", session, "destroy-unattached")).out == b""
        child.kill()
        child.wait()
        successor = Tmux(tmux.socket_name, control="killed")
        try:
            assert sorted(successor.observe()) == ["alpha"]  # a process, then the connection
            assert successor._control is not None and successor._control.connected
            assert successor._control.session == session
            assert _sessions_with_ids(tmux) == before  # nothing made, nothing ended
        finally:
            successor.close()
        wait_until(lambda: _sessions(tmux) == ["alpha"], what="only the agent's session left")
    finally:
        child.kill()
        child.wait()


def test_a_client_left_behind_by_a_killed_controller_is_ended_by_its_successor(
    tmux: Tmux, tmp_path: Path
) -> None:
    """Killed while tmux still had output for it, a controller leaves its client behind: tmux
    waits for a reader that is gone, and `kill-server` could not finish. The successor ends it."""
    tmux.start("alpha", "sleep 100000", str(tmp_path), {})
    script = (
        "import sys, time\n"
        "from reconciler.adapters.tmux_control import ControlClient\n"
        f"client = ControlClient({tmux.socket_name!r}, 'leaky', 'tmux', 10)\n"
        "assert client.open() and client._proc and client._proc.stdin\n"
        # ≈ 240 KB of answers, read by nobody: more than a pipe holds
        "ask = \"display-message -p '\" + 'x' * 8000 + \"'\\n\"\n"
        "client._proc.stdin.write(ask.encode() * 30); client._proc.stdin.flush()\n"
        "print(client._proc.pid, flush=True)\n"
        "time.sleep(1000)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        left = child.stdout.readline().strip()
        child.kill()
        child.wait()
        assert left in _clients(tmux)  # the predecessor's client, stuck
        successor = ControlClient(tmux.socket_name, "leaky", tmux.tmux_bin, timeout=3.0)
        try:
            assert successor.open()
            assert successor._proc is not None
            own = [str(successor._proc.pid).encode()]
            wait_until(lambda: _clients(tmux) == own, what="the successor's client alone")
        finally:
            successor.close()
    finally:
        child.kill()
        child.wait()


def _clients(tmux: Tmux) -> list[bytes]:
    result = tmux._run(("list-clients", "-F", "#{client_pid}"))
    return result.out.split() if result.ok else []


def _sessions_with_ids(tmux: Tmux) -> list[str]:
    """Each session's name and id: a session ended and made again under its name has a new id."""
    result = tmux._run(("list-sessions", "-F", "#{session_name} #{session_id}"))
    assert result.ok
    return sorted(result.out.decode().splitlines())


def test_server_setup_goes_once_per_connection(
    tmux: Tmux, controlled: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each set-option makes tmux revisit every session, so launches over the control client
    leave the server's settings to the connection, which makes them (here on a server started
    without them); a client process still sends them with its launch."""
    plain = ["tmux", "-L", tmux.socket_name, "-f", "/dev/null"]
    subprocess.run([*plain, "new-session", "-d", "-s", "other", "sleep 100000"], check=True)
    controlled.observe()  # a client process, then the connection
    client = controlled._control
    assert client is not None and client.connected
    lists: list[list[str]] = []
    run_lists = client.run_lists

    def counted(chains: Sequence[Sequence[Sequence[str]]]) -> object:
        lists.extend([command[0] for command in chain] for chain in chains)
        return run_lists(chains)

    monkeypatch.setattr(client, "run_lists", counted)
    controlled.start("alpha", "sleep 100000", str(tmp_path), {})
    controlled.start("beta", "sleep 100000", str(tmp_path), {})
    assert lists and all("set-option" not in chain[:1] for chain in lists)
    assert all(chain[0] == "new-session" for chain in lists)

    def show(*args: str) -> str:
        return subprocess.run(
            [*plain, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    assert show("show-options", "-sv", "exit-empty") == "off"
    assert show("show-options", "-gv", "remain-on-exit") == "off"
    assert show("display-message", "-p", "-t", "=beta:", "#{history_limit}") == "10000"
