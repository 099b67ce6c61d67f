"""How each agent CLI is told to call `orch signal` (`spec.signals: auto`), never in user files.

Pure. `wire` returns what a launch adds: words appended to the command line, environment
variables, and settings files to write under the agent's own dir in the state dir (the executor
writes them, 0600). The user's own config files are never touched: Claude Code merges
`--settings FILE` with the user's settings, Codex takes `-c key=value` overrides, Gemini CLI adds
the hooks of a system settings file (`GEMINI_CLI_SYSTEM_SETTINGS_PATH`) to the user's, and aider
reads its notifications command from the environment. Gemini CLI also writes its debug log to a
file in the agent's dir (`GEMINI_DEBUG_LOG_FILE`): the only place it reports a per-minute 429
(`core.cli_log`); the executor empties it at each launch, so what it holds is this launch's.

Everything that goes into a shell command line is quoted here (`shlex.quote`), and everything
that goes into TOML or JSON is encoded by `json.dumps`: agent names and paths are hostile input.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Claude Code hook events orch listens to (turns, questions, session, errors).
CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PermissionRequest",
    "PostToolUse",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
#: Codex hook events orch listens to (its `notify` covers turn completion too).
CODEX_EVENTS = ("SessionStart", "UserPromptSubmit", "PermissionRequest", "PostToolUse", "Stop")
#: Gemini CLI hook events orch listens to.
GEMINI_EVENTS = (
    "SessionStart",
    "BeforeAgent",
    "AfterTool",
    "Notification",
    "AfterAgent",
    "SessionEnd",
)
#: How long a CLI may wait for one `orch signal` call (it takes milliseconds).
HOOK_TIMEOUT_SECONDS = 10
#: Gemini CLI's debug log, in the agent's dir.
GEMINI_DEBUG_LOG = "gemini-debug.log"


@dataclass(frozen=True)
class Wiring:
    """What a launch adds for signals: `mode` is `hooks` or `screen` (no hooks wired);
    `logs`: files the CLI writes for orch to read, emptied at each launch."""

    mode: str = "screen"
    args: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    logs: tuple[str, ...] = ()

    def command(self, command: str) -> str:
        """`command` with the wiring's words appended."""
        return f"{command} {self.args}" if self.args else command


def signal_command(orch: Sequence[str], state_dir: str, agent: str, event: str) -> list[str]:
    """The argv of one `orch signal` call, with the state dir pinned (the hook's env may differ)."""
    return [*orch, "--state-dir", state_dir, "signal", agent, event]


def wire(
    profile: str,
    agent: str,
    orch: Sequence[str],
    state_dir: str,
    agent_dir: str,
    system_settings_ok: bool = False,
) -> Wiring:
    """The wiring of `profile`'s own signal mechanism for `agent`.

    `orch` is the absolute argv that runs orch (`python -m reconciler`); `agent_dir` is the
    agent's own dir under the state dir, where settings files go; `system_settings_ok`: a Gemini
    system settings file in `agent_dir` would be honoured (Gemini CLI reads one only when it and
    every parent dir are root's and not writable by others).
    """

    def hook(event: str, stdin: bool = True) -> str:
        argv = signal_command(orch, state_dir, agent, event)
        return shlex.join([*argv, "--json", "-"] if stdin else argv)

    if profile == "claude":
        path = f"{agent_dir}/claude-settings.json"
        hooks = {
            event: [
                {
                    "hooks": [
                        {"type": "command", "command": hook(event), "timeout": HOOK_TIMEOUT_SECONDS}
                    ]
                }
            ]
            for event in CLAUDE_EVENTS
        }
        files = {path: json.dumps({"hooks": hooks}, indent=2) + "\n"}
        return Wiring("hooks", f"--settings {shlex.quote(path)}", files=files)
    if profile == "codex":
        # Codex appends the notify payload as one more argument: it lands after `--json`.
        notify = [*signal_command(orch, state_dir, agent, "notify"), "--json"]
        overrides = [f"notify={_toml_array(notify)}"]
        for event in CODEX_EVENTS:
            entry = f'[{{hooks=[{{type="command",command={_toml_string(hook(event))}}}]}}]'
            overrides.append(f"hooks.{event}={entry}")
        words = [word for override in overrides for word in ("-c", override)]
        return Wiring("hooks", shlex.join([*words, "--dangerously-bypass-hook-trust"]))
    if profile == "gemini":
        log = f"{agent_dir}/{GEMINI_DEBUG_LOG}"
        if not system_settings_ok:
            return Wiring(env={"GEMINI_DEBUG_LOG_FILE": log}, logs=(log,))
        path = f"{agent_dir}/gemini-system-settings.json"
        gemini_hooks = {
            event: [
                {
                    "matcher": "*",
                    "hooks": [
                        {
                            "name": f"orch-{event}",
                            "type": "command",
                            "command": hook(event),
                            "timeout": HOOK_TIMEOUT_SECONDS * 1000,
                        }
                    ],
                }
            ]
            for event in GEMINI_EVENTS
        }
        files = {path: json.dumps({"hooks": gemini_hooks}, indent=2) + "\n"}
        env = {"GEMINI_CLI_SYSTEM_SETTINGS_PATH": path, "GEMINI_DEBUG_LOG_FILE": log}
        return Wiring("hooks", env=env, files=files, logs=(log,))
    if profile == "aider":
        # Run with shell=True and no payload, and with aider's terminal as stdin: no `--json -`.
        env = {"AIDER_NOTIFICATIONS": "true", "AIDER_NOTIFICATIONS_COMMAND": hook("notify", False)}
        return Wiring("hooks", env=env)
    return Wiring()


def _toml_array(words: Sequence[str]) -> str:
    """A TOML array of basic strings (JSON string escapes are valid TOML ones)."""
    return "[" + ",".join(_toml_string(word) for word in words) + "]"


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also escapes DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
