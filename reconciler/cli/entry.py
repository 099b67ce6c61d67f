"""The `orch` executable: `orch signal` on a fast path, every other verb through the full CLI.

Agents' hooks run `orch signal` on every turn; importing the full CLI (click, pydantic, the
manifest models) would cost more than the signal itself, so that one verb is recognised here
first. Anything that is not exactly its shape (`--help` included) goes to the full CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `orch` with the process's arguments."""
    args = sys.argv[1:]
    state_dir, rest = _global_options(args)
    if rest and rest[0] == "signal":
        from reconciler.adapters.signal_inbox import run

        if run(rest[1:], state_dir) == 0:
            sys.exit(0)
    from reconciler.cli.main import main as full

    full()


def _global_options(args: list[str]) -> tuple[str | None, list[str]]:
    """`--state-dir DIR` and `--socket NAME` before the verb, and the words after them."""
    state_dir = None
    while args:
        word = args[0]
        if word in ("--state-dir", "--socket") and len(args) > 1:
            if word == "--state-dir":
                state_dir = args[1]
            args = args[2:]
        elif word.startswith(("--state-dir=", "--socket=")):
            if word.startswith("--state-dir="):
                state_dir = word.split("=", 1)[1]
            args = args[1:]
        else:
            break
    return state_dir, args
