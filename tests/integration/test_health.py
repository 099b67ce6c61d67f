"""Agent health end to end: cooldowns, prompts, stale agents — real tmux, the fake agent."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil
import pytest

from tests.conftest import Orch
from tests.helpers import apply_agent, received, wait_until

pytestmark = pytest.mark.tmux


def type_in(orch: Orch, name: str, text: str) -> None:
    """A person typing into the agent's pane (as through `orch attach`)."""
    orch.tmux("send-keys", "-t", f"={name}:", "-l", text)
    orch.tmux("send-keys", "-t", f"={name}:", "Enter")


def status(orch: Orch, name: str = "executor") -> dict[str, Any]:
    return dict(orch.agents()[name]["status"])


def in_state(orch: Orch, state: str, name: str = "executor") -> dict[str, Any] | None:
    current = status(orch, name)
    return current if current["state"] == state else None


def events(orch: Orch, name: str = "executor") -> list[dict[str, Any]]:
    return list(orch.json("events", "--for", f"agent/{name}")["items"])


def conditions(current: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in current["conditions"]}


def test_limit_on_screen_cools_down_until_reset_then_resumes(orch: Orch) -> None:
    record = apply_agent(orch, "  rateLimit: {patterns: ['usage limit'], resume: 'go on'}\n")
    # Long enough that a poll under load still sees the cooldown before it ends.
    type_in(orch, "executor", "limit You've hit your usage limit. Try again in 8 seconds.")
    cooling = wait_until(lambda: in_state(orch, "CoolingDown"), what="CoolingDown")
    assert "cooldownUntil" in cooling
    assert conditions(cooling)["RateLimited"] == "True"
    wait_until(lambda: "go on" in received(record), timeout=30, what="resume text delivered")
    assert in_state(orch, "Running")
    assert received(record).count("go on") == 1


def test_cooldown_survives_a_controller_restart(orch: Orch) -> None:
    apply_agent(orch, "  rateLimit: {patterns: ['usage limit']}\n")
    type_in(orch, "executor", "limit usage limit reached. Try again in 30 seconds.")
    before = wait_until(lambda: in_state(orch, "CoolingDown"), what="CoolingDown")
    controller = int((orch.state_dir / "controller.pid").read_text())
    os.kill(controller, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(controller), what="controller gone")
    orch.run("apply", "-f", str(orch.workdir / "executor.yaml"))
    new_pid = int((orch.state_dir / "controller.pid").read_text())
    assert new_pid != controller
    after = status(orch)
    assert after["state"] == "CoolingDown"
    assert after["cooldownUntil"] == before["cooldownUntil"]
    assert after["restarts"] == 0


def test_unanswered_prompt_waits_for_a_human_then_runs_again(orch: Orch) -> None:
    apply_agent(orch, "")
    type_in(orch, "executor", "ask")
    waiting = wait_until(lambda: in_state(orch, "AwaitingHuman"), what="AwaitingHuman")
    assert "Do you want to proceed" in waiting["message"]
    assert conditions(waiting)["AwaitingInput"] == "True"
    events = orch.json("events", "--for", "agent/executor")["items"]
    assert any(e["type"] == "Warning" and e["reason"] == "AwaitingHuman" for e in events)
    type_in(orch, "executor", "y")
    wait_until(lambda: in_state(orch, "Running"), what="Running after a person answered")


def test_prompt_rule_answers_at_once(orch: Orch) -> None:
    record = apply_agent(
        orch, "  prompts:\n    - match: 'Do you want to proceed'\n      answer: y\n"
    )
    type_in(orch, "executor", "ask")
    wait_until(lambda: received(record)[-1:] == ["y"], what="the answer typed")
    events = orch.json("events", "--for", "agent/executor")["items"]
    assert any(e["reason"] == "Answered" for e in events)
    assert not any(e["reason"] == "AwaitingHuman" for e in events)
    assert in_state(orch, "Running")


def test_silent_agent_goes_stale_and_is_restarted(orch: Orch) -> None:
    apply_agent(orch, "  stale: {after: 2s, action: restart}\n")
    type_in(orch, "executor", "hang")
    wait_until(lambda: status(orch)["restarts"] >= 1, timeout=20, what="restart of a stale agent")
    events = orch.json("events", "--for", "agent/executor")["items"]
    assert any(e["reason"] == "Stalled" for e in events)


def test_spinner_is_not_progress(orch: Orch) -> None:
    apply_agent(orch, "  stale: {after: 2s, action: none}\n")
    type_in(orch, "executor", "spin")
    stale = wait_until(lambda: in_state(orch, "Stale"), timeout=20, what="Stale while spinning")
    assert conditions(stale)["Stalled"] == "True"
    recovered = [e for e in events(orch) if e["reason"] == "Recovered"]
    type_in(orch, "executor", "say back to work")
    # Stale -> Running is a `Recovered` event: it stays, where the Running state may last only
    # until the next stale.after, which on a loaded machine can fall between two polls
    wait_until(
        lambda: len([e for e in events(orch) if e["reason"] == "Recovered"]) > len(recovered),
        timeout=20,
        what="Recovered once real output appears",
    )


def test_stale_agent_is_nudged(orch: Orch) -> None:
    record = apply_agent(orch, "  stale: {after: 2s, action: nudge, nudge: wake up}\n")
    wait_until(lambda: "wake up" in received(record), timeout=20, what="the nudge")
    wait_until(lambda: in_state(orch, "Running"), what="Running after the nudge")


def test_an_answered_question_never_masks_the_next_one(orch: Orch) -> None:
    record = apply_agent(
        orch, "  prompts:\n    - match: 'Do you want to proceed'\n      answer: y\n"
    )
    type_in(orch, "executor", "ask")
    wait_until(lambda: received(record) == ["ask", "y"], what="the first question answered")
    type_in(orch, "executor", "ask")  # the same question again, the answered one still on screen
    wait_until(lambda: received(record) == ["ask", "y", "ask", "y"], what="the second answered")
    assert in_state(orch, "Running")


def test_a_rule_added_while_a_prompt_waits_answers_it(orch: Orch) -> None:
    record = apply_agent(orch, "")
    type_in(orch, "executor", "ask")
    wait_until(lambda: in_state(orch, "AwaitingHuman"), what="AwaitingHuman")
    apply_agent(orch, "  prompts:\n    - match: 'Do you want to proceed'\n      answer: y\n")
    wait_until(lambda: received(record)[-1:] == ["y"], what="the new rule's answer")
    wait_until(lambda: in_state(orch, "Running"), what="Running after the rule answered")


def test_activity_is_shown_by_get_and_describe(orch: Orch) -> None:
    # the fake agent's `› ` input reads as Codex's; it is not Codex, so no Codex hooks
    apply_agent(orch, "  profile: codex\n  signals: 'off'\n")
    idle = wait_until(
        lambda: status(orch) if status(orch)["activity"] == "Idle" else None, what="Idle"
    )
    assert conditions(idle)["Idle"] == "True"
    table = orch.run("get", "agents", "-o", "wide").stdout.splitlines()
    assert "ACTIVITY" in table[0].split()
    assert "Idle" in table[1].split()
    described = orch.run("describe", "agent", "executor").stdout
    assert "Activity:" in described and "EmptyInput" in described
