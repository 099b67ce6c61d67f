"""Claude Code scenarios for e2e/capture.py (python -m e2e.capture claude)."""
from __future__ import annotations

import json
import os
import time

from e2e.capture import RECORDER, Run, base_env, hang_frames, paste_100k, slow_answer
from e2e.capture import tool_answered, typed_then_submitted

VERSION = "2.1.332"
API_KEY = "sk-ant-api03-e2e-offline-key-0000000000000000"
READY = "^❯\u00a0"          # the prompt line of the drawn input box (❯ + NBSP)
HOOK_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
               "PostToolUse", "PostToolUseFailure", "Notification", "Stop", "StopFailure",
               "SessionEnd", "PermissionDenied", "PreCompact"]


def hook_settings(run: Run, label_prefix: str = "") -> dict:
    def cmd(ev):
        return {"type": "command",
                "command": f"python3 {RECORDER} {run.signals} {label_prefix}{ev}"}
    return {"hooks": {ev: [{"matcher": "*", "hooks": [cmd(ev)]}] if "Tool" in ev or
                      ev.startswith("Permission") else [{"hooks": [cmd(ev)]}]
                      for ev in HOOK_EVENTS}}


def setup_home(run: Run):
    # onboarding done; the trust and API-key dialogs are left to appear on purpose
    with open(os.path.join(run.home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True, "theme": "dark",
                   "lastOnboardingVersion": VERSION,
                   "messageIdleNotifThresholdMs": 15000}, f)
    # a user-level hook, to check that --settings merges with (not replaces) it
    os.makedirs(os.path.join(run.home, ".claude"), exist_ok=True)
    with open(os.path.join(run.home, ".claude", "settings.json"), "w") as f:
        json.dump({"hooks": {"Stop": [{"hooks": [{
            "type": "command",
            "command": f"python3 {RECORDER} {run.signals} user-settings-Stop"}]}]}}, f)
    path = os.path.join(run.root, "orch-claude-settings.json")
    with open(path, "w") as f:
        json.dump(hook_settings(run), f, indent=1)
    return path


def env(run: Run) -> dict:
    e = base_env(run)
    e.update({"ANTHROPIC_BASE_URL": run.server.url, "ANTHROPIC_API_KEY": API_KEY,
              "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
              "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"})
    return e


def scenarios(run: Run, only=None):
    t = run.tmux
    settings = setup_home(run)
    argv = ["claude", "--settings", settings, "--permission-mode", "manual"]
    run.step("first start")
    t.start(argv, env(run), run.work)
    assert t.wait_for("trust this folder", 30), t.cap()
    time.sleep(1)
    run.save("trust-folder")
    t.keys("Down")
    time.sleep(0.5)
    run.save("trust-folder-selected")
    t.keys("Enter")
    assert t.wait_for("Do you want to use this API key", 20), t.cap()
    time.sleep(0.5)
    run.save("api-key-confirm")
    t.keys("Up")
    time.sleep(0.3)
    t.keys("Enter")
    assert t.wait_for(READY, 30), t.cap()
    run.save("ready-first-frame")
    time.sleep(3)
    run.save("idle-first-start")

    typed_then_submitted(run)

    run.step("idle notification wait (20 s)")
    time.sleep(20)
    run.save("idle-after-20s")

    slow_answer(run)

    run.step("permission prompt")
    run.ask("tool", "run the e2e tool")
    ok = t.wait_for("Do you want|Allow|proceed", 40)
    time.sleep(1)
    run.save("permission", ansi=True)
    time.sleep(12)  # does Notification(permission_prompt) fire while it waits?
    run.save("permission-after-12s")
    tool_answered(run, ok)

    run.step("quota")
    run.exchange("quota", "will my credit run out",
                 "[Cc]redit balance", 40, "quota", settle=2, required=False)

    run.step("429")
    run.server.mode("429")
    run.server.retry_after(5)
    run.submit("am I rate limited")
    time.sleep(4)
    run.save("429", ansi=True)
    time.sleep(6)
    run.save("429-next-frame")
    time.sleep(20)
    run.save("429-after-30s")
    run.server.mode("text")
    t.keys("Escape")
    idle(run)
    time.sleep(1)
    run.save("429-interrupted")   # Esc puts the interrupted prompt back into the input
    t.keys("C-u")                  # clear it, as orch must before typing anything else
    time.sleep(0.5)
    run.save("429-interrupted-cleared")

    hang_frames(run)
    run.server.mode("text")
    t.keys("Escape")
    idle(run)
    time.sleep(1)
    run.save("hang-interrupted")
    t.keys("C-u")
    time.sleep(0.5)

    run.step("restart with --continue")
    t.type("/exit")
    time.sleep(1)
    t.keys("Enter")
    t.wait_for(r"\[e2e: cli exited", 20)
    time.sleep(1)
    run.save("exit")
    e = env(run)
    e["CLAUDE_CODE_MAX_RETRIES"] = "1"   # so the 429 below gives up fast
    t.respawn(argv + ["--continue"], e, run.work)
    t.wait_for(READY, 40)
    time.sleep(3)
    run.save("resume-continue")
    run.step("429 with CLAUDE_CODE_MAX_RETRIES=1")
    run.ask("429", "rate limited with few retries")
    time.sleep(2)
    idle(run, 90)
    time.sleep(1)
    run.save("429-final")
    run.server.mode("text")
    paste_100k(run)

    t.keys("C-c")
    time.sleep(0.5)
    t.keys("C-c")
    time.sleep(3)


def idle(run: Run, timeout: float = 60):
    """Busy while the footer says "esc to interrupt"."""
    return run.tmux.wait_for("esc to interrupt", timeout, gone=True)
