"""`orch top` driven headless with Textual's pilot: keys record intents in the store."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import Declaration, StoredUsage
from reconciler.api.manifest import Playbook
from reconciler.api.status import AgentRecord, AgentState, RunState
from reconciler.cli.top import AGENT_HEADERS, TopApp
from reconciler.core.runs import RunRecord, StepPhase
from reconciler.core.steps import GateResult
from reconciler.core.usage import UsageEntry

DOCUMENT = {
    "apiVersion": "orch/v1",
    "kind": "Agent",
    "metadata": {"name": "worker"},
    "spec": {"command": "true", "workdir": "/tmp"},
}


def store_with_waiting_agent(state_dir: Path) -> Store:
    store = Store(state_dir)
    store.apply([Declaration("Agent", "worker", DOCUMENT, "/tmp/team.yaml", 1)], ["/tmp/team.yaml"])
    record = AgentRecord(
        name="worker",
        state=AgentState.AWAITING_HUMAN,
        since=time.time(),
        reason="AwaitingHuman",
        message="waiting for a human: Proceed? [y/N]",
        handled_prompt="Proceed? [y/N]",
    )
    store.commit_pass({"worker": record}, [], [])
    return store


def test_keys_record_intents_and_the_view_shows_the_live_prompt(tmp_path: Path) -> None:
    store = store_with_waiting_agent(tmp_path)
    wakes: list[int] = []
    app = TopApp(
        store,
        StatePaths(tmp_path),
        "orch-test-none",
        "tester via orch top",
        lambda: wakes.append(1),
        lambda: True,
    )

    async def drive() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()
            table = app.query_one("#agents")
            row = table.get_row_at(0)  # type: ignore[attr-defined]
            assert row[1] == "AwaitingHuman" and "Proceed? [y/N]" in row[-1]
            await pilot.press("a")
            await pilot.pause()
            await pilot.press("y", "e", "s", "enter")
            await pilot.pause()
            await pilot.press("r")
            await pilot.press("s")
            await pilot.pause()
            assert store.intents()["worker"].held
            await pilot.press("S")
            await pilot.press("l", "d", "q")

    asyncio.run(drive())
    intent = store.intents()["worker"]
    assert not intent.held and intent.request_seq == 2 and intent.request_verb == "start"
    assert intent.answer is not None and intent.answer.text == "yes"
    assert intent.answer.by == "tester via orch top"
    assert len(wakes) == 4


def top(store: Store, state_dir: Path, wakes: list[int]) -> TopApp:
    return TopApp(
        store,
        StatePaths(state_dir),
        "orch-test-none",
        "tester via orch top",
        lambda: wakes.append(1),
        lambda: True,
    )


def test_the_agents_table_shows_tokens_and_cost_as_get_o_wide_does(tmp_path: Path) -> None:
    store = store_with_waiting_agent(tmp_path)
    calls = [
        StoredUsage("worker", time.time(), UsageEntry(f"k{n}", "m", 1000, 200, 300, 0.25))
        for n in range(3)
    ]
    store.record_usage("worker", calls, {})
    app = top(store, tmp_path, [])

    async def drive() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()
            cells = app.query_one("#agents").get_row_at(0)  # type: ignore[attr-defined]
            row = dict(zip(AGENT_HEADERS, cells, strict=True))
            assert (row["TOKENS"], row["COST"]) == ("4.5k", "$0.75")
            await pilot.press("q")

    asyncio.run(drive())


def test_p_on_a_run_awaiting_approval_approves_its_current_attempt(tmp_path: Path) -> None:
    store = store_with_waiting_agent(tmp_path)
    spec = {"steps": [{"name": "ship", "agent": "worker", "prompt": "p"}]}
    document = {"apiVersion": "orch/v1", "kind": "Playbook", "metadata": {"name": "flow"}}
    record = RunRecord.new(
        "flow-1", "flow", Playbook.model_validate({**document, "spec": spec}).spec, {}, time.time()
    )
    pending = GateResult("approval human", False, "", pending=True, attempt=2)
    step = replace(record.steps[0], phase=StepPhase.AWAITING_APPROVAL, attempt=2, gates=(pending,))
    store.create_run(replace(record, state=RunState.AWAITING_HUMAN, steps=(step,)), spec)
    wakes: list[int] = []
    app = top(store, tmp_path, wakes)

    async def drive() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press("tab")
            runs = app.query_one("#runs").get_row_at(0)  # type: ignore[attr-defined]
            assert runs[2:6] == ["AwaitingHuman", "ship", "2", "approval human:…"]
            await pilot.press("p")
            await pilot.pause()
            await pilot.press("q")

    asyncio.run(drive())
    (signal,) = store.signals()
    assert (signal.run, signal.kind, signal.step, signal.attempt) == (
        "flow-1",
        "approve",
        "ship",
        2,
    )
    assert wakes == [1]


def test_a_running_agents_line_says_how_long_it_has_been_alive_now(tmp_path: Path) -> None:
    store = store_with_waiting_agent(tmp_path)
    started = time.time() - 900
    record = AgentRecord(
        name="worker",
        state=AgentState.RUNNING,
        since=started,
        reason="Started",
        message="running: alive for 1s",  # as written when it started
        started_at=started,
    )
    store.commit_pass({"worker": record}, [], [])
    app = top(store, tmp_path, [])

    async def drive() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()
            row = app.query_one("#agents").get_row_at(0)  # type: ignore[attr-defined]
            assert row[-1].startswith("running: alive for 15m")
            await pilot.press("q")

    asyncio.run(drive())
