#!/usr/bin/env python3
"""Drive a real agent CLI in tmux against the offline model server and save screens.

usage: python -m e2e.capture claude|codex [--out DIR] [--keep] [--only a,b]
       (run from the repo root; CLIs come from e2e/install.sh's cache)

Each run: fresh HOME + work dir under a temp dir, the model server on a free
127.0.0.1 port, tmux on a private socket (-L e2e-<cli>-<pid>, 200x50), then the
CLI's scenario list (e2e/capture_<cli>.py: scenarios(run, only)).  Screens are written as
<out>/<cli>/real-<scenario>.txt (plain `tmux capture-pane -p`).  Hook/notify
payloads go to <work>/signals.jsonl and the server's requests to
<work>/modelserver.jsonl; both are copied to <out>/<cli>/ at the end.

Reusable pieces for other CLIs: Tmux (start/cap/keys/type/paste/wait_for),
ModelServer (start/mode/stop) and the Profile interface (home(), argv(), env()).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ORCH_E2E_CACHE", os.path.expanduser("~/.cache/orch-e2e"))
NPM_BIN = os.path.join(CACHE, "npm", "node_modules", ".bin")
RECORDER = os.path.join(REPO, "e2e", "signals", "record.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    def __init__(self, workdir: str):
        self.port = free_port()
        self.log = os.path.join(workdir, "modelserver.jsonl")
        self.ctl = os.path.join(workdir, "ctl")
        self.proc = None

    def start(self, mode: str = "text"):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "e2e.modelserver", "--port", str(self.port),
             "--log", self.log, "--control-dir", self.ctl, "--mode", mode],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                urllib.request.urlopen(f"{self.url}/_control", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("model server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mode(self, mode: str):
        req = urllib.request.Request(f"{self.url}/_control", json.dumps({"mode": mode}).encode(),
                                     method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def retry_after(self, seconds: int):
        """The Retry-After the server sends with its 429s."""
        with open(os.path.join(self.ctl, "retry_after"), "w") as f:
            f.write(str(seconds))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(5)


class Tmux:
    def __init__(self, name: str, width: int = 200, height: int = 50):
        self.sock = name
        self.width, self.height = width, height

    def _t(self, *args, check=True, **kw):
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args],
                              check=check, capture_output=True, text=True, **kw)

    @staticmethod
    def _wrapped(argv: list[str], env: dict) -> str:
        """The CLI in exactly `env`, then a line saying how it exited, the pane kept."""
        return "env -i " + " ".join(f"{k}={shq(v)}" for k, v in env.items()) + " " + \
            " ".join(shq(a) for a in argv) + "; echo '[e2e: cli exited '$?']'; sleep 3600"

    def start(self, argv: list[str], env: dict, cwd: str):
        cmd = self._wrapped(argv, env)
        self._t("new-session", "-d", "-s", "main", "-x", str(self.width), "-y",
                str(self.height), "-c", cwd, cmd)
        # keep the pane (and its last screen) when the CLI and the wrapper exit
        self._t("set-option", "-t", "main", "remain-on-exit", "on")

    def respawn(self, argv: list[str], env: dict, cwd: str):
        cmd = self._wrapped(argv, env)
        self._t("respawn-pane", "-k", "-t", "main", "-c", cwd, cmd)

    def cap(self, ansi: bool = False) -> str:
        return self._t("capture-pane", "-p", *(["-e"] if ansi else []), "-t", "main").stdout

    def keys(self, *keys: str):
        self._t("send-keys", "-t", "main", *keys)

    def type(self, text: str):
        self._t("send-keys", "-t", "main", "-l", text)

    def paste(self, text: str):
        """Bracketed paste, as a terminal would deliver it."""
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write(text)
        self._t("load-buffer", "-b", "e2e", f.name)
        self._t("paste-buffer", "-p", "-d", "-b", "e2e", "-t", "main")
        os.unlink(f.name)

    def wait_for(self, pattern: str, timeout: float = 30.0, gone: bool = False) -> bool:
        rx = re.compile(pattern, re.M)
        end = time.time() + timeout
        while time.time() < end:
            found = bool(rx.search(self.cap()))
            if found != gone:
                return True
            time.sleep(0.3)
        return False

    def kill(self):
        self._t("kill-server", check=False)


def shq(s: str) -> str:
    return "'" + str(s).replace("'", "'\\''") + "'"


class Run:
    """One capture run of one CLI: dirs, server, tmux, saving."""

    def __init__(self, cli: str, out: str, keep: bool):
        self.cli = cli
        # not under /tmp: Codex refuses to set up its helper binaries there and warns
        runs = os.path.join(CACHE, "runs")
        os.makedirs(runs, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix=f"{cli}-", dir=runs)
        self.home = os.path.join(self.root, "home")
        self.work = os.path.join(self.root, "work")
        os.makedirs(self.home)
        os.makedirs(self.work)
        subprocess.run(["git", "init", "-q", self.work], check=True)
        self.signals = os.path.join(self.root, "signals.jsonl")
        self.out = os.path.join(out, cli)
        os.makedirs(self.out, exist_ok=True)
        self.server = ModelServer(self.root).start()
        self.tmux = Tmux(f"e2e-{cli}-{os.getpid()}")
        self.keep = keep
        self.saved: list[str] = []
        # Typing, then Enter this long after: an Enter in the same burst as the text is taken
        # as part of a paste by some CLIs.
        self.submit_pause = 0.5

    def save(self, name: str, ansi: bool = False):
        txt = self.tmux.cap()
        path = os.path.join(self.out, f"real-{name}.txt")
        with open(path, "w") as f:
            f.write(txt)
        if ansi:
            with open(os.path.join(self.out, f"real-{name}.ansi"), "w") as f:
                f.write(self.tmux.cap(ansi=True))
        self.saved.append(name)
        print(f"  saved real-{name}.txt", file=sys.stderr)

    def submit(self, text: str):
        """Type `text` into the CLI's input and press Enter."""
        self.tmux.type(text)
        time.sleep(self.submit_pause)
        self.tmux.keys("Enter")

    def ask(self, mode: str, text: str):
        """Switch the model server to `mode`, then submit `text`."""
        self.server.mode(mode)
        self.submit(text)

    def exchange(self, mode: str, text: str, expect: str, timeout: float, name: str,
                 settle: float | Callable[[Run], object], required: bool = True) -> bool:
        """One prompt and its answer: `text` asked in `mode`, `expect` awaited (asserted when
        `required`), the CLI let settle (seconds, or a wait such as its prompt returning), the
        screen saved as `name`. Whether `expect` showed."""
        self.ask(mode, text)
        seen = self.tmux.wait_for(expect, timeout)
        assert seen or not required, self.tmux.cap()
        if callable(settle):
            settle(self)
        else:
            time.sleep(settle)
        self.save(name)
        return seen

    def step(self, msg: str):
        print(f"[{time.strftime('%H:%M:%S')}] {self.cli}: {msg}", file=sys.stderr)

    def finish(self):
        self.tmux.kill()
        self.server.stop()
        for f in ("signals.jsonl", "modelserver.jsonl"):
            p = os.path.join(self.root, f)
            if os.path.exists(p):
                shutil.copy(p, os.path.join(self.out, f"run-{f}"))
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"kept {self.root}", file=sys.stderr)


def base_env(run: Run) -> dict:
    return {"HOME": run.home, "PATH": f"{NPM_BIN}:/usr/local/bin:/usr/bin:/bin",
            "TERM": "xterm-256color", "LANG": "C.UTF-8", "SHELL": "/bin/bash",
            "USER": os.environ.get("USER", "root")}


def big_paste(kb: int = 100) -> str:
    line = "0123456789 the quick brown fox jumps over the lazy dog, pasted line {:05d}\n"
    out, i = [], 0
    while sum(len(x) for x in out) < kb * 1024:
        out.append(line.format(i))
        i += 1
    return "".join(out)


# --- steps the scenarios of Claude Code and Codex share ----------------------------------------


def typed_then_submitted(run: Run):
    """A prompt typed and left unsubmitted, then submitted and answered."""
    t = run.tmux
    run.step("typed, not submitted")
    t.type("hello from the e2e capture")
    time.sleep(1)
    run.save("typed-unsubmitted")
    t.keys("Enter")
    assert t.wait_for("OK: hello from the e2e capture", 30), t.cap()
    time.sleep(2)
    run.save("idle")


def slow_answer(run: Run):
    """A slow answer: the busy screen, its next frame, and idle again."""
    t = run.tmux
    run.step("busy (slow)")
    run.ask("slow", "please answer slowly")
    time.sleep(2.5)
    run.save("busy", ansi=True)
    time.sleep(1.5)
    run.save("busy-next-frame", ansi=True)
    assert t.wait_for("OK: please answer slowly", 30), t.cap()
    time.sleep(2)
    run.save("after-busy-idle")


def tool_answered(run: Run, asked: bool):
    """The permission prompt (when it showed) answered with Enter, then a second prompt."""
    t = run.tmux
    if asked:
        t.keys("Enter")
        t.wait_for("Done: the command ran", 30)
        time.sleep(2)
        run.save("permission-answered")
    run.exchange("text", "second prompt after the tool",
                 "OK: second prompt after the tool", 30, "second-prompt", settle=2, required=False)


def hang_frames(run: Run):
    """A request that never answers: the screen at 4 s, 8 s and about 30 s."""
    run.step("hang")
    run.ask("hang", "this request will hang")
    time.sleep(4)
    run.save("hang", ansi=True)
    time.sleep(4)
    run.save("hang-next-frame", ansi=True)
    time.sleep(25)
    run.save("hang-after-30s")


def paste_100k(run: Run):
    """A 100 KB paste, before and after Enter submits it."""
    t = run.tmux
    run.step("100 KB paste")
    t.paste(big_paste(100))
    time.sleep(3)
    run.save("paste-100k")
    t.keys("Enter")
    time.sleep(1)
    t.wait_for("esc to interrupt", 30, gone=True)
    time.sleep(2)
    run.save("paste-100k-submitted")


# --- scenarios: e2e/capture_<cli>.py defines scenarios(run, only) --------------
CLIS = ("claude", "codex", "gemini", "aider")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cli", choices=CLIS)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "screens"))
    ap.add_argument("--keep", action="store_true", help="keep the temp HOME/work dir")
    ap.add_argument("--only", default=None, help="comma list of scenario groups")
    a = ap.parse_args(argv)
    import importlib
    mod = importlib.import_module(f"e2e.capture_{a.cli}")
    run = Run(a.cli, a.out, a.keep)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        mod.scenarios(run, (a.only or "").split(",") if a.only else None)
    finally:
        run.finish()


if __name__ == "__main__":
    main()
