"""The tmux adapter and process control against real tmux, one private server per test.

Every test gets its own socket (`orch-test-<random>`). The fixture puts a marker variable into
the environment of our tmux clients, so the server they start, its panes and anything those fork
(daemons included) carry it; teardown kills that server and every process with the marker, so a
failing test leaves nothing behind (not even the socket file).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from reconciler.adapters.processes import launch_processes, stop_launch, terminate
from reconciler.adapters.tmux import SessionExists, Tmux
from reconciler.api.errors import InvalidInput, NotFound
from reconciler.api.observation import PaneObservation
from tests.helpers import FAKE_AGENT, processes_with_env, received, wait_until


def agent_script(*args: str, exec_: bool = True) -> str:
    """A pane script running the fake agent (replacing the shell unless exec_ is False)."""
    command = shlex.join([sys.executable, str(FAKE_AGENT), *args])
    return f"exec {command}" if exec_ else command


def start_agent(
    tmux: Tmux, name: str, workdir: Path, *args: str, env: dict[str, str] | None = None
) -> PaneObservation:
    """Start a fake agent in session NAME and wait until it is ready for input."""
    pane = tmux.start(name, agent_script("--name", name, *args), str(workdir), env or {})
    wait_for_screen(tmux, name, f"FAKE AGENT READY {name}")
    return pane


def screen(tmux: Tmux, name: str) -> str:
    """NAME's screen now ("" when it has no session)."""
    return tmux.capture_many([name]).get(name, "")


def wait_for_screen(tmux: Tmux, name: str, text: str, timeout: float = 10.0) -> str:
    """Wait until `text` is on NAME's screen; return the screen."""

    def screen_with_text() -> str:
        shown = screen(tmux, name)
        return shown if text in shown else ""

    return wait_until(screen_with_text, timeout=timeout, what=f"{text!r} on the screen of {name}")


def submit(tmux: Tmux, name: str, text: str) -> None:
    """Type a command into the agent and press Enter."""
    tmux.send_literal(name, text)
    tmux.send_keys(name, ["Enter"])


def spinner_seconds(screen: str) -> float:
    """The elapsed time the fake agent's spinner shows (0 when none)."""
    shown = re.findall(r"Working… \((\d+\.\d)s", screen)
    return float(shown[-1]) if shown else 0.0


def is_gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.tmux
def test_started_agent_is_observed(tmux: Tmux, tmp_path: Path) -> None:
    pane = start_agent(tmux, "alpha", tmp_path)

    observed = tmux.observe()

    assert list(observed) == ["alpha"]
    seen = observed["alpha"]
    assert replace(seen, activity=pane.activity, cursor_y=pane.cursor_y) == pane
    assert not seen.dead
    assert seen.activity >= seen.created
    assert str(FAKE_AGENT) in psutil.Process(pane.pid).cmdline()


def _tmux(tmux: Tmux, *args: str) -> str:
    """A tmux command's output on the test's server, by a client of its own."""
    cmd = ["tmux", "-L", tmux.socket_name, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.tmux
def test_a_launch_is_stamped_by_its_start_command_alone(tmux: Tmux, tmp_path: Path) -> None:
    folder = tmp_path / "a b"  # a start command tmux quotes
    folder.mkdir()
    pane = tmux.start(
        "alpha",
        "sleep 100000",
        str(tmp_path),
        {},
        launch_id="alpha-1",
        installation="i-1",
        env_dir=folder,
    )

    assert (pane.installation, pane.launch_id) == ("i-1", "alpha-1")
    # No option set: each set-option makes tmux revisit every session.
    assert "@orch" not in _tmux(tmux, "show-options", "-t", "=alpha:")
    # The agent sets the options an older orch stamped with: the start command still decides.
    _tmux(tmux, "set-option", "-t", "=alpha:", "@orch_launch", "forged")
    seen = tmux.observe()["alpha"]
    assert (seen.installation, seen.launch_id) == ("i-1", "alpha-1")


@pytest.mark.tmux
def test_an_older_orchs_option_stamp_is_read_and_cannot_split_the_listing(
    tmux: Tmux, tmp_path: Path
) -> None:
    tmux.start("alpha", "sleep 100000", str(tmp_path), {}, launch_id="alpha-1")
    _tmux(tmux, "new-session", "-d", "-s", "old", "sleep 100000")  # no launch file: as before
    _tmux(tmux, "set-option", "-t", "=old:", "@orch_install", "i-1")
    _tmux(tmux, "set-option", "-t", "=old:", "@orch_launch", "old-1")
    seen = tmux.observe()
    assert (seen["old"].installation, seen["old"].launch_id) == ("i-1", "old-1")

    # Anyone on the socket can set an option: a tab or a line break in it splits no line.
    _tmux(tmux, "set-option", "-t", "=old:", "@orch_launch", "old-2\tx\n%9\t1")
    seen = tmux.observe()
    assert sorted(seen) == ["alpha", "old"]
    assert (seen["old"].installation, seen["old"].launch_id) == ("i-1", "old-2x91")
    assert seen["alpha"].launch_id == "alpha-1"


@pytest.mark.tmux
def test_a_stamp_that_is_not_a_name_is_refused_before_anything_is_written(
    tmux: Tmux, tmp_path: Path
) -> None:
    folder = tmp_path / "launch"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="launch stamp"):
        tmux.start("alpha", "sleep 1", str(tmp_path), {}, launch_id="a.b", env_dir=folder)
    assert list(folder.iterdir()) == [] and tmux.observe() == {}


@pytest.mark.tmux
def test_start_sets_server_options_before_the_session(tmux: Tmux, tmp_path: Path) -> None:
    start_agent(tmux, "alpha", tmp_path)

    assert _tmux(tmux, "show-options", "-sv", "exit-empty") == "off"
    assert _tmux(tmux, "show-options", "-gv", "remain-on-exit") == "off"
    assert _tmux(tmux, "display-message", "-p", "-t", "=alpha:", "#{history_limit}") == "10000"
    size = _tmux(tmux, "display-message", "-p", "-t", "=alpha:", "#{window_width}x#{window_height}")
    assert size == "200x50"


@pytest.mark.tmux
def test_start_passes_workdir_and_env_verbatim(tmux: Tmux, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    value = "two words; $HOME `no` 'quotes' \"and\" ünïcode"
    script = 'printf "%s|%s" "$PWD" "$ODD_VALUE" > "$OUT"'

    tmux.start("alpha", script, str(tmp_path), {"ODD_VALUE": value, "OUT": str(out)})

    written = wait_until(lambda: out.exists() and out.read_text(), what="env.txt")
    assert written == f"{tmp_path}|{value}"


@pytest.mark.tmux
def test_start_of_an_existing_session_is_refused(tmux: Tmux, tmp_path: Path) -> None:
    pane = start_agent(tmux, "alpha", tmp_path)

    with pytest.raises(SessionExists, match="alpha already exists"):
        tmux.start("alpha", agent_script(), str(tmp_path), {})

    assert tmux.observe()["alpha"].pid == pane.pid


@pytest.mark.tmux
def test_start_with_replace_kills_an_existing_session_in_the_same_call(
    tmux: Tmux, tmp_path: Path
) -> None:
    old = tmux.start("alpha", "sleep 1000", str(tmp_path), {})
    bystander = tmux.start("alpha-2", "sleep 1000", str(tmp_path), {})

    new = tmux.start("alpha", "sleep 1000", str(tmp_path), {}, replace=True)

    panes = tmux.observe()
    assert panes["alpha"].pid == new.pid != old.pid
    assert panes["alpha-2"].pid == bystander.pid  # only the exact name is replaced
    wait_until(lambda: not psutil.pid_exists(old.pid), what="the old pane's process to end")


@pytest.mark.tmux
def test_start_with_replace_starts_when_there_is_nothing_to_replace(
    tmux: Tmux, tmp_path: Path
) -> None:
    first = tmux.start("alpha", "sleep 1000", str(tmp_path), {}, replace=True)  # no server yet
    tmux.kill_session("alpha")
    tmux.start("keep", "sleep 1000", str(tmp_path), {})

    second = tmux.start("alpha", "sleep 1000", str(tmp_path), {}, replace=True)

    assert tmux.observe()["alpha"].pid == second.pid != first.pid


@pytest.mark.tmux
def test_sigkilled_agent_destroys_its_session(tmux: Tmux, tmp_path: Path) -> None:
    pane = start_agent(tmux, "alpha", tmp_path)
    start_agent(tmux, "beta", tmp_path)

    os.kill(pane.pid, signal.SIGKILL)

    wait_until(lambda: "alpha" not in tmux.observe(), what="session alpha to disappear")
    assert list(tmux.observe()) == ["beta"]
    assert not tmux.session_exists("alpha")


@pytest.mark.tmux
def test_wrapper_script_records_the_exit_code(tmux: Tmux, tmp_path: Path) -> None:
    exit_file = tmp_path / "exit-code"
    agent = agent_script("--exit-code", "3", "--exit-after", "0.2", exec_=False)
    script = f'{agent}\nprintf %s "$?" > "$ORCH_EXIT_FILE"'

    tmux.start("alpha", script, str(tmp_path), {"ORCH_EXIT_FILE": str(exit_file)})

    code = wait_until(lambda: exit_file.exists() and exit_file.read_text(), what="exit file")
    assert code == "3"
    wait_until(lambda: not tmux.session_exists("alpha"), what="session alpha to disappear")


@pytest.mark.tmux
def test_stop_launch_kills_the_tree_and_the_double_forked_daemon(
    tmux: Tmux, tmp_path: Path
) -> None:
    launch_id = uuid.uuid4().hex
    pane = tmux.start(
        "alpha",
        agent_script("--name", "alpha", exec_=False),  # sh -> python: a real tree
        str(tmp_path),
        {"ORCH_LAUNCH_ID": launch_id},
    )
    wait_for_screen(tmux, "alpha", "FAKE AGENT READY alpha")
    submit(tmux, "alpha", "daemon")
    screen = wait_for_screen(tmux, "alpha", "daemon started")
    daemon = int(re.findall(r"daemon started (\d+)", screen)[0])
    # The daemon left both the pane's process tree and its session.
    assert psutil.Process(daemon).ppid() != pane.pid
    assert os.getsid(daemon) != pane.pid
    found = {proc.pid for proc in launch_processes(launch_id, [pane.pid])}
    assert {pane.pid, daemon} <= found
    assert os.getpid() not in found

    stop_launch(launch_id, [pane.pid])

    assert processes_with_env("ORCH_LAUNCH_ID", launch_id) == []
    assert is_gone(daemon)
    assert is_gone(pane.pid)
    wait_until(lambda: not tmux.session_exists("alpha"), what="session alpha to disappear")


@pytest.mark.tmux
@pytest.mark.parametrize(
    "text",
    [
        "first line\nzweite Zeile — ü ✓ 日本語 🚀\n\tindented\n\nlast \\ 'quoted' \"too\" $HOME",
        "\n".join(f"{i:05d} {'ü✓ text ' * 12}" for i in range(1000)),  # ≈ 100 KB
    ],
    ids=["unicode", "100KB"],
)
def test_paste_then_enter_is_recorded_byte_exact(tmux: Tmux, tmp_path: Path, text: str) -> None:
    record = tmp_path / "record.jsonl"
    start_agent(tmux, "alpha", tmp_path, "--record", str(record))

    tmux.paste("alpha", text)
    tmux.send_keys("alpha", ["Enter"])

    assert wait_until(lambda: received(record), what="a recorded message") == [text]
    buffers = subprocess.run(
        ["tmux", "-L", tmux.socket_name, "list-buffers"], capture_output=True, text=True, check=True
    )
    assert buffers.stdout == ""


@pytest.mark.tmux
def test_paste_to_a_missing_session_is_not_found(tmux: Tmux, tmp_path: Path) -> None:
    start_agent(tmux, "alpha", tmp_path)

    with pytest.raises(NotFound):
        tmux.paste("beta", "hello")
    with pytest.raises(NotFound):
        tmux.send_keys("beta", ["Enter"])


@pytest.mark.tmux
def test_capture_many_reads_each_session_and_skips_missing_ones(tmux: Tmux, tmp_path: Path) -> None:
    names = ["alpha", "beta", "gamma"]
    for name in names:
        start_agent(tmux, name, tmp_path)
        submit(tmux, name, f"say only-in-{name}")
        wait_for_screen(tmux, name, f"only-in-{name}\n")

    screens = tmux.capture_many(["alpha", "missing", "beta", "gamma"])

    assert list(screens) == names
    for name in names:
        assert f"only-in-{name}" in screens[name]
        others = [other for other in names if other != name]
        assert all(f"only-in-{other}" not in screens[name] for other in others)


@pytest.mark.tmux
def test_capture_many_handles_more_sessions_than_one_command_line_holds(
    tmux: Tmux, tmp_path: Path
) -> None:
    names = [f"agent-{i:04d}-" + "x" * 29 for i in range(300)]  # 40-character names
    for name in names:
        tmux.start(name, f"echo only-in-{name}; exec sleep 600", str(tmp_path), {})
    wait_until(lambda: len(tmux.observe()) == len(names), what="every session")
    screens = tmux.capture_many([names[0], "missing", *names[1:]])
    assert list(screens) == names
    assert all(f"only-in-{name}" in screens[name] for name in names)


@pytest.mark.tmux
def test_pipe_command_gets_pane_output_from_the_start(tmux: Tmux, tmp_path: Path) -> None:
    log = tmp_path / "it's a log; $(touch pwned).txt"
    tmux.start(
        "alpha",
        agent_script("--name", "alpha"),
        str(tmp_path),
        {},
        pipe_command=f"exec cat >> {shlex.quote(str(log))}",
    )
    wait_until(lambda: log.exists() and "FAKE AGENT READY" in log.read_text(), what="banner")
    submit(tmux, "alpha", "say hello-pipe")

    wait_until(lambda: log.exists() and "hello-pipe" in log.read_text(), what="piped output")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.tmux
def test_kill_session_tolerates_what_is_already_gone(tmux: Tmux, tmp_path: Path) -> None:
    start_agent(tmux, "alpha", tmp_path)

    tmux.kill_session("alpha")
    tmux.kill_session("alpha")

    assert tmux.observe() == {}  # a server without sessions
    assert tmux.capture_many(["alpha"]) == {}


@pytest.mark.tmux
def test_no_server_means_no_sessions(tmux: Tmux) -> None:
    assert tmux.observe() == {}
    assert not tmux.session_exists("alpha")
    assert tmux.capture_many(["alpha"]) == {}
    tmux.kill_session("alpha")


@pytest.mark.tmux
def test_fake_agent_commands_script_its_behaviour(tmux: Tmux, tmp_path: Path) -> None:
    exit_file = tmp_path / "exit-code"
    script = f'{agent_script("--name", "alpha", exec_=False)}\nprintf %s "$?" > {exit_file}'
    tmux.start("alpha", script, str(tmp_path), {})
    wait_for_screen(tmux, "alpha", "FAKE AGENT READY alpha")

    submit(tmux, "alpha", "limit")
    wait_for_screen(tmux, "alpha", "You've hit your usage limit · resets 3pm")
    submit(tmux, "alpha", "ask")
    wait_for_screen(tmux, "alpha", "Do you want to proceed? [y/N]")
    submit(tmux, "alpha", "y")
    wait_for_screen(tmux, "alpha", "answered: yes")
    submit(tmux, "alpha", "write out.txt hello world")
    wait_until(lambda: (tmp_path / "out.txt").exists(), what="out.txt")
    submit(tmux, "alpha", "spin")
    wait_until(
        lambda: spinner_seconds(screen(tmux, "alpha")) >= 0.3,
        what="the timer to move",
    )
    tmux.send_keys("alpha", ["Escape"])
    wait_for_screen(tmux, "alpha", "Interrupted")
    submit(tmux, "alpha", "crash 5")

    assert wait_until(lambda: exit_file.exists() and exit_file.read_text()) == "5"
    assert (tmp_path / "out.txt").read_text() == "hello world"


@pytest.mark.tmux
def test_fake_agent_restores_the_terminal_on_sigterm(tmux: Tmux, tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    agent = agent_script("--name", "alpha", "--pid-file", str(pid_file), exec_=False)
    script = f'stty -g > before\n{agent}\necho "$?" > code\nstty -g > after'
    tmux.start("alpha", script, str(tmp_path), {})
    wait_for_screen(tmux, "alpha", "FAKE AGENT READY alpha")

    os.kill(int(pid_file.read_text()), signal.SIGTERM)

    wait_until(lambda: (tmp_path / "after").exists() and (tmp_path / "after").read_text())
    assert (tmp_path / "code").read_text() == f"{128 + signal.SIGTERM}\n"
    assert (tmp_path / "after").read_text() == (tmp_path / "before").read_text()


def test_launch_processes_spares_the_caller_and_its_session() -> None:
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        found = launch_processes("", [sleepers[0].pid, os.getpid(), os.getppid()])

        # The root shares our session, but our session is never swept.
        assert [proc.pid for proc in found] == [sleepers[0].pid]
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def test_terminate_escalates_to_sigkill_and_reaps() -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"

        terminate([psutil.Process(stubborn.pid)], grace=0.2)

        assert not psutil.pid_exists(stubborn.pid)  # killed, and reaped: not even a zombie
    finally:
        stubborn.kill()
        stubborn.wait()
