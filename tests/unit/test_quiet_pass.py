"""Passes over an idle team plan nothing (controller.quietpass, core.plan_memo), yet every
deadline lands on the same pass as when each agent is planned every time, and any change of
what a pass reads (the screen, the store) is planned in the very next pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.store import Store
from reconciler.api.status import AgentState
from reconciler.controller.apply import apply_files
from reconciler.core.planner import plan_agent
from tests.unit.test_controller_wiring import Wiring

SCREEN = "working\n› \n"  # a generic program: its activity is unknown, so quiet counts as stuck


class CountedPlans:
    """plan_agent as the controller calls it, counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        def counted(*args: Any) -> Any:
            self.calls += 1
            return plan_agent(*args)

        monkeypatch.setattr("reconciler.controller.loop.plan_agent", counted)


@pytest.fixture
def wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wiring]:
    wired = Wiring(tmp_path, monkeypatch)
    try:
        yield wired
    finally:
        wired.close()


def settle(wiring: Wiring) -> None:
    """Launch, show the screen and let the record catch up: Running with nothing left to do."""
    wiring.run_pass()
    wiring.tmux.show("a", SCREEN)
    for _ in range(3):
        wiring.run_pass(after=0.25)
    assert wiring.record().state is AgentState.RUNNING


def test_an_idle_agent_is_not_planned_again_until_its_stale_deadline(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring.apply("  startup: {after: 0s}\n  stale: {after: 10s, action: none}\n")
    settle(wiring)
    changed_at = wiring.record().screen_changed_at
    assert changed_at is not None
    plans = CountedPlans(monkeypatch)
    while wiring.clock.now + 1 < changed_at + 10:
        wiring.run_pass(after=1)
        assert wiring.record().state is AgentState.RUNNING
    assert plans.calls == 0, "an unchanged idle agent was planned"
    wiring.run_pass(after=changed_at + 10 - wiring.clock.now)  # the deadline itself
    record = wiring.record()
    assert plans.calls == 1
    assert record.state is AgentState.STALE
    assert record.since == pytest.approx(changed_at + 10)


def test_output_and_store_changes_are_planned_in_the_next_pass(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring.apply("  startup: {after: 0s}\n  stale: {after: 60s, action: none}\n")
    settle(wiring)
    plans = CountedPlans(monkeypatch)
    wiring.run_pass(after=1)
    assert plans.calls == 0
    wiring.tmux.show("a", "more output\n› \n")  # the agent prints
    wiring.run_pass(after=1)
    assert plans.calls == 1
    assert wiring.record().screen_changed_at == wiring.clock.now
    wiring.run_pass(after=1)  # the record caught up: quiet again
    calls = plans.calls
    wiring.run_pass(after=1)
    assert plans.calls == calls
    manifest = wiring.root / "a.yaml"  # another process (the CLI) changes the spec
    manifest.write_text(manifest.read_text().replace("the-agent", "the-agent --v2"))
    cli = Store(wiring.root / "state")
    try:
        apply_files(cli, [str(manifest)])
    finally:
        cli.close()
    wiring.run_pass(after=1)
    assert plans.calls == calls + 1
    assert wiring.tmux.started == ["a", "a"]  # relaunched with the new spec at once
