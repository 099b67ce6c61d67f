"""Drive the real Gemini CLI and aider in tmux against the offline model server.

    python -m e2e.capture_gemini_aider gemini|aider [--out tests/fixtures/screens] [--port P]

Each CLI runs with a fresh HOME (temp dir) on a private tmux socket
(`tmux -L e2e-ga-<pid>`), 200x50, against `python -m e2e.modelserver` on
127.0.0.1.  Screens are saved exactly as `tmux capture-pane -p` prints them,
as <out>/<cli>/real-<scenario>.txt.  Signals (hook / notification recorder
output) land in <work>/signals.jsonl; the work dir is printed at the end.
Installs come from e2e/install.sh (ORCH_E2E_CACHE, default ~/.cache/orch-e2e).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ORCH_E2E_CACHE", os.path.expanduser("~/.cache/orch-e2e"))
GEMINI = os.path.join(CACHE, "npm", "node_modules", ".bin", "gemini")
AIDER = os.path.join(CACHE, "aider-venv", "bin", "aider")

# Appends {"argv", "stdin", "env"(GEMINI_*/AIDER_*), "time"} as one JSON line.
RECORDER = r'''#!/usr/bin/env python3
import json, os, sys, time
data = sys.stdin.read() if not sys.stdin.isatty() else ""
try:
    parsed = json.loads(data) if data.strip() else None
except ValueError:
    parsed = None
rec = {"time": time.time(), "argv": sys.argv[1:], "stdin": parsed if parsed is not None else data,
       "env": {k: v for k, v in os.environ.items()
               if k.startswith(("GEMINI_", "CLAUDE_PROJECT", "AIDER_"))}}
with open(os.environ.get("E2E_SIGNAL_LOG", "%(log)s"), "a") as f:
    f.write(json.dumps(rec) + "\n")
print("{}")
'''


class ModelServer:
    def __init__(self, work: str, port: int):
        self.port = port
        self.log = os.path.join(work, "modelserver.jsonl")
        self.ctl = os.path.join(work, "ctl")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "e2e.modelserver", "--port", str(port), "--log", self.log,
             "--control-dir", self.ctl, "--mode", "text"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "ms.err"), "w"))
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_control", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("model server did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mode(self, m: str) -> None:
        with open(os.path.join(self.ctl, ".m"), "w") as f:
            f.write(m + "\n")
        os.replace(os.path.join(self.ctl, ".m"), os.path.join(self.ctl, "mode"))

    def requests(self) -> list[dict]:
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Tmux:
    def __init__(self, name: str, width: int = 200, height: int = 50):
        self.sock = f"e2e-{name}-{os.getpid()}"
        self.target = "main"
        self.width, self.height = width, height

    def tm(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        r = subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, input=input,
                           check=check)
        return r.stdout.decode(errors="replace")

    def start(self, cmd: list[str], env: dict, cwd: str) -> None:
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = f"cd {shlex.quote(cwd)} && exec env -i {envs} {shlex.join(cmd)}"
        self.tm("-f", "/dev/null", "new-session", "-d", "-s", self.target,
                "-x", str(self.width), "-y", str(self.height), "bash", "--norc", "-c", line)
        self.tm("set-option", "-t", self.target, "remain-on-exit", "on")

    def keys(self, *keys: str) -> None:
        self.tm("send-keys", "-t", self.target, *keys)

    def text(self, s: str) -> None:
        self.tm("send-keys", "-t", self.target, "-l", s)

    def paste(self, s: str) -> None:
        self.tm("load-buffer", "-b", "e2e", "-", input=s.encode())
        self.tm("paste-buffer", "-p", "-d", "-b", "e2e", "-t", self.target)

    def capture(self) -> str:
        return self.tm("capture-pane", "-p", "-t", self.target)

    def wait(self, pattern: str, timeout: float = 30, absent: bool = False) -> str:
        rx = re.compile(pattern, re.M)
        end = time.time() + timeout
        while True:
            s = self.capture()
            if bool(rx.search(s)) != absent:
                return s
            if time.time() > end:
                raise TimeoutError(f"{'still' if absent else 'no'} {pattern!r} on screen:\n{s}")
            time.sleep(0.3)

    def settle(self, quiet: float = 1.0, timeout: float = 15) -> str:
        """Wait until the screen stops changing for `quiet` seconds."""
        last, since, end = None, time.time(), time.time() + timeout
        while time.time() < end:
            s = self.capture()
            if s != last:
                last, since = s, time.time()
            elif time.time() - since >= quiet:
                break
            time.sleep(0.2)
        return last

    def kill(self) -> None:
        self.tm("kill-server", check=False)


class Saver:
    def __init__(self, out: str, cli: str):
        self.dir = os.path.join(out, cli)
        os.makedirs(self.dir, exist_ok=True)

    def save(self, scenario: str, screen: str) -> None:
        path = os.path.join(self.dir, f"real-{scenario}.txt")
        with open(path, "w") as f:
            f.write(screen)
        print(f"saved {path}", file=sys.stderr)


def write_recorder(work: str) -> str:
    log = os.path.join(work, "signals.jsonl")
    path = os.path.join(work, "record-signal.py")
    with open(path, "w") as f:
        f.write(RECORDER % {"log": log})
    os.chmod(path, 0o755)
    return path


def base_env(home: str) -> dict:
    return {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
            "LANG": "C.UTF-8", "USER": "e2e", "SHELL": "/bin/bash"}


def paste_text(kb: int = 100) -> str:
    lines, n = [], 0
    while n < kb * 1024:
        line = f"line {len(lines) + 1:05d}: the quick brown fox jumps over the lazy dog 0123456789"
        lines.append(line)
        n += len(line) + 1
    return "\n".join(lines)


# ---------------------------------------------------------------- Gemini CLI
GEMINI_EVENTS = ["SessionStart", "SessionEnd", "BeforeAgent", "AfterAgent", "BeforeModel",
                 "AfterModel", "BeforeToolSelection", "BeforeTool", "AfterTool", "PreCompress",
                 "Notification"]


def gemini_settings(home: str, model: str = "gemini-2.5-flash") -> None:
    os.makedirs(os.path.join(home, ".gemini"), exist_ok=True)
    with open(os.path.join(home, ".gemini", "settings.json"), "w") as f:
        json.dump({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "model": {"name": model},
        }, f, indent=2)


def gemini_system_settings(work: str, recorder: str) -> str:
    """Per-agent hooks file, passed as GEMINI_CLI_SYSTEM_SETTINGS_PATH."""
    path = os.path.join(work, "gemini-system-settings.json")
    hooks = {ev: [{"matcher": "*", "hooks": [{"name": f"orch-{ev}", "type": "command",
                                               "command": f"{recorder} {ev}", "timeout": 5000}]}]
             for ev in GEMINI_EVENTS}
    with open(path, "w") as f:
        json.dump({"hooks": hooks}, f, indent=2)
    return path


def gemini_env(home: str, srv: ModelServer, system_settings: str | None) -> dict:
    env = base_env(home)
    env.update({"GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": srv.base,
                "E2E_SIGNAL_LOG": os.path.join(os.path.dirname(home), "signals.jsonl")})
    if system_settings:
        env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = system_settings
    return env


# --------------------------------------------------------------------- aider
def aider_cmd(srv: ModelServer, notify: str | None, extra: list[str] = ()) -> list[str]:
    cmd = [AIDER, "--model", "openai/gpt-4o", "--openai-api-base", srv.base + "/v1",
           "--openai-api-key", "x", "--no-check-update", "--no-show-release-notes",
           "--no-analytics", "--no-gitignore", "--no-show-model-warnings"]
    if notify:
        cmd += ["--notifications", "--notifications-command", notify]
    return cmd + list(extra)


def git_repo(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    for args in (["init", "-q"], ["config", "user.email", "e2e@example.invalid"],
                 ["config", "user.name", "e2e"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    with open(os.path.join(path, "hello.py"), "w") as f:
        f.write("print('hello')\n")
    subprocess.run(["git", "add", "."], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cli", choices=["gemini", "aider"])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "screens"))
    ap.add_argument("--port", type=int, default=18940)
    a = ap.parse_args(argv)
    from . import capture_scenarios_ga as sc  # scenario scripts
    work = tempfile.mkdtemp(prefix=f"e2e-{a.cli}-")
    srv = ModelServer(work, a.port)
    try:
        getattr(sc, a.cli)(work, srv, Saver(a.out, a.cli))
    finally:
        srv.stop()
    print(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
