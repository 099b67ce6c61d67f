"""Records and intents are written as the JSON `json.dumps(asdict(...))` writes, without asdict's
deep copy of every field (a record is written on every launch, before its process starts)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from reconciler.adapters.store import _to_json
from reconciler.api.actions import Launch, PressEnter
from reconciler.api.activity import Activity
from reconciler.api.messages import QueuedMessage
from reconciler.api.status import AgentRecord, AgentState, Condition, ConditionStatus, RunState
from reconciler.core.runs import RunRecord, StepStatus

T0 = 1_790_000_000.25

RECORD = AgentRecord(
    name="executor",
    state=AgentState.CRASH_LOOPING,
    since=T0,
    launch_id="executor-1",
    pid=4242,
    started_at=T0,
    activity=Activity.WAITING,
    crash_times=(T0 - 2, T0 - 1),
    pending_keys=("Enter", "C-c"),
    conditions=(
        Condition("SessionReady", ConditionStatus.FALSE, "Exited", "exit 1, ünïcødé 🚀", T0),
        Condition("Healthy", ConditionStatus.UNKNOWN, "", "", T0 + 1),
    ),
)
RUN = RunRecord(
    name="r-1",
    playbook="ship",
    params={"branch": "main", "quote": "it's"},
    state=RunState.RUNNING,
    since=T0,
    created=T0,
    steps=(StepStatus("plan", "architect", attempt=2, started_at=T0),),
)


@pytest.mark.parametrize("value", [RECORD, RUN], ids=["agent record", "run record"])
def test_records_are_the_json_of_asdict(value: object) -> None:
    assert _to_json(value) == json.dumps(asdict(value), sort_keys=True)  # type: ignore[call-overload]


def test_an_intents_parts_are_the_json_of_asdict_in_field_order() -> None:
    launch = Launch("a", "sleep 1", "/w", {"K": "v"}, "a-2", previous_launch="a-1")
    message = QueuedMessage(7, "executor", "user", "hello\nworld", T0)
    kinds = [{"kind": type(a).__name__, **asdict(a)} for a in (launch, PressEnter("a"))]
    planned = {"record": asdict(RECORD), "message": asdict(message)}
    ours_kinds = [
        {"kind": type(a).__name__, **json.loads(_to_json(a, sort=False))}
        for a in (launch, PressEnter("a"))
    ]
    assert json.dumps(ours_kinds) == json.dumps(kinds)
    assert _to_json({"record": RECORD, "message": message}, sort=False) == json.dumps(planned)


def test_anything_else_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        _to_json({"when": object()})
    with pytest.raises(TypeError, match="not JSON serializable"):
        _to_json(AgentRecord)
