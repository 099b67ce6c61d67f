"""The plain shapes of `get`, `describe` and `send` run on `entry`'s fast path (without click) and
print exactly what the click CLI prints for the same words: stdout, stderr and exit code, each
pair of runs on the same installation, in the states a user meets (no state dir, no agents, no
controller, an unknown agent, hostile message text)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.adapters.store import Store
from reconciler.api.messages import QueuedMessage
from reconciler.cli.entry import main as entry_main
from reconciler.cli.entry import plain_command
from reconciler.cli.main import main as cli_main
from tests.conftest import Orch
from tests.integration.test_core import agent_doc, write_manifest

pytestmark = pytest.mark.tmux

#: Modules a fast path must not load: click (the full CLI), and what only some commands need:
#: typing; shutil (to find tmux before starting a controller); how messages are delivered (its
#: regexes); events and transitions (`describe` shows them).
HEAVY = ("click", "typing", "shutil", "reconciler.core.delivery", "reconciler.api.history")

#: `orch ARGS` on the fast path, as the installed script runs it (`entry.script`: it ends the
#: process with os._exit); it writes which of HEAVY it imported to the file in argv[1] as it ends.
FAST = f"""
import os, sys
from reconciler.cli import entry
marker, sys.argv = sys.argv[1], ["orch", *sys.argv[2:]]
end = os._exit
def _exit(code):
    open(marker, "w").write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
    end(code)
os._exit = _exit
entry.script()
"""
#: `orch ARGS` through the click CLI (what every other shape runs).
CLICK = "import sys; from reconciler.cli.main import main; main()"

#: A message with everything a shell and a terminal make hard: spaces, both quotes, a backslash,
#: non-ASCII text, line breaks, a control character (removed, with a warning).
HOSTILE = "two  words 'single' \"double\" back\\slash ünïcødé 🚀\nsecond line\n\tindented\x07"


def _run(
    orch: Orch, code: str, args: tuple[str, ...], now: float
) -> subprocess.CompletedProcess[str]:
    """`code` with `time.time()` stopped at `now`: ages and "alive for 7m18s" read the same in
    both runs of a pair, however long each takes."""
    frozen = f"import time\ntime.time = lambda: {now!r}\n"
    return subprocess.run(
        [sys.executable, "-c", frozen + code, *args],
        capture_output=True,
        text=True,
        env=orch.env,
        cwd=orch.workdir,
        timeout=60,
        check=False,
    )


def _fast(
    orch: Orch, args: tuple[str, ...], now: float
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`orch ARGS` on the fast path, and which of HEAVY it imported (click never)."""
    marker = orch.workdir / "heavy-imported"
    proc = _run(orch, FAST, (str(marker), *args), now)
    loaded = marker.read_text().split()
    assert "click" not in loaded, f"orch {' '.join(args)} took the click CLI"
    return proc, loaded


def heavy_imports(orch: Orch, *args: str) -> list[str]:
    """Which of HEAVY the fast path of `orch ARGS` imported."""
    return _fast(orch, args, time.time())[1]


def _outcome(proc: subprocess.CompletedProcess[str]) -> tuple[str, str, int]:
    return proc.stdout, proc.stderr, proc.returncode


def same_both_ways(orch: Orch, *args: str) -> tuple[str, str, int]:
    """Run `orch ARGS` both ways at the same stopped clock; they must print the same."""
    now = time.time()
    fast, slow = _outcome(_fast(orch, args, now)[0]), _outcome(_run(orch, CLICK, args, now))
    assert fast == slow
    return fast


def sent_both_ways(orch: Orch, agent: str, text: str) -> tuple[str, str, int]:
    """`send` both ways: the same output but for the message's id, one more the second time."""
    now = time.time()
    fast = _outcome(_fast(orch, ("send", agent, text), now)[0])
    slow = _outcome(_run(orch, CLICK, ("send", agent, text), now))
    found = re.search(r"message/(\d+)", fast[0])
    if found:
        first = int(found.group(1))
        slow = (slow[0].replace(f"message/{first + 1}", f"message/{first}"), *slow[1:])
    assert fast == slow
    return fast


def test_no_state_dir_is_the_same_error_both_ways(orch: Orch) -> None:
    for args in (("get", "agents"), ("describe", "agent", "a"), ("get", "agent", "a")):
        _out, err, code = same_both_ways(orch, *args)
        assert code == 2 and "no orch state in" in err


def test_zero_agents_without_a_controller_both_ways(orch: Orch) -> None:
    Store(orch.state_dir).close()
    out, err, code = same_both_ways(orch, "get", "agents")
    assert (out, code) == ("No agents found.\n", 0)
    assert err.startswith("orch: warning: no controller runs for ")
    out, err, code = same_both_ways(orch, "describe", "agent", "nobody")
    assert code == 2 and err.endswith('orch: error: agent "nobody" not found\n')
    out, err, code = same_both_ways(orch, "send", "nobody", "hello")
    assert (out, err, code) == ("", 'orch: error: agent "nobody" not found\n', 2)


def test_agents_with_and_without_a_controller_both_ways(orch: Orch) -> None:
    orch.run("apply", "-f", str(write_manifest(orch, agent_doc("a"), agent_doc("b"))), "--wait")
    for args in (
        ("get", "agents"),
        ("get", "AG"),
        ("get", "agent", "a"),
        ("get", "agent", "zed"),
        ("describe", "agent", "b"),
        ("describe", "agents", "zed"),
        ("--state-dir", str(orch.state_dir), "get", "agents"),
        (f"--socket={orch.socket}", "describe", "agent", "a"),
        ("--socket", "no such socket!", "get", "agents"),
    ):
        same_both_ways(orch, *args)
    out, err, code = sent_both_ways(orch, "a", HOSTILE)
    assert out.endswith(" queued for agent/a\n") and code == 0
    assert err == "orch: warning: removed 1 control characters\n"
    assert sent_both_ways(orch, "b", "hello")[2] == 0
    assert sent_both_ways(orch, "zed", "hello")[1:] == ('orch: error: agent "zed" not found\n', 2)
    assert sent_both_ways(orch, "a", " \n ")[1:] == ("orch: error: send: the message is empty\n", 1)
    texts = [m.text for m in _messages(orch.state_dir, "a")]
    assert texts.count(HOSTILE.replace("\x07", "")) == 2
    # With the controller running and messages queued, the verbs agents and scripts call most
    # load none of them.
    for args in (("get", "agents"), ("send", "a", "hello")):
        assert heavy_imports(orch, *args) == [], args
    assert heavy_imports(orch, "describe", "agent", "a") == ["reconciler.api.history"]

    orch.run("controller", "stop")
    for args in (("get", "agents"), ("describe", "agent", "a"), ("get", "agent", "b")):
        _out, err, code = same_both_ways(orch, *args)
        assert code == 0 and err.startswith("orch: warning: no controller runs for ")


def _messages(state_dir: Path, agent: str) -> list[QueuedMessage]:
    store = Store(state_dir)
    try:
        return store.messages(agent, limit=20)
    finally:
        store.close()


def test_an_internal_error_is_the_same_line_and_log_both_ways(
    broken_state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = broken_state
    args = ["--state-dir", str(state), "get", "agents"]
    monkeypatch.setattr(sys, "argv", ["orch", *args])
    assert plain_command(args[2:]) is not None
    outcomes = []
    for run in (entry_main, lambda: cli_main(args)):
        with pytest.raises(SystemExit) as done:
            run()
        outcomes.append((done.value.code, capsys.readouterr()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1 and "internal error: RuntimeError: boom" in outcomes[0][1].err
    assert (state / "cli.log").read_text().count("RuntimeError: boom") == 2
