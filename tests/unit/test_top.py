"""`orch top` driven headless with Textual's pilot: keys record intents in the store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Declaration, Store
from reconciler.api.status import AgentRecord, AgentState
from reconciler.cli.top import TopApp

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
            assert row[1] == "AwaitingHuman" and "Proceed? [y/N]" in row[5]
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
