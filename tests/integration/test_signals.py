"""Agent-native signals end to end: orch wires the CLI's hooks at launch, the (fake) CLI calls
`orch signal` like the real ones do, and activity, readiness, delivery and staleness follow.

Real tmux, the fake agent in its Claude Code mode (`--settings FILE`, which orch passes for
`profile: claude`) and its aider mode (AIDER_NOTIFICATIONS_COMMAND, set by orch for `aider`).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Orch
from tests.helpers import apply_agent, received, wait_until

pytestmark = pytest.mark.tmux


def status(orch: Orch, name: str) -> dict[str, Any]:
    return dict(orch.agents()[name]["status"])


def test_claude_hooks_drive_readiness_activity_session_and_delivery(orch: Orch) -> None:
    # The fake draws `› `, not Claude's input: `ready` says so (deliveries wait for it).
    record = apply_agent(
        orch, "  profile: claude\n", name="dev", startup="{after: 5m, ready: '›'}", wait=False
    )
    current = wait_until(lambda: (s := status(orch, "dev"))["state"] == "Running" and s, timeout=30)
    assert current["signals"] == "hooks"
    assert wait_until(lambda: status(orch, "dev").get("sessionId"), timeout=15)
    settings = orch.state_dir / "agents" / "dev" / "claude-settings.json"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert wait_until(lambda: status(orch, "dev")["activity"] == "Idle", timeout=15)

    orch.run("send", "dev", "hello through hooks")
    assert wait_until(lambda: received(record) == ["hello through hooks"], timeout=30)
    assert wait_until(lambda: "Delivered" in orch.run("events").stdout, timeout=30)
    described = orch.run("describe", "agent", "dev").stdout
    assert "UserPromptSubmit" in described and "Stop" in described
    assert "Signals:" in described and "hooks" in described

    # A turn that does not end (a spinner) is Busy; its Stop never comes.
    orch.run("send", "dev", "spin")
    assert wait_until(lambda: status(orch, "dev")["activity"] == "Busy", timeout=30)


def test_an_idle_agent_is_not_restarted_but_a_silent_screen_only_agent_is(orch: Orch) -> None:
    """The contract: stale applies only to busy agents. The same quiet agent without signals
    (nothing tells orch it is idle) goes Stale and is restarted, so the test can fail."""
    stale = "  stale: {after: 2s, action: restart}\n"
    apply_agent(orch, f"  profile: claude\n{stale}", name="hooked", wait=False)
    apply_agent(orch, f"  profile: claude\n  signals: 'off'\n{stale}", name="quiet", wait=False)
    assert wait_until(lambda: status(orch, "quiet")["restarts"] >= 1, timeout=30)
    hooked = status(orch, "hooked")
    assert hooked["signals"] == "hooks" and hooked["activity"] == "Idle"
    assert (hooked["state"], hooked["restarts"]) == ("Running", 0)
    assert status(orch, "quiet")["signals"] == "screen"


def test_aider_notifications_command_signals_idle(orch: Orch) -> None:
    record = apply_agent(
        orch, "  profile: aider\n", name="pair", startup="{after: 200ms, ready: '›'}", wait=False
    )
    assert wait_until(lambda: status(orch, "pair")["state"] == "Running", timeout=30)
    assert status(orch, "pair")["signals"] == "hooks"
    orch.run("send", "pair", "say done")
    assert wait_until(lambda: received(record) == ["say done"], timeout=30)
    assert wait_until(lambda: status(orch, "pair")["activity"] == "Idle", timeout=30)
    assert "notify" in orch.run("describe", "agent", "pair").stdout


def test_orch_signal_is_quiet_and_harmless_from_anywhere(orch: Orch, tmp_path: Path) -> None:
    """Hostile or misdirected calls exit 0, print nothing and create nothing."""
    nowhere = tmp_path / "no-state"
    for args in (
        ["--state-dir", str(nowhere), "signal", "dev", "Stop"],
        ["--state-dir", str(nowhere), "signal", "../../etc", "Stop", "--json", "{"],
        ["--state-dir", str(nowhere), "signal", "dev", "$(touch x)", "--json", "-"],
    ):
        proc = orch.run(*args, input="x" * 100_000)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not nowhere.exists()
    assert not (orch.workdir / "x").exists()
