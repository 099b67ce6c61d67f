"""The `orch` executable: `orch signal`, the help page and the plain shapes of the hot verbs on a
fast path, everything else through the full click CLI.

Agents' hooks run `orch signal` on every turn, agents call `orch send`, and users and scripts
poll `orch get agents` and `orch describe agent`: importing click (about 30 ms) and every verb
module would cost more than the command itself. So the plain shapes of those verbs are
recognised here first, and each runs the very function its click command calls, inside the same
error boundary, so both routes print the same bytes and exit with the same code:

    orch [--state-dir DIR] [--socket NAME] get KIND [NAME]        (KIND naming agents)
    orch [--state-dir DIR] [--socket NAME] describe KIND NAME     (KIND naming agents)
    orch [--state-dir DIR] [--socket NAME] send AGENT TEXT

`orch`, `orch --help` and `orch -h` print `helppage.page()`, the page click would print.
Any other shape (a word starting with `-` after the verb, `--help` included, another number of
words, another kind, shell completion) goes to the full CLI.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from reconciler.cli.installation import Installation

#: The variable click's shell completion sets: such a call is the full CLI's to answer.
COMPLETION_VARIABLE = "_ORCH_COMPLETE"


def main() -> None:
    """Run `orch` with the process's arguments (`python -m reconciler`, and tests, in-process)."""
    code = fast_path(sys.argv[1:])
    if code is None:
        _full_cli()
    sys.exit(code)


def script() -> None:
    """The installed `orch` script: `main`, as a short-lived process.

    On a fast path the garbage collector stays off (its passes over the freshly imported modules
    cost about 5 ms) and the process ends with `os._exit` once its output is flushed: tearing the
    interpreter down costs about 6 ms more, and nothing a fast path opens needs it (the store has
    committed, the kernel closes the files, no atexit handler is registered).
    """
    gc.disable()
    code = fast_path(sys.argv[1:])
    if code is None:
        gc.enable()
        _full_cli()
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would cost the fast path its import (about 5 ms)
            stream.flush()
        except (OSError, ValueError):  # a reader gone: as `guarded` treats a broken pipe
            pass
    os._exit(code or 0)


def fast_path(args: list[str]) -> int | None:
    """Run `orch ARGS` if it has a fast path; its exit code, or None for the click CLI."""
    state_dir, socket, rest = _global_options(args)
    if rest and rest[0] == "signal":
        from reconciler.adapters.signal_inbox import run

        if run(rest[1:], state_dir) == 0:
            return 0
    completing = COMPLETION_VARIABLE in os.environ
    if not completing and rest in ([], ["--help"], ["-h"]):
        from reconciler.cli.console import echo
        from reconciler.cli.helppage import page

        echo(page())
        return 0
    command = None if completing else plain_command(rest)
    if command is None:
        return None
    from reconciler.cli.boundary import guarded
    from reconciler.cli.installation import open_installation

    return guarded(lambda: command(open_installation(state_dir, socket)), args)


def _full_cli() -> None:
    from reconciler.cli.main import main as full

    full()


def plain_command(words: list[str]) -> Callable[[Installation], None] | None:
    """The function the click command of `words` would call, for a plain shape; else None."""
    if not words or any(word.startswith("-") for word in words):
        return None
    verb, operands = words[0], words[1:]
    if verb == "send" and len(operands) == 2:
        from reconciler.cli.sending import send_message

        agent, text = operands
        return lambda inst: send_message(inst, agent, text)
    if verb == "get" and len(operands) in (1, 2) and _names_agents(operands[0]):
        from reconciler.cli.showing import get_objects

        kind, name = operands[0], (operands[1] if len(operands) == 2 else None)
        return lambda inst: get_objects(inst, kind, name)
    if verb == "describe" and len(operands) == 2 and _names_agents(operands[0]):
        from reconciler.cli.showing import describe_object

        kind, name = operands
        return lambda inst: describe_object(inst, kind, name)
    return None


def _names_agents(word: str) -> bool:
    from reconciler.cli.arguments import KINDS

    return KINDS.get(word.lower()) == "Agent"


def _global_options(args: list[str]) -> tuple[str | None, str | None, list[str]]:
    """`--state-dir DIR` and `--socket NAME` before the verb, and the words after them."""
    state_dir = socket = None
    while args:
        word = args[0]
        if word in ("--state-dir", "--socket") and len(args) > 1:
            if word == "--state-dir":
                state_dir = args[1]
            else:
                socket = args[1]
            args = args[2:]
        elif word.startswith(("--state-dir=", "--socket=")):
            if word.startswith("--state-dir="):
                state_dir = word.split("=", 1)[1]
            else:
                socket = word.split("=", 1)[1]
            args = args[1:]
        else:
            break
    return state_dir, socket, args
