"""How each real agent CLI is started offline under orch: HOME, command, env, rules, screens.

Everything here comes from FINDINGS-claude-codex.md and FINDINGS-gemini-aider.md (what the
captures showed). The `ready` and `busy` patterns are the harness's own reading of the screen,
used only to wait for the CLI between scenarios; the verdicts come from orch and the model server.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("ORCH_E2E_CACHE", os.path.expanduser("~/.cache/orch-e2e")))
NPM_BIN = CACHE / "npm" / "node_modules" / ".bin"
AIDER = CACHE / "aider-venv" / "bin" / "aider"
PATH = f"{NPM_BIN}:/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class CliSpec:
    """One CLI as orch should run it, and what the harness knows about its screens."""

    name: str
    binary: Path
    profile: str
    setup: Callable[[Path, Path, str], None]
    """(home, workdir, server url): write the CLI's config into the fresh HOME and workdir."""
    command: Callable[[str], str]
    """server url -> the command line orch runs."""
    restart_command: Callable[[str], str]
    env: Callable[[Path, str], dict[str, str]]
    startup_rules: list[dict[str, Any]]
    """`prompts` rules for the CLI's first-start dialogs."""
    permission_question: str
    """A regex of the permission prompt's question (server `tool` mode)."""
    permission_rule: dict[str, Any]
    ready: str
    """Regex: the CLI's empty input is drawn (searched in the last lines)."""
    busy: str
    """Regex: a turn is in progress."""
    interrupt: list[str] = field(default_factory=lambda: ["Escape"])
    """Keys that cancel a hung turn (harness recovery only)."""
    clear: list[str] = field(default_factory=lambda: ["C-u"])
    """Keys that get rid of unsent text in the input, clearing or sending it (harness recovery
    only: the scenario's verdict is taken before)."""
    preseed: Callable[[Path, Path], dict[str, str]] = lambda home, work: {}
    """(home, workdir) -> extra env: settle the start-up dialogs in advance, so the other
    scenarios still run when orch could not get through them (scenario a FAILed)."""
    side_calls: str = "(?!)"
    """Regex of the CLI's own model calls (a user text starting so), not a message of ours."""


def _base_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": PATH,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "SHELL": "/bin/bash",
    }


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


# --- Claude Code 2.1.332 --------------------------------------------------------------------
CLAUDE_KEY = "sk-ant-api03-e2e-offline-key-0000000000000000"


def _claude_setup(home: Path, work: Path, url: str) -> None:
    # onboarding done; the trust and API-key dialogs are left for orch's rules (scenario a)
    _write_json(
        home / ".claude.json",
        {"hasCompletedOnboarding": True, "theme": "dark", "lastOnboardingVersion": "2.1.332"},
    )


def _claude_preseed(home: Path, work: Path) -> dict[str, str]:
    path = home / ".claude.json"
    conf = json.loads(path.read_text())
    conf["projects"] = {str(work): {"hasTrustDialogAccepted": True}}
    conf["customApiKeyResponses"] = {"approved": [CLAUDE_KEY[-20:]], "rejected": []}
    path.write_text(json.dumps(conf))
    return {}


def _claude_env(home: Path, url: str) -> dict[str, str]:
    return {
        **_base_env(home),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": CLAUDE_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # give up after one retry of a 429, so the limit line shows within seconds
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }


CLAUDE = CliSpec(
    name="claude",
    binary=NPM_BIN / "claude",
    profile="claude",
    setup=_claude_setup,
    command=lambda url: "claude --permission-mode manual",
    restart_command=lambda url: "claude --permission-mode manual --continue",
    env=_claude_env,
    startup_rules=[
        # "❯ No, exit" is preselected: Down to "Yes, I trust this folder", then Enter
        {"match": "Is this a project you created or one you trust", "keys": ["Down", "Enter"]},
        # "❯ No (recommended)" is preselected
        {"match": "Do you want to use this API key", "keys": ["Up", "Enter"]},
    ],
    permission_question=r"Do you want to proceed\?",
    permission_rule={"match": "Do you want to proceed\\?", "keys": ["Enter"]},
    ready="^❯\u00a0",
    preseed=_claude_preseed,
    busy="esc to interrupt",
)


# --- Codex 0.171.0 --------------------------------------------------------------------------
def _codex_setup(home: Path, work: Path, url: str) -> None:
    d = home / ".codex"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.toml").write_text(
        f"""model = "gpt-5"
model_provider = "e2e"

[model_providers.e2e]
name = "e2e"
base_url = "{url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false
request_max_retries = 1
stream_max_retries = 1
"""
    )


def _codex_preseed(home: Path, work: Path) -> dict[str, str]:
    with open(home / ".codex" / "config.toml", "a") as f:
        f.write(f'\n[projects.{json.dumps(str(work))}]\ntrust_level = "trusted"\n')
    return {}


CODEX = CliSpec(
    name="codex",
    binary=NPM_BIN / "codex",
    profile="codex",
    setup=_codex_setup,
    command=lambda url: "codex --no-daemon",
    restart_command=lambda url: "codex --no-daemon resume --last",
    env=lambda home, url: {**_base_env(home), "OPENAI_API_KEY": "sk-e2e-offline-0000000000000000"},
    startup_rules=[{"match": "Trust this folder\\?", "keys": ["Enter"]}],
    permission_question=r"Would you like to run the following command\?",
    permission_rule={"match": "Would you like to run the following command\\?", "keys": ["Enter"]},
    ready=r"\? for shortcuts",
    busy=r"esc to interrupt",
    preseed=_codex_preseed,
    side_calls=r"Generate a concise, single-line task title",  # after the first prompt
)


# --- Gemini CLI 0.61.0 ----------------------------------------------------------------------
GEMINI_MODEL = "gemini-2.5-flash"  # a fixed model: no router side call carrying the user text


def _gemini_setup(home: Path, work: Path, url: str) -> None:
    _write_json(
        home / ".gemini" / "settings.json",
        {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        },
    )


GEMINI = CliSpec(
    name="gemini",
    binary=NPM_BIN / "gemini",
    profile="gemini",
    setup=_gemini_setup,
    command=lambda url: f"gemini -m {GEMINI_MODEL}",
    restart_command=lambda url: f"gemini -m {GEMINI_MODEL} --resume latest",
    env=lambda home, url: {
        **_base_env(home),
        "GEMINI_API_KEY": "x",
        "GOOGLE_GEMINI_BASE_URL": url,
        "COLORTERM": "truecolor",
    },
    # the folder-trust dialog is left on purpose; "1. Trust folder" is preselected
    startup_rules=[{"match": "Do you trust the files in this folder\\?", "keys": ["Enter"]}],
    permission_question=r"Allow execution of",
    permission_rule={"match": "Allow execution of", "keys": ["Enter"]},
    ready=r"Type your message or @path/to/file",
    preseed=lambda home, work: {"GEMINI_CLI_TRUST_WORKSPACE": "true"},
    clear=["Enter"],  # Esc does not drop a "[Pasted Text: N lines]": send it instead
    busy=r"\(esc to cancel, ",
)


# --- aider 0.86.2 ---------------------------------------------------------------------------
def _aider_setup(home: Path, work: Path, url: str) -> None:
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True, exist_ok=True)
    site = CACHE / "aider-venv" / "lib" / "python3*" / "site-packages"
    bundled = glob.glob(str(site / "litellm" / "model_prices_and_context_window_backup.json"))
    if bundled:  # a fresh price cache: aider does not download it
        shutil.copy(bundled[0], caches / "model_prices_and_context_window.json")
    for args in (["config", "user.email", "e2e@example.invalid"], ["config", "user.name", "e2e"]):
        subprocess.run(["git", *args], cwd=work, check=True)
    (work / "hello.py").write_text("print('hello')\n")
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=work, check=True)


def _aider_command(url: str) -> str:
    return (
        f"{AIDER} --model openai/gpt-4o --openai-api-base {url}/v1 --openai-api-key x"
        " --no-check-update --no-show-release-notes --no-analytics"
    )


def _aider_preseed(home: Path, work: Path) -> dict[str, str]:
    (work / ".gitignore").write_text(".aider*\n")  # aider does not ask when it is ignored
    return {}


AIDER_SPEC = CliSpec(
    name="aider",
    binary=AIDER,
    profile="aider",
    setup=_aider_setup,
    command=_aider_command,
    restart_command=lambda url: _aider_command(url) + " --restore-chat-history",
    env=lambda home, url: {**_base_env(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    startup_rules=[{"match": "Add \\.aider\\* to \\.gitignore", "answer": "n"}],
    permission_question=r"Run shell command\?",
    permission_rule={"match": "Run shell command\\?", "answer": "y"},
    ready=r"^>\s*$",
    busy=r"Waiting for openai/gpt-4o",
    interrupt=["C-c"],
    clear=["C-c"],  # aider: Ctrl-C at the input drops what is typed
    preseed=_aider_preseed,
)

CLIS: dict[str, CliSpec] = {c.name: c for c in (CLAUDE, CODEX, GEMINI, AIDER_SPEC)}
