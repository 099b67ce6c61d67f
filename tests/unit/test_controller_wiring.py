"""The controller's wiring on a clock the test moves and an in-memory tmux (tests/fakes/fake_tmux).

Planner decisions have their own tables; these check that a pass carries them out: it launches,
records, relaunches and counts, and holds a cooldown exactly until its end, with real SQLite and
real files, and no tmux or wall clock. End-to-end paths stay on real tmux (tests/integration).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.adapters.logwriter import LogWriterKeeper
from reconciler.api.manifest import Playbook
from reconciler.api.status import AgentRecord, AgentState
from reconciler.controller.apply import apply_files
from reconciler.controller.loop import Controller
from reconciler.core.runs import RunRecord
from tests.fakes.fake_tmux import FakeTmux
from tests.helpers import kill_marked

START = 1_800_000_000.0  # a fixed moment: every time in these tests is START + what the test says


class Clock:
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Wiring:
    """A controller on a fake tmux and a manual clock, driven one pass at a time."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # The pane log writer is a process of its own, exercised on real tmux; here panes log
        # nowhere, so none is started.
        monkeypatch.setattr(LogWriterKeeper, "ensure", lambda self: False)
        self.root = root
        self.workdir = root / "work"
        self.workdir.mkdir()
        self.clock = Clock()
        self.tmux = FakeTmux(self.clock)
        self.controller = Controller(root / "state", "wiring", tmux=self.tmux, clock=self.clock)

    def apply(self, spec: str, name: str = "a") -> None:
        manifest = self.root / f"{name}.yaml"
        manifest.write_text(
            "apiVersion: orch/v1\nkind: Agent\n"
            f"metadata: {{name: {name}}}\n"
            f"spec:\n  command: the-agent\n  workdir: {self.workdir}\n{spec}"
        )
        apply_files(self.controller.store, [str(manifest)])

    def run_pass(self, after: float = 0.0) -> None:
        """Move the clock on by `after` seconds, then run one full pass."""
        self.clock.advance(after)
        self.controller.run_pass()

    def record(self, name: str = "a") -> AgentRecord:
        record = self.controller.store.agent_record(name)
        assert record is not None
        return record

    def close(self) -> None:
        self.controller.runner.close()
        self.controller.guards.close()
        self.controller.stopper.close()
        self.controller.store.close()
        kill_marked("ORCH_STATE_DIR", str(self.root / "state"))


@pytest.fixture
def wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wiring]:
    wired = Wiring(tmp_path, monkeypatch)
    try:
        yield wired
    finally:
        wired.close()


def test_first_pass_launches_then_running_after_startup(wiring: Wiring) -> None:
    wiring.apply("  startup: {after: 2s}\n")
    wiring.run_pass()
    assert wiring.tmux.started == ["a"]
    session = wiring.tmux.sessions["a"]
    assert "the-agent" in session.script
    assert session.env["ORCH_AGENT_NAME"] == "a"
    record = wiring.record()
    assert record.state is AgentState.STARTING
    assert (record.launch_id, record.pid) == (session.launch_id, session.pid)
    wiring.run_pass(after=1.9)
    assert wiring.record().state is AgentState.STARTING  # the startup window is exact
    wiring.run_pass(after=0.2)
    assert wiring.record().state is AgentState.RUNNING
    assert wiring.tmux.started == ["a"]


def test_crashed_session_is_relaunched_once_and_counted(wiring: Wiring) -> None:
    wiring.apply("  startup: {after: 0s}\n")
    wiring.run_pass()
    wiring.run_pass(after=1)
    first = wiring.record()
    assert first.state is AgentState.RUNNING
    wiring.tmux.crash("a")
    wiring.run_pass(after=1)
    assert wiring.tmux.started == ["a", "a"]
    again = wiring.record()
    assert again.restarts == 1
    assert again.launch_id != first.launch_id
    assert again.launch_id == wiring.tmux.sessions["a"].launch_id
    wiring.run_pass(after=1)
    wiring.run_pass(after=1)
    assert wiring.tmux.started == ["a", "a"], "relaunched more than once"
    assert wiring.record().restarts == 1


def test_limit_on_screen_cools_down_exactly_until_reset_then_resumes(wiring: Wiring) -> None:
    wiring.apply(
        "  startup: {after: 0s}\n  rateLimit: {patterns: ['usage limit'], resume: go on}\n"
    )
    wiring.run_pass()
    wiring.run_pass(after=1)
    assert wiring.record().state is AgentState.RUNNING
    wiring.tmux.show("a", "› limit\nYou've hit your usage limit. Try again in 8 seconds.\n")
    limited_at = wiring.clock.now
    wiring.run_pass()
    cooling = wiring.record()
    assert cooling.state is AgentState.COOLING_DOWN
    assert cooling.cooldown_until == pytest.approx(limited_at + 8, abs=1)
    assert cooling.cooldown_until is not None
    wiring.run_pass(after=cooling.cooldown_until - wiring.clock.now - 0.1)
    assert wiring.record().state is AgentState.COOLING_DOWN
    assert wiring.tmux.typed("a") == []  # nothing typed before the reset
    for _ in range(5):  # the paste, then its Enter, each a pass of its own
        wiring.run_pass(after=0.5)
    assert wiring.tmux.typed("a")[:1] == ["go on"]
    assert wiring.tmux.typed("a").count("go on") == 1
    assert wiring.record().state is AgentState.RUNNING


def test_step_timeout_fails_the_run_exactly_at_its_limit(wiring: Wiring) -> None:
    wiring.apply("  startup: {after: 0s}\n")
    playbook = wiring.root / "flow.yaml"
    playbook.write_text(
        "apiVersion: orch/v1\nkind: Playbook\nmetadata: {name: flow}\nspec:\n  steps:\n"
        "    - {name: slow, agent: a, prompt: think, outputs: [never.txt], timeout: 30s,"
        " maxAttempts: 1}\n"
    )
    store = wiring.controller.store
    apply_files(store, [str(playbook)])
    wiring.run_pass()
    wiring.run_pass(after=1)
    stored = store.object("Playbook", "flow")
    assert stored is not None
    spec = Playbook.model_validate(stored.document).spec
    store.create_run(
        RunRecord.new("flow-1", "flow", spec, {}, wiring.clock.now), stored.document["spec"]
    )
    started_at = wiring.clock.now
    wiring.run_pass()  # the step starts: its prompt is pasted
    assert "think" in "".join(wiring.tmux.typed("a"))
    wiring.run_pass(after=29.9)
    assert run_state(wiring, "flow-1") == "Running"
    wiring.run_pass(after=started_at + 30.1 - wiring.clock.now)
    assert run_state(wiring, "flow-1") == "Failed"


def run_state(wiring: Wiring, name: str) -> str:
    stored = wiring.controller.store.run(name)
    assert stored is not None
    return str(stored.record.state)
