#!/usr/bin/env python3
"""Hook/notify recorder: append one JSON line per call to LOG.

usage: record.py LOG LABEL [extra argv...]
Records time, label, argv (the extra args; Codex `notify` passes its JSON
payload as the last argv), stdin (parsed as JSON when it is JSON; Claude Code
hooks send their payload on stdin), cwd, and env vars of interest.
Always exits 0 and prints nothing, so it never changes the agent's behaviour.
"""
import json
import os
import select
import sys
import time

KEEP = ("CLAUDE", "CODEX", "GEMINI", "ORCH", "TMUX", "TERM", "PWD", "HOME", "SESSION")


def main():
    log, label, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = ""
    if not sys.stdin.isatty():
        r, _, _ = select.select([sys.stdin], [], [], 2.0)
        if r:
            data = sys.stdin.read()
    try:
        stdin = json.loads(data) if data.strip() else data
    except ValueError:
        stdin = data
    parsed_argv = []
    for a in rest:
        try:
            parsed_argv.append(json.loads(a))
        except ValueError:
            parsed_argv.append(a)
    rec = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()),
        "t": round(time.time(), 3),
        "label": label,
        "argv": parsed_argv,
        "stdin": stdin,
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items()
                if any(s in k for s in KEEP) and "KEY" not in k and "TOKEN" not in k},
    }
    with open(log, "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        pass
    sys.exit(0)
