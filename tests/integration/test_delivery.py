"""Delivery on real tmux: readiness, confirmation, the attached pane, identity, and exactly once
under controller SIGKILLs right before and right after each paste, Enter and answer."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import shutil
import sqlite3
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests import helpers
from tests.conftest import Orch
from tests.helpers import fake_agent_doc, time_limit, wait_until

pytestmark = pytest.mark.tmux

SCALE = int(os.environ.get("ORCH_CHAOS_SCALE", "1"))


def apply(orch: Orch, *docs: str, file: str = "team.yaml", wait: bool = True) -> Path:
    manifest = orch.workdir / file
    manifest.write_text("---\n".join(docs))
    orch.run("apply", "-f", str(manifest), *(["--wait"] if wait else []))
    return manifest


def received(orch: Orch, name: str) -> list[str]:
    return helpers.received(helpers.record_of(orch.workdir, name))


def messages(orch: Orch) -> list[dict[str, Any]]:
    with sqlite3.connect(orch.state_dir / "orch.db", timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM messages ORDER BY id")]


def condition(orch: Orch, name: str, type_: str) -> str:
    status = orch.agents()[name]["status"]
    return next((c["status"] for c in status["conditions"] if c["type"] == type_), "")


def test_message_sent_right_after_apply_wait_arrives_exactly_once(orch: Orch) -> None:
    # The input is drawn 2 s after the banner; what is pasted before that is lost.
    doc = fake_agent_doc(
        orch.workdir, "slow", flags="--draw-delay 2", startup="{after: 200ms, ready: '^›'}"
    )
    apply(orch, doc.replace("  startup: {after: 200ms}\n", ""))
    orch.run("send", "slow", "first words", "--wait", "--timeout", "60s")
    assert received(orch, "slow") == ["first words"]


def test_agent_that_ignores_enter_leaves_the_message_unconfirmed(orch: Orch) -> None:
    apply(orch, fake_agent_doc(orch.workdir, "deaf", flags="--ignore-enter"))
    result = orch.run("send", "deaf", "are you there", "--wait", check=False)
    assert result.returncode == 1 and "unconfirmed" in result.stderr
    assert received(orch, "deaf") == []
    described = orch.run("describe", "agent", "deaf").stdout
    assert "unconfirmed" in described and "DeliveryUnconfirmed" in described
    events = orch.json("events", "--for", "agent/deaf")["items"]
    assert [e["type"] for e in events if e["reason"] == "DeliveryUnconfirmed"] == ["Warning"]


def test_stale_agent_receives_messages(orch: Orch) -> None:
    apply(orch, fake_agent_doc(orch.workdir, "quiet", "  stale: {after: 1s, action: none}\n"))
    wait_until(lambda: orch.agents()["quiet"]["status"]["state"] == "Stale", what="Stale")
    orch.run("send", "quiet", "wake up", "--wait", "--timeout", "30s")
    assert received(orch, "quiet") == ["wake up"]


@contextlib.contextmanager
def attached_client(orch: Orch, name: str) -> Iterator[None]:
    """A person's terminal attached to the agent's session (a tmux client on a pty)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    client = subprocess.Popen(
        ["tmux", "-L", orch.socket, "attach-session", "-t", f"={name}"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**orch.env, "TERM": "xterm"},
        start_new_session=True,
    )
    os.close(slave)
    drain = threading.Thread(target=_drain, args=(master,), daemon=True)
    drain.start()
    try:
        yield
    finally:
        orch.tmux("detach-client", "-s", f"={name}")
        try:
            client.wait(timeout=10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        drain.join(timeout=5)
        os.close(master)


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


def test_attached_pane_receives_nothing_until_detach(orch: Orch) -> None:
    apply(orch, fake_agent_doc(orch.workdir, "held"), fake_agent_doc(orch.workdir, "free"))
    with attached_client(orch, "held"):
        wait_until(lambda: condition(orch, "held", "Attached") == "True", what="Attached")
        orch.run("send", "held", "for later")
        orch.run("send", "free", "now", "--wait")  # the controller has had its chance
        assert received(orch, "held") == []
        assert received(orch, "free") == ["now"]
    wait_until(lambda: received(orch, "held") == ["for later"], what="delivery after detach")
    assert condition(orch, "held", "Attached") == "False"


def test_message_to_a_deleted_agent_never_reaches_its_successor(orch: Orch) -> None:
    apply(orch, fake_agent_doc(orch.workdir, "busy"))
    orch.run("send", "busy", "ask", "--wait")
    wait_until(lambda: orch.agents()["busy"]["status"]["state"] == "AwaitingHuman", what="asking")
    orch.run("send", "busy", "for the first one only")  # held: a question waits
    orch.run("delete", "agent", "busy")
    (orch.workdir / "busy.jsonl").unlink()
    apply(orch, fake_agent_doc(orch.workdir, "busy"), file="other.yaml")
    orch.run("send", "busy", "for the second one", "--wait")
    assert received(orch, "busy") == ["for the second one"]
    described = orch.run("describe", "agent", "busy").stdout
    assert "18 bytes" in described and "22 bytes" not in described  # only its own message


# -- controller SIGKILLed right before / right after each keystroke --------------------------

#: A tmux stand-in for the controller: on a paste, an Enter or typed keys it SIGKILLs the
#: controller that called it, with probability BEFORE/256 before running tmux and AFTER/256
#: right after. Every other caller and command goes straight to tmux.
KILLER = """\
#!/bin/sh
case "$*" in
  *paste-buffer*|*" Enter"|*"send-keys -l"*) ;;
  *) exec {tmux} "$@" ;;
esac
grep -q controller /proc/$PPID/cmdline 2>/dev/null || exec {tmux} "$@"
roll=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
if [ "$roll" -lt {before} ]; then kill -9 $PPID; exit 1; fi
{tmux} "$@"; code=$?
if [ "$roll" -lt {both} ]; then kill -9 $PPID; fi
exit $code
"""


def install_killer(orch: Orch, before: int = 45, after: int = 45) -> None:
    real = shutil.which("tmux")
    assert real is not None
    folder = orch.workdir / "killer-bin"
    folder.mkdir()
    script = folder / "tmux"
    script.write_text(KILLER.format(tmux=real, before=before, both=before + after))
    script.chmod(0o755)
    orch.env["PATH"] = f"{folder}:{orch.env['PATH']}"


def killer_strikes(orch: Orch) -> int:
    """Controllers the killer ended: every start after the first two (the apply's, and the
    successor of the one the test killed itself) followed a strike."""
    with sqlite3.connect(orch.state_dir / "orch.db", timeout=30) as conn:
        (started,) = conn.execute(
            "SELECT COUNT(*) FROM events WHERE reason = 'ControllerStarted'"
        ).fetchone()
    return max(int(started) - 2, 0)


def controller_pid(orch: Orch) -> int | None:
    try:
        pid = int((orch.state_dir / "controller.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        alive = False
    return pid if alive else None


def keep_a_controller_running(
    orch: Orch, manifest: Path, done: Callable[[], bool], limit: float
) -> None:
    """Start a successor each time the killer strikes, until `done()`."""
    while not done():
        pid = controller_pid(orch)
        if pid is None:
            orch.run("apply", "-f", str(manifest))
            continue

        def progressed(killed: int = pid) -> bool:
            return done() or controller_pid(orch) != killed

        wait_until(progressed, timeout=limit, what="progress")


@time_limit(240)  # every strike costs a successor's start-up
def test_controller_killed_around_every_paste_delivers_exactly_once(orch: Orch) -> None:
    names = ["a0", "a1"]
    manifest = apply(orch, *(fake_agent_doc(orch.workdir, n) for n in names))
    install_killer(orch)
    controller = controller_pid(orch)
    assert controller is not None
    os.kill(controller, 9)  # its successors (started by `send`, `apply`) run through the killer
    sent = {n: [f"msg-{n}-{i:04d} {'x' * (i % 7)}" for i in range(4 * SCALE)] for n in names}
    for name, texts in sent.items():
        for text in texts:
            orch.run("send", name, text)

    def finished() -> bool:
        return all(m["phase"] in ("delivered", "unconfirmed", "uncertain") for m in messages(orch))

    keep_a_controller_running(orch, manifest, finished, limit=60)
    kills = killer_strikes(orch)
    phases = {m["text"]: m["phase"] for m in messages(orch)}
    duplicated, lost = [], []
    for name, texts in sent.items():
        got = received(orch, name)
        for text in texts:
            count = got.count(text)
            if count > 1:
                duplicated.append(text)
            if phases[text] == "delivered" and count != 1:
                lost.append(text)
            if phases[text] != "uncertain" and count == 0:
                lost.append(text)
        assert got == [t for t in texts if t in got], f"{name}: out of order or glued: {got}"
    uncertain = [t for t, p in phases.items() if p == "uncertain"]
    assert (duplicated, lost) == ([], [])
    assert not [t for t, p in phases.items() if p == "unconfirmed"]
    total = sum(map(len, sent.values()))
    print(
        f"\nwrite-ahead: {kills} controller SIGKILLs around pastes and Enters, {total} messages,"
        f" duplicates 0, lost 0, uncertain {len(uncertain)}"
    )


@time_limit(240)
def test_controller_killed_around_every_answer_answers_each_prompt_once(orch: Orch) -> None:
    rule = "  prompts: [{match: 'Do you want to proceed', answer: 'y'}]\n"
    manifest = apply(orch, fake_agent_doc(orch.workdir, "asker", rule))
    rounds = 3 * SCALE
    install_killer(orch)
    controller = controller_pid(orch)
    assert controller is not None
    os.kill(controller, 9)
    for _ in range(rounds):
        orch.run("send", "asker", "dialog")

    def finished() -> bool:
        return received(orch, "asker").count("dialog") == rounds and received(orch, "asker")[
            -1:
        ] == ["y"]

    keep_a_controller_running(orch, manifest, finished, limit=60)
    kills = killer_strikes(orch)
    assert received(orch, "asker") == ["dialog", "y"] * rounds
    print(f"\nwrite-ahead: {kills} controller SIGKILLs around answers, {rounds} prompts, twice 0")
