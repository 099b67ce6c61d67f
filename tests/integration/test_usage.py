"""Usage read from a CLI's own transcript by the real controller, summed, shown, and budgeted."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Orch
from tests.helpers import FAKE_AGENT, agent_yaml, wait_until

pytestmark = pytest.mark.tmux

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "usage" / "claude"


def claude_agent(orch: Orch, home: Path, extra: str = "") -> Path:
    """A fake agent run as a `claude`-profile agent whose HOME holds its transcripts."""
    manifest = orch.workdir / "team.yaml"
    spec = f'  profile: claude\n  env: {{HOME: "{home}"}}\n{extra}'
    command = f"{sys.executable} {FAKE_AGENT}"
    manifest.write_text(agent_yaml("executor", command, spec, startup="{after: 200ms}"))
    orch.run("apply", "-f", str(manifest), "--wait")
    return manifest


def transcript(orch: Orch, home: Path) -> Path:
    folder = home / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(orch.workdir))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "0b1c.jsonl"


def assistant_lines() -> list[str]:
    lines = (FIXTURE / "session-transcript.jsonl").read_text().splitlines()
    return [line for line in lines if '"type":"assistant"' in line.replace(" ", "")]


def usage(orch: Orch, calls: int) -> dict[str, Any] | None:
    """The agent's status.usage once it counts `calls` calls."""
    found = orch.agents()["executor"]["status"].get("usage") or {}
    return dict(found) if found.get("calls") == calls else None


def test_usage_from_the_transcript_matches_what_the_model_server_handed_out(
    orch: Orch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    claude_agent(orch, home)
    path = transcript(orch, home)
    lines = assistant_lines()
    path.write_text("\n".join(lines[:3]) + "\n")
    server = [
        json.loads(line)["usage"]
        for line in (FIXTURE / "modelserver-log.jsonl").read_text().splitlines()
        if json.loads(line).get("status") == 200 and json.loads(line).get("mode") != "hang"
    ]
    first = {m["message"]["id"] for m in map(json.loads, lines[:3])}

    seen = wait_until(lambda: usage(orch, len(first)), timeout=20, what="usage")
    assert seen["outputTokens"] == 17 * len(first)

    with path.open("a") as file:  # the rest arrives later: read from where orch left off
        file.write("\n".join(lines[3:]) + "\n")
    done = wait_until(lambda: usage(orch, len(server)), timeout=20, what="all")
    assert done["outputTokens"] == sum(u["output_tokens"] for u in server)
    assert done["cacheReadTokens"] == sum(u["cache_read_input_tokens"] for u in server)
    assert done["costUSD"] > 0

    table = orch.run("usage", "--by", "agent").stdout
    assert "executor" in table and str(len(server)) in table
    listed = orch.json("usage", "--since", "1h")["items"]
    assert listed[0]["agent"] == "executor" and listed[0]["calls"] == len(server)
    assert "Usage:" in orch.run("describe", "agent", "executor").stdout


def test_a_spent_budget_cools_the_agent_down_until_the_window_frees(
    orch: Orch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    claude_agent(orch, home, "  budget: {tokens: 1000, window: 12s, action: cooldown}\n")

    transcript(orch, home).write_text(assistant_lines()[0] + "\n")

    wait_until(
        lambda: orch.agents()["executor"]["status"]["state"] == "CoolingDown",
        timeout=60,
        what="CoolingDown",
    )
    reasons = [e["reason"] for e in orch.json("events", "--for", "agent/executor")["items"]]
    assert "BudgetExhausted" in reasons
    wait_until(
        lambda: orch.agents()["executor"]["status"]["state"] == "Running",
        timeout=60,
        what="Running again once the window passed",
    )


def test_a_spent_budget_with_action_stop_stops_the_agent_until_the_window_frees(
    orch: Orch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    resume = f"  restartCommand: {sys.executable} {FAKE_AGENT}\n"  # the fake takes no --continue
    claude_agent(orch, home, resume + "  budget: {tokens: 1000, window: 15s, action: stop}\n")
    transcript(orch, home).write_text(assistant_lines()[0] + "\n")

    def status() -> dict[str, Any]:
        return dict(orch.agents()["executor"]["status"])

    stopped = wait_until(
        lambda: status()["state"] == "Stopped" and status(), timeout=60, what="Stopped"
    )
    assert stopped["reason"] == "BudgetExhausted" and "window frees up" in stopped["message"]
    assert orch.tmux("has-session", "-t", "=executor").returncode != 0
    reasons = [e["reason"] for e in orch.json("events", "--for", "agent/executor")["items"]]
    assert "BudgetExhausted" in reasons
    wait_until(
        lambda: status()["state"] == "Running", timeout=60, what="Running once the window passed"
    )
    events = orch.json("events", "--for", "agent/executor")["items"]
    assert "BudgetFreed" in [e["reason"] for e in events]
    assert orch.agents()["executor"]["status"]["restarts"] == 0, "not counted as a crash"


def test_an_account_budget_counts_every_agent_on_the_account_and_frees_with_its_window(
    tmp_path: Path,
) -> None:
    from reconciler.adapters.store import Store
    from reconciler.adapters.store_rows import StoredUsage
    from reconciler.api.manifest import Agent
    from reconciler.controller.usage import UsageCollector
    from reconciler.core.agent_plan import DesiredAgent
    from reconciler.core.usage import UsageEntry, budget_stop_key

    def desired(name: str, budget: str) -> DesiredAgent:
        spec = {"command": "x", "rateLimit": {"account": "team"}, "budget": json.loads(budget)}
        document = {"apiVersion": "orch/v1", "kind": "Agent", "metadata": {"name": name}}
        return DesiredAgent(Agent.model_validate({**document, "spec": spec}), 1)

    store = Store(tmp_path)
    t0 = 1_800_000_000.0
    for name, tokens in (("a", 600), ("b", 500), ("solo", 10)):
        entry = UsageEntry(f"{name}:1", "m", tokens, 0, 0, None)
        account = None if name == "solo" else "team"
        store.record_usage(name, [StoredUsage(name, t0, entry, account)], {})
    shared = '{"tokens": 1000, "window": 60, "action": "stop", "scope": "account"}'
    own = '{"tokens": 1000, "window": 60, "action": "stop"}'
    team = {"a": desired("a", shared), "b": desired("b", own)}
    collector = UsageCollector(store)
    events, deadlines = collector.collect(team, t0 + 1)
    assert deadlines == {budget_stop_key("a"): t0 + 60}, "a counts b's spend; b only its own"
    (event,) = events
    assert (event.object, event.reason) == ("agent/a", "BudgetExhausted")
    assert "account team's budget spent: 1,100 of 1,000 tokens; stopping" in event.message
    with sqlite3.connect(tmp_path / "orch.db") as conn:  # as the pass records it
        conn.execute("INSERT INTO cooldowns VALUES (?, ?)", (budget_stop_key("a"), t0 + 1))
    restarted = UsageCollector(store)  # a new controller: the spent budget is not news
    assert restarted.collect(team, t0 + 2) == ([], {})
    events, deadlines = collector.collect(team, t0 + 61)
    assert events == [] and deadlines == dict.fromkeys(("budget:agent/a", budget_stop_key("a")))
