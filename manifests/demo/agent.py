#!/usr/bin/env python3
"""A stand-in for an AI coding agent, so `make demo` runs on any machine with no subscription.

It shows a prompt, "thinks" with a spinner and an elapsed timer for each message, then answers,
like the agent CLIs orch supervises. A task that mentions "ask" makes it ask a yes/no question
first, as agent CLIs do before a risky step: answer it with `orch answer NAME y`. Standard library
only.
"""

import argparse
import itertools
import sys
import time

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def think(seconds: float) -> None:
    """Show a spinner and a timer, as agent CLIs do while they work."""
    start = time.monotonic()
    for glyph in itertools.cycle(SPINNER):
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        sys.stdout.write(f"\r{glyph} Thinking… ({elapsed:.0f}s · esc to interrupt)")
        sys.stdout.flush()
        time.sleep(0.1)
    sys.stdout.write("\r" + " " * 40 + "\r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="agent")
    parser.add_argument("--think", type=float, default=2.0, help="seconds spent per message")
    args = parser.parse_args()
    print(f"demo {args.role} ready · type a task, or let orch send one")
    while True:
        sys.stdout.write("› ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return
        if "ask" in line.split():
            sys.stdout.write("Do you want to proceed? [y/N] ")
            sys.stdout.flush()
            reply = sys.stdin.readline().strip().lower()
            if reply != "y":
                print(f"[{args.role}] skipped: {line.strip()[:70]}")
                continue
        if line.strip():
            think(args.think)
            print(f"[{args.role}] done: {line.strip()[:70]}")


if __name__ == "__main__":
    main()
