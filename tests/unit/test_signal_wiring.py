"""What a launch adds per profile so the CLI calls `orch signal`: flags, env, settings files.

Every hook command must come back, through each layer of quoting (shell, TOML, JSON), as exactly
the argv orch meant, whatever the agent name and the paths contain.
"""

from __future__ import annotations

import json
import shlex
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.signal_wiring import (
    CLAUDE_EVENTS,
    CODEX_EVENTS,
    GEMINI_EVENTS,
    Wiring,
    signal_command,
    wire,
)

ORCH = ("/opt/orch venv/bin/python", "-m", "reconciler")
STATE = "/var/lib/orch state/it's"
AGENT_DIR = f"{STATE}/agents/dev"


def hook_argv(agent: str, event: str, state: str = STATE, stdin: bool = True) -> list[str]:
    argv = signal_command(ORCH, state, agent, event)
    return [*argv, "--json", "-"] if stdin else argv


def test_claude_gets_a_settings_file_with_every_hook() -> None:
    wiring = wire("claude", "dev", ORCH, STATE, AGENT_DIR)
    path = f"{AGENT_DIR}/claude-settings.json"
    assert wiring.mode == "hooks"
    assert shlex.split(wiring.command("claude --continue")) == [
        "claude",
        "--continue",
        "--settings",
        path,
    ]
    assert wiring.env == {}
    settings = json.loads(wiring.files[path])
    assert set(settings) == {"hooks"}  # nothing else of the user's settings is overridden
    assert set(settings["hooks"]) == set(CLAUDE_EVENTS)
    for event, groups in settings["hooks"].items():
        (group,) = groups
        (hook,) = group["hooks"]
        assert hook["type"] == "command"
        assert shlex.split(hook["command"]) == hook_argv("dev", event)


def test_codex_gets_notify_and_hooks_overrides_and_the_trust_bypass() -> None:
    wiring = wire("codex", "dev", ORCH, STATE, AGENT_DIR)
    assert wiring.mode == "hooks"
    assert (wiring.env, wiring.files) == ({}, {})
    words = shlex.split(wiring.command("codex resume --last"))
    assert words[:3] == ["codex", "resume", "--last"]
    assert words[-1] == "--dangerously-bypass-hook-trust"
    overrides = words[3:-1]
    assert overrides[::2] == ["-c"] * (len(overrides) // 2)
    config = tomllib.loads("\n".join(overrides[1::2]))
    assert config["notify"] == [*signal_command(ORCH, STATE, "dev", "notify"), "--json"]
    assert set(config["hooks"]) == set(CODEX_EVENTS)
    for event, groups in config["hooks"].items():
        (group,) = groups
        (hook,) = group["hooks"]
        assert hook["type"] == "command"
        assert shlex.split(hook["command"]) == hook_argv("dev", event)


def test_gemini_gets_a_system_settings_file_only_where_gemini_reads_it() -> None:
    log = f"{AGENT_DIR}/gemini-debug.log"  # where its 429s show (test_cli_log)
    debug_only = Wiring(env={"GEMINI_DEBUG_LOG_FILE": log}, logs=(log,))
    assert wire("gemini", "dev", ORCH, STATE, AGENT_DIR) == debug_only
    wiring = wire("gemini", "dev", ORCH, STATE, AGENT_DIR, system_settings_ok=True)
    path = f"{AGENT_DIR}/gemini-system-settings.json"
    assert wiring.mode == "hooks"
    assert wiring.command("gemini") == "gemini"
    assert wiring.env == {"GEMINI_CLI_SYSTEM_SETTINGS_PATH": path, "GEMINI_DEBUG_LOG_FILE": log}
    hooks = json.loads(wiring.files[path])["hooks"]
    assert set(hooks) == set(GEMINI_EVENTS)
    for event, groups in hooks.items():
        (group,) = groups
        (hook,) = group["hooks"]
        assert hook["name"] == f"orch-{event}"
        assert shlex.split(hook["command"]) == hook_argv("dev", event)


def test_aider_gets_its_notifications_command_in_the_environment() -> None:
    wiring = wire("aider", "dev", ORCH, STATE, AGENT_DIR)
    assert wiring.mode == "hooks"
    assert wiring.command("aider --model x") == "aider --model x"
    assert wiring.files == {}
    assert wiring.env["AIDER_NOTIFICATIONS"] == "true"
    # aider runs it with shell=True and its own terminal as stdin: no `--json -`.
    command = wiring.env["AIDER_NOTIFICATIONS_COMMAND"]
    assert shlex.split(command) == hook_argv("dev", "notify", stdin=False)


@pytest.mark.parametrize("profile", ["generic", "hermes"])
def test_profiles_without_a_mechanism_are_read_from_the_screen(profile: str) -> None:
    assert wire(profile, "dev", ORCH, STATE, AGENT_DIR) == Wiring()
    assert Wiring().command("prog") == "prog"


hostile = st.text(min_size=1).filter(lambda text: "\x00" not in text)


@given(name=hostile, state=hostile)
def test_quoting_survives_hostile_names_and_paths(name: str, state: str) -> None:
    codex = wire("codex", name, ORCH, state, f"{state}/a")
    config = tomllib.loads("\n".join(shlex.split(codex.args)[1:-1:2]))
    assert shlex.split(config["hooks"]["Stop"][0]["hooks"][0]["command"]) == hook_argv(
        name, "Stop", state
    )
    claude = wire("claude", name, ORCH, state, f"{state}/a")
    (path,) = claude.files
    assert shlex.split(claude.args) == ["--settings", path]
    hook = json.loads(claude.files[path])["hooks"]["Stop"][0]["hooks"][0]["command"]
    assert shlex.split(hook) == hook_argv(name, "Stop", state)
