"""Codex CLI scenarios for e2e/capture.py (python -m e2e.capture codex).

Offline set-up: a custom model provider in $HOME/.codex/config.toml pointing at
the model server with `supports_websockets = false` (with plain
`openai_base_url` Codex 0.171 first tries a websocket GET /v1/responses five
times, shows "Reconnecting... n/5", then falls back to HTTP POST), and
OPENAI_API_KEY in the env (a custom provider with env_key skips the login
screen).  Signals are passed per invocation with -c (notify and hooks.<Event>)
plus --dangerously-bypass-hook-trust.
"""
from __future__ import annotations

import json
import os
import time

from e2e.capture import RECORDER, Run, base_env, hang_frames, paste_100k, slow_answer
from e2e.capture import tool_answered, typed_then_submitted

VERSION = "0.171.0"
COMPOSER = r"^› (?!\d+\. )"   # the composer line (› + space); "› 1. " is a menu selection
READY = r"\? for shortcuts"    # footer drawn under the composer once it is ready
HOOK_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
               "PostToolUse", "Stop", "SessionEnd"]


def toml_str(s: str) -> str:
    return json.dumps(s)


def signal_args(run: Run, prefix: str = "") -> list[str]:
    rec = f"python3 {RECORDER} {run.signals}"
    args = ["-c", "notify=" + json.dumps(["python3", RECORDER, run.signals, prefix + "notify"])]
    for ev in HOOK_EVENTS:
        cmd = toml_str(f"{rec} {prefix}{ev}")
        matcher = 'matcher="*",' if "Tool" in ev or ev.startswith("Permission") else ""
        args += ["-c", f"hooks.{ev}=[{{{matcher}hooks=[{{type=\"command\",command={cmd}}}]}}]"]
    return args


def setup_home(run: Run):
    d = os.path.join(run.home, ".codex")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write(f'''model = "gpt-5"
model_provider = "e2e"

[model_providers.e2e]
name = "e2e"
base_url = "{run.server.url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false
request_max_retries = 2
stream_max_retries = 2
''')


def env(run: Run) -> dict:
    e = base_env(run)
    e.update({"OPENAI_API_KEY": "sk-e2e-offline-0000000000000000"})
    return e


def scenarios(run: Run, only=None):
    t = run.tmux
    setup_home(run)
    base = ["codex", "--no-daemon"]
    argv = base + ["--dangerously-bypass-hook-trust"] + signal_args(run)
    run.step("first start")
    t.start(argv, env(run), run.work)
    assert t.wait_for("Trust this folder", 30), t.cap()
    time.sleep(1)
    run.save("trust-folder")
    t.keys("Enter")
    assert t.wait_for(READY, 30), t.cap()
    run.save("ready-first-frame")
    time.sleep(3)
    run.save("idle-first-start")

    typed_then_submitted(run)

    slow_answer(run)

    run.step("approval prompt")
    run.ask("tool", "run the e2e tool")
    ok = t.wait_for("Would you like|approve|Allow|proceed", 40)
    time.sleep(1)
    run.save("permission", ansi=True)
    tool_answered(run, ok)

    run.step("quota")
    run.exchange("quota", "will my quota run out",
                 "[Qq]uota|billing", 60, "quota", settle=2, required=False)

    run.step("429")
    run.server.mode("429")
    run.server.retry_after(5)
    run.submit("am I rate limited")
    time.sleep(3)
    run.save("429", ansi=True)
    time.sleep(5)
    run.save("429-next-frame")
    time.sleep(30)
    run.save("429-final")
    run.server.mode("text")
    t.keys("Escape")
    time.sleep(1)

    hang_frames(run)
    t.keys("Escape")
    time.sleep(2)
    run.save("hang-interrupted")
    run.server.mode("text")

    run.step("restart with resume --last")
    t.keys("C-c")   # one Ctrl-C at an empty composer exits Codex
    t.wait_for(r"\[e2e: cli exited", 20)
    time.sleep(1)
    run.save("exit")
    t.respawn(base + ["resume", "--last", "--dangerously-bypass-hook-trust"]
              + signal_args(run, "resume-"), env(run), run.work)
    t.wait_for(READY, 40)
    time.sleep(3)
    run.save("resume-last")

    paste_100k(run)
    t.keys("C-c")
    t.wait_for(r"\[e2e: cli exited", 20)
    time.sleep(1)

    run.step("hooks without --dangerously-bypass-hook-trust")
    t.respawn(base + signal_args(run, "untrusted-"), env(run), run.work)
    t.wait_for("Hooks need review", 40)
    time.sleep(1)
    run.save("hooks-untrusted-start")
    t.keys("Down", "Down")
    time.sleep(0.5)
    t.keys("Enter")   # 3. Continue without trusting (hooks won't run)
    t.wait_for(READY, 20)
    time.sleep(1)
    run.submit("are untrusted hooks run")
    t.wait_for("OK: are untrusted hooks run", 30)
    time.sleep(2)
    run.save("hooks-untrusted-idle")
    t.keys("C-c")
    time.sleep(0.5)
    t.keys("C-c")
    time.sleep(2)
