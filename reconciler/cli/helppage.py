"""The page `orch --help` prints (and `orch -h`, and `orch` alone), laid out without click.

`--help` is the first thing a newcomer or an agent runs, and importing click alone costs 35-50 ms
of its 80 ms budget. So `entry` prints this page itself: the page click's group prints, with the
same usage line, description, options and verb listing, laid out by click's rules (width from the
terminal, clamped to 50..78; definition lists; short help cut at a word with "..."). The click
group takes its description, option help and verb summaries from here, so each text exists once,
and tests/unit/test_help_page.py holds this page to click's byte for byte at every width.
"""

from __future__ import annotations

import os
import sys
import textwrap

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from collections.abc import Sequence

#: The group's usage after the program name, as click writes it for a group that runs alone.
USAGE = "[OPTIONS] [COMMAND] [ARGS]..."
DESCRIPTION = "orch: keeps a team of CLI coding agents running in tmux, declared in YAML manifests."
SOCKET_HELP = "tmux socket name (env ORCH_TMUX_SOCKET, default orch)"
STATE_DIR_HELP = "state dir (env ORCH_STATE_DIR, default ./state)"
DEBUG_HELP = "print the traceback of an internal error"
#: The group's options in click's order: its own, then click's --version and --help.
OPTIONS = (
    ("--socket NAME", SOCKET_HELP),
    ("--state-dir DIR", STATE_DIR_HELP),
    ("--debug", DEBUG_HELP),
    ("--version", "Show the version and exit."),
    ("-h, --help", "Show this message and exit."),
)
#: click's layout: the widest page, the narrowest, the widest first column of a list.
MAX_WIDTH = 78
MIN_WIDTH = 50
FIRST_COLUMN_MAX = 30
INDENT = "  "

#: Each verb: the module under reconciler.cli that defines it (in its COMMANDS), and the first
#: paragraph of its help, which the page lists without importing the module (the unit test
#: tests/unit/test_verbs.py holds both to the commands themselves).
VERBS: dict[str, tuple[str, str]] = {
    "answer": (
        "operate",
        "Answer the prompt AGENT waits on now: TEXT then Enter, or --keys K [K...].",
    ),
    "apply": (
        "declare",
        "Record FILE's objects as the desired state; remove those it no longer declares.",
    ),
    "approve": ("playbooks", "Pass the approval gate RUN waits at (or STEP's)."),
    "attach": ("operate", "Attach this terminal to the agent's tmux session (detach with C-b d)."),
    "completion": (
        "about",
        "Print the completion script for SHELL, names of agents, runs and playbooks included.",
    ),
    "controller": (
        "operate",
        (
            "Run the control loop in the foreground (what the systemd unit starts); see also "
            "`controller status` and `controller stop`."
        ),
    ),
    "delete": (
        "declare",
        (
            "Stop and forget agents, cancel runs, or remove a file's objects (`delete agent a b`, "
            "`delete agent/a run/r-1`, `delete -f team.yaml`)."
        ),
    ),
    "describe": (
        "reading",
        "Show an object's spec, status, conditions, recent transitions and events.",
    ),
    "diff": (
        "declare",
        "Show what `apply` would change, change nothing; exit 0 when nothing, 1 when something.",
    ),
    "events": ("reading", "The event log, oldest first."),
    "get": (
        "reading",
        (
            "List agents, playbooks, runs or notifiers (`get agents -l role=executor`, `get agent "
            "NAME -o yaml`, `get agents -o jsonpath='{.items[*].metadata.name}'`)."
        ),
    ),
    "logs": (
        "reading",
        "Everything the agent's pane printed, as the screen showed it, across restarts.",
    ),
    "restart": (
        "operate",
        "Stop and start an agent now: a manual restart, not a crash (the backoff is reset).",
    ),
    "run": ("playbooks", "Start a run of PLAYBOOK; prints run/NAME created."),
    "schema": ("about", "Print the JSON Schema of manifests, for editors."),
    "send": (
        "messaging",
        "Queue TEXT (or standard input, with - or no TEXT) for AGENT; delivered whole, then Enter.",
    ),
    "service": (
        "operate",
        "The systemd user unit that keeps this installation's controller running.",
    ),
    "signal": (
        "messaging",
        "Record a signal an agent CLI's own hook sends (turn started or ended, a question, …).",
    ),
    "start": (
        "operate",
        "Start an agent that `orch stop` stopped (or that exited under its restartPolicy).",
    ),
    "step": ("playbooks", "Signals from agents about their playbook steps."),
    "stop": (
        "operate",
        "Stop an agent and keep it Stopped (across controller restarts and applies) until `start`.",
    ),
    "top": (
        "reading",
        (
            "A live full-screen view of agents and runs (keys: answer, approve, restart, stop, "
            "start, attach, logs, describe; q quits)."
        ),
    ),
    "usage": (
        "reading",
        "Tokens and cost the agents' CLIs recorded, summed per agent, account, run or step.",
    ),
    "version": ("about", "Versions of orch, tmux and Python."),
}


def page(width: int | None = None) -> str:
    """The help page at `width` columns (the terminal's, clamped as click clamps it)."""
    width = width if width is not None else terminal_width()
    usage = "Usage: orch "
    lines = [
        _wrap(USAGE, width, usage, " " * len(usage)),
        "",
        _wrap(DESCRIPTION, width, INDENT, INDENT),
        "",
        "Options:",
        *_definitions(OPTIONS, width),
        "",
        "Commands:",
    ]
    limit = width - 6 - max(len(verb) for verb in VERBS)
    commands = [(verb, short_help(summary, limit)) for verb, (_, summary) in sorted(VERBS.items())]
    lines += _definitions(commands, width)
    return "\n".join(lines)


def terminal_width() -> int:
    """click's page width: the terminal's columns (COLUMNS first, as shutil reads them, else
    standard output's terminal, else 80) less 2, within 50..78."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):
            columns = 0
        columns = columns or 80
    return max(min(columns, MAX_WIDTH + 2) - 2, MIN_WIDTH)


def short_help(text: str, limit: int) -> str:
    """A verb's summary as click lists it: its first sentence, cut to `limit` at a word."""
    words = text.partition("\n\n")[0].split()
    for i, word in enumerate(words):
        if word.endswith(".") and (i == len(words) - 1 or not words[i + 1][0].islower()):
            words = words[: i + 1]
            break
    joined = " ".join(words)
    if len(joined) <= limit:
        return joined
    if limit < len("..."):
        return "..."
    return textwrap.shorten(joined, limit, placeholder="...", break_on_hyphens=False)


def _definitions(rows: Sequence[tuple[str, str]], width: int) -> list[str]:
    """click's definition list, indented once: terms in a column, texts wrapped beside them."""
    column = min(max(len(term) for term, _ in rows), FIRST_COLUMN_MAX) + 2
    beside = " " * (column + len(INDENT))
    lines = []
    for term, text in rows:
        wrapped = _wrap(text, max(width - column - 2, 10), "", "").splitlines() or [""]
        if len(term) <= column - 2:
            lines.append(f"{INDENT}{term:<{column}}{wrapped[0]}")
        else:
            lines += [f"{INDENT}{term}", f"{beside}{wrapped[0]}"]
        lines += [f"{beside}{line}" for line in wrapped[1:]]
    return lines


def _wrap(text: str, width: int, first: str, rest: str) -> str:
    return textwrap.fill(
        text, width, initial_indent=first, subsequent_indent=rest, replace_whitespace=False
    )
