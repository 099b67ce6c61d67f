"""Gemini CLI scenarios for e2e/capture.py (python -m e2e.capture gemini).

Offline set-up: GEMINI_API_KEY=x + GOOGLE_GEMINI_BASE_URL=<model server> and a
user settings file with security.auth.selectedType=gemini-api-key (no auth
dialog), update checks / usage statistics / telemetry off.  The folder-trust
dialog is skipped with GEMINI_CLI_TRUST_WORKSPACE=true (the "first-start" group
runs once without it, in a second fresh HOME, to capture the dialogs).

Signals: every hook event goes to the recorder through a per-run *system*
settings file passed as GEMINI_CLI_SYSTEM_SETTINGS_PATH.  Gemini CLI 0.61 loads
a system settings file only if it and every parent directory are owned by root
and not group/other-writable ("Security Warning: Skipping system settings file
..." otherwise), so as non-root the hooks go into the throw-away HOME's
settings.json instead.  Hooks from the system file are concatenated with the
user's/workspace's (mergeStrategy concat) and need no trust.
"""
from __future__ import annotations

import json
import os
import time

from e2e.capture import RECORDER, Run, base_env, big_paste

VERSION = "0.61.0"
READY = r"Type your message or @path/to/file"   # placeholder of the empty composer
IDLE = r"\? for shortcuts"
BUSY = r"\(esc to cancel, "
HOOK_EVENTS = ["SessionStart", "SessionEnd", "BeforeAgent", "AfterAgent", "BeforeModel",
               "AfterModel", "BeforeToolSelection", "BeforeTool", "AfterTool", "PreCompress",
               "Notification"]
USER_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def hooks(run: Run) -> dict:
    return {ev: [{"matcher": "*", "hooks": [{
        "name": f"orch-{ev}", "type": "command", "timeout": 30000,
        "command": f"python3 {RECORDER} {run.signals} {ev}"}]}] for ev in HOOK_EVENTS}


def write_json(path: str, obj: dict):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def env(run: Run, home: str | None = None, trust: bool = True) -> dict:
    e = base_env(run)
    e.update({"GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": run.server.url})
    if home:
        e["HOME"] = home
    if trust:
        e["GEMINI_CLI_TRUST_WORKSPACE"] = "true"
    sysfile = os.path.join(run.root, "gemini-system-settings.json")
    if os.path.exists(sysfile):
        e["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = sysfile
    return e


def setup(run: Run):
    settings = dict(USER_SETTINGS)
    if os.geteuid() == 0:
        write_json(os.path.join(run.root, "gemini-system-settings.json"), {"hooks": hooks(run)})
    else:
        settings["hooks"] = hooks(run)
    write_json(os.path.join(run.home, ".gemini", "settings.json"), settings)


def launch(run: Run, argv: list[str], e: dict, cwd: str):
    if getattr(run, "_gemini_started", False):
        run.tmux.respawn(argv, e, cwd)
    else:
        run.tmux.start(argv, e, cwd)
        run._gemini_started = True


def idle(run: Run, timeout: float = 60):
    t = run.tmux
    assert t.wait_for(BUSY, timeout, gone=True), t.cap()
    assert t.wait_for(READY, 10), t.cap()
    time.sleep(1.5)


def first_start(run: Run):
    t = run.tmux
    home = os.path.join(run.root, "home-first")
    os.makedirs(home)
    run.step("first start (no settings, untrusted folder)")
    launch(run, ["gemini"], env(run, home=home, trust=False), run.work)
    assert t.wait_for("Do you trust the files in this folder", 60), t.cap()
    time.sleep(1)
    run.save("first-start-trust")
    t.keys("Enter")                                      # 1. Trust folder -> CLI restarts
    assert t.wait_for("How would you like to authenticate", 60), t.cap()
    time.sleep(1)
    run.save("first-start-auth")
    t.keys("Enter")                                      # 2. Use Gemini API Key (preselected)
    assert t.wait_for("Enter Gemini API Key", 30), t.cap()
    time.sleep(1)
    run.save("first-start-apikey")
    t.keys("Enter")                                      # key prefilled from GEMINI_API_KEY
    assert t.wait_for(READY, 30), t.cap()
    time.sleep(1.5)
    run.save("first-start-ready")
    run.submit("/quit")
    assert t.wait_for("To resume this session", 30), t.cap()
    time.sleep(1)
    run.save("quit-summary")


def main_session(run: Run, only):
    t = run.tmux
    want = (lambda g: only is None or g in only)
    run.step("start with hooks")
    launch(run, ["gemini"], env(run), run.work)
    assert t.wait_for(READY, 60), t.cap()
    time.sleep(2)
    run.save("idle-fresh")
    if want("busy"):
        run.ask("slow", "explain the repo")
        time.sleep(2.5)
        run.save("busy")
        time.sleep(1.2)
        run.save("busy-next-frame")
        idle(run)
        run.save("answered-idle")
    if want("tool"):
        run.server.mode("tool")
        t.type("create the marker file")
        time.sleep(0.8)
        run.save("typed-unsubmitted")
        t.keys("Enter")
        assert t.wait_for(r"Allow execution of", 60), t.cap()
        time.sleep(1)
        run.save("permission-prompt")
        t.keys("Enter")                                  # 1. Allow once
        idle(run)
        run.save("permission-answered-idle")
        run.exchange("text", "second prompt after the tool", r"OK: second prompt after the tool",
                     60, "second-prompt-answered", settle=idle)
    if want("hang"):
        run.ask("hang", "this will hang")
        time.sleep(20)
        run.save("hang")
        time.sleep(1.1)
        run.save("hang-next-frame")
        t.keys("Escape")
        assert t.wait_for("Request cancelled", 30), t.cap()
        idle(run)
        run.save("cancelled-idle")
    if want("paste"):
        run.server.mode("text")
        t.paste(big_paste(100))
        assert t.wait_for(r"\[Pasted Text: \d+ lines\]", 30), t.cap()
        time.sleep(1)
        run.save("paste-100k")
        t.keys("Enter")
        assert t.wait_for(r"OK: ", 120), t.cap()
        idle(run, 120)
        run.save("paste-100k-answered")
    run.submit("/quit")
    assert t.wait_for("To resume this session", 30), t.cap()
    time.sleep(1)
    run.save("quit-summary-with-hooks")


def resume_and_limits(run: Run, only):
    """Restart with --resume latest and a fixed model (no router side call),
    then the daily quota dialog and the silent per-minute 429 retries."""
    t = run.tmux
    run.server.mode("text")
    run.step("resume latest")
    launch(run, ["gemini", "--resume", "latest", "-m", "gemini-2.5-flash"], env(run), run.work)
    assert t.wait_for(READY, 90), t.cap()
    time.sleep(3)
    run.save("resume-latest")
    run.exchange("quota", "hit the daily quota",
                 r"Usage limit reached for", 90, "limit-quota", settle=1)
    t.keys("Down")
    time.sleep(0.3)
    t.keys("Enter")                                      # 2. Stop
    assert t.wait_for(r"exhausted your daily quota", 30), t.cap()
    idle(run)
    run.save("limit-quota-stopped")
    run.ask("429", "hit the rate limit again")
    time.sleep(25)
    run.save("limit-429-retrying")                       # nothing but the spinner
    t.keys("Escape")
    idle(run)
    run.submit("/quit")
    t.wait_for("To resume this session", 30)


def scenarios(run: Run, only=None):
    # Enter sent in the same burst as the text is swallowed (taken as part of a paste); some
    # time later it submits.
    run.submit_pause = 0.8
    setup(run)
    if only is None or "first-start" in only:
        first_start(run)
    main_session(run, only)
    if only is None or "limits" in only:
        resume_and_limits(run, only)
