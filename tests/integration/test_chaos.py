"""Proof under faults (CI-sized; `make chaos` sets ORCH_CHAOS_SCALE for the full size).

Random kills of agents and sessions, a controller SIGKILLed at random moments while messages and
a playbook run are in flight, and the figures each test reaches printed for the closing note.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests import helpers
from tests.conftest import Orch
from tests.helpers import time_limit, wait_until

SCALE = int(os.environ.get("ORCH_CHAOS_SCALE", "1"))
#: Each controller SIGKILL costs a successor's start-up (seconds each on a loaded machine), and
#: `make chaos` does SCALE times the rounds.
pytestmark = [pytest.mark.tmux, time_limit(240 * SCALE)]
SEED = int(os.environ.get("ORCH_CHAOS_SEED", str(random.randrange(1 << 30))))
#: What the tests of this module did and found, summed for one closing line.
FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    """One line with the module's figures (for the closing note), printed after its tests."""
    FIGURES.clear()
    yield
    f = FIGURES
    print(
        f"\nchaos summary (seed={SEED}, scale={SCALE}): {f['tests']} tests, {f['rounds']} rounds, "
        f"kills {f['agent_kills'] + f['controller_kills']} ({f['agent_kills']} agents/sessions, "
        f"{f['controller_kills']} controller SIGKILLs), restarts {f['restarts']} "
        f"(expected {f['agent_kills']}), messages {f['messages']}, "
        f"duplicates {f['duplicates']}, lost {f['lost']}, playbook runs {f['runs']} "
        f"(prompts sent twice {f['prompts_twice']})"
    )


def tally(received: list[str], sent: list[str]) -> tuple[int, int]:
    """Duplicates (a text received more often than it was sent) and lost texts."""
    got, want = Counter(received), Counter(sent)
    duplicates = sum(max(0, got[t] - want[t]) for t in got)
    lost = sum(max(0, want[t] - got[t]) for t in want)
    return duplicates, lost


def team(orch: Orch, count: int) -> Path:
    crash_loop = "  crashLoop: {maxRestarts: 1000, window: 1m}\n"
    docs = [helpers.fake_agent_doc(orch.workdir, f"a{i}", crash_loop) for i in range(count)]
    manifest = orch.workdir / "team.yaml"
    manifest.write_text("---\n".join(docs))
    orch.run("apply", "-f", str(manifest), "--wait", "--timeout", "60s")
    return manifest


def records(orch: Orch) -> dict[str, dict[str, Any]]:
    """Agent status straight from the store (cheaper than the CLI in tight loops)."""
    with sqlite3.connect(orch.state_dir / "orch.db", timeout=30) as conn:
        rows = conn.execute("SELECT name, record FROM agent_records").fetchall()
    return {name: json.loads(text) for name, text in rows}


def pane_pid(orch: Orch, name: str) -> int | None:
    out = orch.tmux("list-panes", "-t", f"={name}", "-F", "#{pane_pid}").stdout.strip()
    return int(out) if out else None


def test_random_kills_of_agents_and_sessions_are_all_recovered(orch: Orch) -> None:
    rng = random.Random(SEED)
    count = 10
    team(orch, count)
    kills = {f"a{i}": 0 for i in range(count)}
    for _ in range(20 * SCALE):
        name = rng.choice(sorted(kills))
        before = records(orch)[name]["restarts"]
        wait_until(partial(_running_with_pane, orch, name), what=f"{name} Running")
        if rng.random() < 0.5:
            pid = pane_pid(orch, name)
            assert pid is not None
            for child in psutil.Process(pid).children():
                child.kill()
        else:
            orch.tmux("kill-session", "-t", f"={name}")
        kills[name] += 1
        wait_until(partial(_restarted_once, orch, name, before), what=f"{name} restarted")
    wait_until(
        lambda: all(r["state"] == "Running" for r in records(orch).values()),
        timeout=30,
        what="every agent Running",
    )
    restarted = {n: r["restarts"] for n, r in records(orch).items()}
    FIGURES.update(
        tests=1,
        rounds=20 * SCALE,
        agent_kills=sum(kills.values()),
        restarts=sum(restarted.values()),
    )
    assert restarted == kills
    print(
        f"\nchaos(seed={SEED}): {sum(kills.values())} kills over {count} agents, "
        f"restarts exact, lost 0"
    )


def test_controller_sigkilled_at_random_moments_loses_nothing(orch: Orch) -> None:
    rng = random.Random(SEED)
    count = 3
    manifest = team(orch, count)
    playbook = orch.workdir / "flow.yaml"
    playbook.write_text("""\
apiVersion: orch/v1
kind: Playbook
metadata: {name: flow}
spec:
  steps:
    - {name: one, agent: a0, prompt: "write one.txt x", outputs: [one.txt]}
    - {name: two, agent: a0, prompt: "write two.txt y", outputs: [two.txt]}
""")
    orch.run("apply", "-f", str(playbook))
    run = orch.run("run", "flow").stdout.split()[0].removeprefix("run/")
    pids = {f"a{i}": pane_pid(orch, f"a{i}") for i in range(count)}
    sent: dict[str, list[str]] = {f"a{i}": [] for i in range(1, count)}
    stop = threading.Event()

    kills = 6 * SCALE
    # About three sends fit in one kill round on an idle machine; bounded, so a loaded machine's
    # longer rounds do not pile up more messages for the end to deliver.
    most = 3 * kills

    def sender() -> None:
        n = 0
        while not stop.is_set() and n < most:
            agent = f"a{1 + n % (count - 1)}"
            text = f"message {n} for {agent}"
            if orch.run("send", agent, text, check=False).returncode == 0:
                sent[agent].append(text)
            n += 1

    thread = threading.Thread(target=sender)
    thread.start()
    controller_kills = 0
    try:
        for _ in range(kills):
            pid = wait_until(lambda: _controller_pid(orch), what="a controller")
            time.sleep(rng.uniform(0.0, 0.4))  # a random moment in its life, not a sync point
            os.kill(pid, signal.SIGKILL)
            controller_kills += 1
            wait_until(partial(_gone, pid), what="killed")
            orch.run("apply", "-f", str(manifest))  # the successor
    finally:
        stop.set()
        thread.join()
    wait_until(
        lambda: all(_received(orch, a)[-1:] == texts[-1:] for a, texts in sent.items()),
        timeout=60,
        what="every message delivered",
    )
    for agent, texts in sent.items():
        duplicates, lost = tally(_received(orch, agent), texts)
        FIGURES.update(messages=len(texts), duplicates=duplicates, lost=lost)
    FIGURES.update(tests=1, rounds=8 * SCALE, controller_kills=controller_kills)
    for agent, texts in sent.items():
        assert _received(orch, agent) == texts, f"{agent}: lost, duplicated or out of order"
    wait_until(lambda: _run_state(orch, run) == "Succeeded", timeout=60, what="run Succeeded")
    prompts = ["write one.txt x", "write two.txt y"]
    FIGURES.update(runs=1, prompts_twice=tally(_received(orch, "a0"), prompts)[0])
    assert _received(orch, "a0") == prompts
    assert {n: pane_pid(orch, n) for n in pids} == pids, "a healthy agent was restarted"
    assert all(r["restarts"] == 0 for r in records(orch).values())
    with sqlite3.connect(orch.state_dir / "orch.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    delivered = sum(len(t) for t in sent.values())
    print(
        f"\nchaos(seed={SEED}): {controller_kills} controller SIGKILLs, {delivered} messages "
        f"delivered exactly once, run checkpoints kept, lost 0"
    )


def _running_after_restarts(orch: Orch, restarts: int) -> bool:
    record = records(orch)["a0"]
    return bool(record["restarts"] == restarts and record["state"] == "Running")


def _controller_pid(orch: Orch) -> int | None:
    try:
        pid = int((orch.state_dir / "controller.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) and not _zombie(pid) else None


def _running_with_pane(orch: Orch, name: str) -> bool:
    return records(orch)[name]["state"] == "Running" and pane_pid(orch, name) is not None


def _restarted_once(orch: Orch, name: str, before: int) -> bool:
    return bool(records(orch)[name]["restarts"] == before + 1)


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _received(orch: Orch, agent: str) -> list[str]:
    """The messages without the footer orch adds to a run's step."""
    messages = helpers.received(helpers.record_of(orch.workdir, agent))
    return [message.split("\n\n[orch run")[0] for message in messages]


def _run_state(orch: Orch, run: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "get", "runs", run, "-o", "json"],
        env=orch.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return ""
    return str(json.loads(result.stdout)["status"]["state"])  # one run: the object itself


def test_controller_killed_around_a_restart_launches_once_and_counts_it(orch: Orch) -> None:
    """The controller SIGKILLed right before and right after it relaunches a dead agent: the
    successor settles the open intent from tmux (the session's launch id), so the agent is
    launched exactly once and the restart is counted exactly once."""
    team(orch, 1)
    points = ["after-intent:Launch", "after-act:Launch"]
    for i in range(2 * SCALE):
        point = points[i % 2]
        before = records(orch)["a0"]["restarts"]
        old = wait_until(lambda: _controller_pid(orch), what="a controller")
        os.kill(old, signal.SIGKILL)
        wait_until(partial(_gone, old), what="killed")
        (orch.state_dir / "failpoint").write_text(point)  # taken by the next controller
        orch.run("apply", "-f", str(orch.workdir / "team.yaml"))
        doomed = wait_until(lambda: _controller_pid(orch), what="the doomed controller")
        orch.tmux("kill-session", "-t", "=a0")
        wait_until(partial(_gone, doomed), what="it died")
        launched = pane_pid(orch, "a0")  # after-act: the launch it made; after-intent: none
        assert (launched is not None) == (point == "after-act:Launch")
        orch.run("apply", "-f", str(orch.workdir / "team.yaml"))
        wait_until(partial(_running_after_restarts, orch, before + 1), what="a0 Running again")
        if launched is not None:
            assert pane_pid(orch, "a0") == launched, "launched twice"
        record = records(orch)["a0"]
        started = orch.tmux("display-message", "-p", "-t", "=a0:", "#{pane_start_command}")
        assert f".{record['launch_id']}." in started.stdout
    FIGURES.update(
        tests=1,
        rounds=2 * SCALE,
        agent_kills=2 * SCALE,  # one session kill a round
        controller_kills=4 * SCALE,  # the running one, then the one dying at the failpoint
        restarts=records(orch)["a0"]["restarts"],
    )
    events = orch.json("events", "--for", "agent/a0")["items"]
    assert any(e["reason"] == "Recovered" for e in events)
    print(f"\nchaos: {2 * SCALE} controller SIGKILLs around a launch, launched once each")
