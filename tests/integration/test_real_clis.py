"""The REAL Claude Code, Codex and Gemini CLIs under orch, offline against the e2e model server:
their own hooks, wired by orch at launch (Claude `--settings` under the state dir, Codex `-c`
overrides, Gemini a system settings file), reach `orch signal`.

Each is skipped unless e2e/install.sh put the CLI into the e2e cache (ORCH_E2E_CACHE, default
~/.cache/orch-e2e). `make test` runs the Claude Code one; Codex and Gemini only with
ORCH_TEST_REAL_CLIS=all (`make real-clis`), to keep `make test` short; `-m "not real_cli"`
leaves them all out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.signal_files import root_only
from tests.conftest import REPO, Orch
from tests.helpers import kill_test_processes, wait_until

CACHE = Path(os.environ.get("ORCH_E2E_CACHE", Path.home() / ".cache" / "orch-e2e"))
CLAUDE = CACHE / "npm" / "node_modules" / ".bin" / "claude"
CODEX = CACHE / "npm" / "node_modules" / ".bin" / "codex"
GEMINI = CACHE / "npm" / "node_modules" / ".bin" / "gemini"
#: Codex and Gemini take a minute each under load: only when asked for.
ALL_CLIS = os.environ.get("ORCH_TEST_REAL_CLIS") == "all"
API_KEY = "sk-ant-api03-e2e-offline-key-0000000000000000"

pytestmark = [pytest.mark.tmux, pytest.mark.real_cli]


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The e2e model server on a free port: its URL and its request log."""
    log = tmp_path / "requests.jsonl"
    control = tmp_path / "control"
    control.mkdir()
    server = ("-m", "e2e.modelserver", "--port", "0", "--log", str(log))
    proc = subprocess.Popen(
        [sys.executable, *server, "--control-dir", str(control)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"127\.0\.0\.1:(\d+)", proc.stderr.readline())
        assert match, "the model server did not say its port"
        yield f"http://127.0.0.1:{match.group(1)}", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def claude_home(home: Path, workdir: Path) -> Path:
    """A fresh HOME: onboarding done, the key and the folder trusted, and a hook of the user's
    own (orch's per-agent settings must add to it, never replace it)."""
    marker = home / "user-hook-ran"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "theme": "dark",
                "lastOnboardingVersion": "2.1.332",
                "customApiKeyResponses": {"approved": [API_KEY[-20:]]},
                "projects": {str(workdir): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    user_hook = {"type": "command", "command": f"touch {marker}"}
    (home / ".claude" / "settings.json").write_text(
        json.dumps({"hooks": {"Stop": [{"hooks": [user_hook]}]}})
    )
    return marker


def status(orch: Orch, name: str = "claude") -> dict[str, Any]:
    return dict(orch.agents()[name]["status"])


def apply_cli(
    orch: Orch, name: str, command: str, startup: dict[str, str], env: dict[str, str]
) -> None:
    """One real CLI as an Agent named after its profile, applied without waiting (its hooks
    make it Running)."""
    env = {**env, "TERM": "xterm-256color"}
    spec = {"command": command, "profile": name, "startup": startup, "env": env}
    document = {"apiVersion": "orch/v1", "kind": "Agent", "metadata": {"name": name}, "spec": spec}
    manifest = orch.workdir / f"{name}.yaml"
    manifest.write_text(json.dumps(document))  # JSON is YAML
    orch.run("apply", "-f", str(manifest))


def running_on_hooks(orch: Orch, name: str, timeout: float) -> dict[str, Any]:
    """The agent's status once Running, which its own hooks (signals) must have said."""
    current = wait_until(lambda: (s := status(orch, name))["state"] == "Running" and s, timeout)
    assert current["signals"] == "hooks"
    return dict(current)


def reached_the_server(log: Path, text: str) -> bool:
    return wait_until(lambda: log.exists() and text in log.read_text(), 60)


@pytest.mark.skipif(not CLAUDE.exists(), reason=f"Claude Code not installed at {CLAUDE}")
def test_real_claude_code_signals_session_turns_and_delivery(
    orch: Orch, tmp_path: Path, model_server: tuple[str, Path]
) -> None:
    url, log = model_server
    home = tmp_path / "home"
    marker = claude_home(home, orch.workdir.resolve())
    settings_before = (home / ".claude" / "settings.json").read_text()
    claude_env = {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    apply_cli(orch, "claude", str(CLAUDE), {"after": "5m"}, claude_env)
    # Its SessionStart hook, not the 5-minute startup timer, makes it Running.
    current = running_on_hooks(orch, "claude", timeout=60)
    assert re.fullmatch(r"[0-9a-f-]{36}", current["sessionId"])
    assert current["activity"] == "Idle"

    orch.run("send", "claude", "hello from orch signals")
    assert reached_the_server(log, "hello from orch signals")
    assert wait_until(lambda: "Delivered" in orch.run("events").stdout, timeout=60)
    assert wait_until(lambda: marker.exists(), timeout=60)  # the user's own Stop hook still ran
    assert wait_until(lambda: status(orch)["activity"] == "Idle", timeout=60)
    described = orch.run("describe", "agent", "claude").stdout
    assert "UserPromptSubmit" in described and "Stop" in described
    assert (home / ".claude" / "settings.json").read_text() == settings_before


@pytest.mark.skipif(not ALL_CLIS, reason="ORCH_TEST_REAL_CLIS=all runs it (make real-clis)")
@pytest.mark.skipif(not CODEX.exists(), reason=f"Codex not installed at {CODEX}")
def test_real_codex_signals_turns_and_delivery(
    orch: Orch, tmp_path: Path, model_server: tuple[str, Path]
) -> None:
    url, log = model_server
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(f"""\
model = "gpt-5"
model_provider = "e2e"

[model_providers.e2e]
name = "e2e"
base_url = "{url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false

[projects."{orch.workdir.resolve()}"]
trust_level = "trusted"
""")
    config_before = (home / ".codex" / "config.toml").read_text()
    codex_env = {"HOME": str(home), "OPENAI_API_KEY": "sk-e2e-offline-0000000000000000"}
    startup = {"after": "60s", "ready": r"\? for shortcuts"}
    apply_cli(orch, "codex", f"{CODEX} --no-daemon", startup, codex_env)
    running_on_hooks(orch, "codex", timeout=60)
    orch.run("send", "codex", "hello from orch signals")
    assert reached_the_server(log, "hello from orch signals")
    assert wait_until(lambda: "Delivered" in orch.run("events").stdout, timeout=60)
    # Codex names its session (the thread id) in its hooks from the first prompt on.
    current = wait_until(lambda: (s := status(orch, "codex")).get("sessionId") and s, timeout=60)
    assert re.fullmatch(r"[0-9a-f-]{36}", current["sessionId"])
    assert wait_until(lambda: status(orch, "codex")["activity"] == "Idle", timeout=60)
    described = orch.run("describe", "agent", "codex").stdout
    assert "UserPromptSubmit" in described and "notify" in described
    # Codex writes its own UI state there; orch's wiring never lands in it.
    config = (home / ".codex" / "config.toml").read_text()
    assert config.startswith(config_before)
    assert "reconciler" not in config and "notify" not in config


@pytest.fixture
def root_only_orch(orch: Orch) -> Iterator[Orch]:
    """The installation with its state dir where Gemini CLI honours a system settings file: under
    the (root-owned) e2e cache, never /tmp."""
    root = CACHE / "runs" / f"orch-signals-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True, mode=0o700)
    state_dir = root / "state"
    moved = replace(orch, state_dir=state_dir, env={**orch.env, "ORCH_STATE_DIR": str(state_dir)})
    try:
        yield moved
    finally:
        kill_test_processes(state_dir, orch.socket)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not ALL_CLIS, reason="ORCH_TEST_REAL_CLIS=all runs it (make real-clis)")
@pytest.mark.skipif(not GEMINI.exists(), reason=f"Gemini CLI not installed at {GEMINI}")
@pytest.mark.skipif(not root_only(CACHE), reason="Gemini reads system settings only as root")
def test_real_gemini_hooks_from_a_system_settings_file(
    root_only_orch: Orch, tmp_path: Path, model_server: tuple[str, Path]
) -> None:
    orch = root_only_orch
    url, log = model_server
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    user_settings = json.dumps(
        {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
    )
    (home / ".gemini" / "settings.json").write_text(user_settings)
    gemini_env = {
        "HOME": str(home),
        "GEMINI_API_KEY": "x",
        "GOOGLE_GEMINI_BASE_URL": url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    apply_cli(orch, "gemini", str(GEMINI), {"after": "5m"}, gemini_env)
    # Its SessionStart hook, not the 5-minute startup timer, makes it Running.
    current = running_on_hooks(orch, "gemini", timeout=90)
    assert current["sessionId"]
    # Typed as a person would (text, a pause, Enter): Gemini swallows an Enter that follows a
    # paste at once, which is the delivery work's to handle, not the signals'.
    orch.tmux("send-keys", "-t", "=gemini:", "-l", "hello from orch signals")
    wait_until(
        lambda: "hello from orch" in orch.tmux("capture-pane", "-p", "-t", "=gemini:").stdout
    )
    orch.tmux("send-keys", "-t", "=gemini:", "Enter")
    assert reached_the_server(log, "hello from orch signals")
    assert wait_until(lambda: status(orch, "gemini")["activity"] == "Idle", timeout=60)
    described = orch.run("describe", "agent", "gemini").stdout
    assert "BeforeAgent" in described and "AfterAgent" in described
    assert (home / ".gemini" / "settings.json").read_text() == user_settings
