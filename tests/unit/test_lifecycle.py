"""Every edge of the agent machine, named after the edge; illegal edges raise."""

from __future__ import annotations

from typing import Any

import pytest
from transitions import Machine, MachineError

from reconciler.api.status import AgentState
from reconciler.core.lifecycle import AGENT_TRANSITIONS, _agent_lifecycle, next_state

S = AgentState

EDGES = [
    ("start", S.STOPPED, S.STARTING),
    ("retry", S.CRASH_LOOPING, S.STARTING),
    ("ready", S.STARTING, S.RUNNING),
    ("restart", S.RUNNING, S.STARTING),
    ("restart", S.STALE, S.STARTING),
    ("restart", S.AWAITING_HUMAN, S.STARTING),
    ("restart", S.STARTING, S.STARTING),
    ("crash_loop", S.RUNNING, S.CRASH_LOOPING),
    ("crash_loop", S.STARTING, S.CRASH_LOOPING),
    ("stop", S.RUNNING, S.STOPPED),
    ("stop", S.CRASH_LOOPING, S.STOPPED),
    ("stall", S.RUNNING, S.STALE),
    ("recover", S.STALE, S.RUNNING),
    ("rate_limit", S.RUNNING, S.COOLING_DOWN),
    ("cooled", S.COOLING_DOWN, S.RUNNING),
    ("await_human", S.RUNNING, S.AWAITING_HUMAN),
    ("answered", S.AWAITING_HUMAN, S.RUNNING),
]


@pytest.mark.parametrize(("trigger", "source", "dest"), EDGES, ids=lambda v: str(v))
def test_edge(trigger: str, source: AgentState, dest: AgentState) -> None:
    assert next_state(source, trigger) is dest


def test_stopped_to_running_is_not_an_edge() -> None:
    with pytest.raises(MachineError):
        next_state(S.STOPPED, "ready")


def test_cooling_down_cannot_go_stale() -> None:
    with pytest.raises(MachineError):
        next_state(S.COOLING_DOWN, "stall")


def test_awaiting_human_cannot_go_stale() -> None:
    with pytest.raises(MachineError):
        next_state(S.AWAITING_HUMAN, "stall")


def test_every_state_is_reachable() -> None:
    reachable = {dest for _, _, dest in AGENT_TRANSITIONS}
    assert reachable == set(AgentState)


def test_edges_are_the_tables_rows() -> None:
    expected = {
        (source.value, trigger): dest.value
        for trigger, sources, dest in AGENT_TRANSITIONS
        for source in sources
    }
    assert _agent_lifecycle().edges == expected


def test_machine_is_built_once_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs)
        return Machine(*args, **kwargs)

    monkeypatch.setattr("transitions.Machine", counting)
    _agent_lifecycle.cache_clear()
    for _ in range(3):
        next_state(S.RUNNING, "stall")
        next_state(S.STALE, "recover")
    assert len(built) == 1
