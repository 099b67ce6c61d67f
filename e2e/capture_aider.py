"""aider scenarios for e2e/capture.py (python -m e2e.capture aider).

Offline set-up: `--model openai/gpt-4o --openai-api-base <server>/v1
--openai-api-key x` with update check, release notes and analytics off.
Two things would otherwise reach the network at start-up (and print
"HTTPSConnectionPool(host='raw.githubusercontent.com' ...)" twice):
litellm's model-cost map (LITELLM_LOCAL_MODEL_COST_MAP=True keeps the copy it
ships) and aider's own ModelInfoManager, which downloads the same JSON unless
$HOME/.aider/caches/model_prices_and_context_window.json is non-empty and less
than a day old (we seed it from litellm's bundled backup copy).

Signal: `--notifications --notifications-command CMD`; aider runs CMD
(shell=True, no payload) the next time it waits for the user after an LLM
call started: at the `>` input, or at a confirm question.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time

from e2e.capture import CACHE, RECORDER, Run, base_env, big_paste

VERSION = "0.86.2"
AIDER = os.path.join(CACHE, "aider-venv", "bin", "aider")
PROMPT = r"^> ?$"                 # empty input line (under a ─── rule)
SPINNER = r"Waiting for openai/gpt-4o"


def setup(run: Run):
    caches = os.path.join(run.home, ".aider", "caches")
    os.makedirs(caches, exist_ok=True)
    src = glob.glob(os.path.join(CACHE, "aider-venv", "lib", "python3*", "site-packages",
                                 "litellm", "model_prices_and_context_window_backup.json"))
    if src:
        shutil.copy(src[0], os.path.join(caches, "model_prices_and_context_window.json"))
    w = run.work
    for args in (["config", "user.email", "e2e@example.invalid"], ["config", "user.name", "e2e"]):
        subprocess.run(["git", *args], cwd=w, check=True)
    with open(os.path.join(w, "hello.py"), "w") as f:
        f.write("print('hello')\n")
    with open(os.path.join(w, "e2e-tool-file.txt"), "w") as f:
        f.write("data\n")
    subprocess.run(["git", "add", "."], cwd=w, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=w, check=True)


def argv(run: Run, *extra: str) -> list[str]:
    return [AIDER, "--model", "openai/gpt-4o", "--openai-api-base", run.server.url + "/v1",
            "--openai-api-key", "x", "--no-check-update", "--no-show-release-notes",
            "--no-analytics", "--notifications", "--notifications-command",
            f"python3 {RECORDER} {run.signals} aider-waiting", *extra]


def env(run: Run) -> dict:
    e = base_env(run)
    e["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return e


def prompt(run: Run, timeout: float = 60):
    assert run.tmux.wait_for(PROMPT, timeout), run.tmux.cap()
    time.sleep(1)


def scenarios(run: Run, only=None):
    t = run.tmux
    want = (lambda g: only is None or g in only)
    setup(run)
    run.step("first start (asks about .gitignore)")
    t.start(argv(run), env(run), run.work)
    assert t.wait_for(r"Add \.aider\* to \.gitignore", 60), t.cap()
    time.sleep(1)
    run.save("first-start-gitignore")
    t.keys("n", "Enter")
    prompt(run)
    run.save("first-start-ready")
    t.type("say hello please")
    time.sleep(0.5)
    run.save("typed-unsubmitted")
    t.keys("Enter")
    assert t.wait_for(r"^Tokens: .* session\.$", 60), t.cap()
    prompt(run)
    run.save("answered-idle")
    if want("busy"):
        run.ask("slow", "explain the repo slowly")
        time.sleep(1.5)
        run.save("busy")
        time.sleep(1.2)
        run.save("busy-next-frame")
        assert t.wait_for(r"OK: explain the repo slowly", 60), t.cap()
        prompt(run)
    if want("tool"):
        run.ask("tool", "create the marker file")
        assert t.wait_for(r"Run shell command\? \(Y\)es/\(N\)o/\(D\)on't ask again \[Yes\]: $", 60)
        time.sleep(1)
        run.save("permission-prompt")
        t.keys("y", "Enter")
        prompt(run)
        run.save("permission-answered")
        run.exchange("text", "second prompt after the tool", r"OK: second prompt after the tool",
                     60, "second-prompt-answered", settle=prompt)
        run.exchange("tool", "edit the e2e file",
                     r"Add file to the chat\?", 60, "add-file-prompt", settle=1)
        t.keys("y", "Enter")
        prompt(run)
        run.save("add-file-answered-idle")
    if want("hang"):
        run.ask("hang", "this will hang")
        time.sleep(4)
        run.save("hang")
        time.sleep(1)
        run.save("hang-next-frame")
        t.keys("C-c")
        prompt(run)
        run.save("hang-interrupted")
    if want("paste"):
        run.server.mode("text")
        t.paste(big_paste(100))
        time.sleep(4)
        run.save("paste-100k")                           # not submitted: Enter does it
        t.keys("Enter")
        assert t.wait_for(r"^Tokens: \d+k sent", 120), t.cap()
        prompt(run)
        run.save("paste-100k-submitted")
    if want("limits"):
        run.exchange("429", "hit the rate limit",
                     r"Retrying in 0\.2 seconds\.\.\.", 120, "limit-429", settle=1)
        run.server.mode("quota")
        assert t.wait_for(r"You exceeded your current quota", 120), t.cap()
        time.sleep(1)
        run.save("limit-quota")
        # gives up once the next delay would pass 60 s; asks to open the URL
        assert t.wait_for(r"D\)on't ask again \[Yes\]: $", 240), t.cap()
        time.sleep(1)
        run.save("limit-gave-up-open-url")
        t.keys("n", "Enter")
        prompt(run)
        run.server.mode("text")
    run.submit("/exit")
    time.sleep(3)
    if want("resume"):
        run.step("restart with --restore-chat-history")
        t.respawn(argv(run, "--no-gitignore", "--restore-chat-history"), env(run), run.work)
        assert t.wait_for("Restored previous conversation history", 90), t.cap()
        prompt(run)
        run.save("resume-restore-chat-history")
        run.submit("after restore")
        assert t.wait_for(r"OK: after restore", 60), t.cap()
        prompt(run)
        run.save("resume-second-prompt")
        run.submit("/exit")
        time.sleep(2)
