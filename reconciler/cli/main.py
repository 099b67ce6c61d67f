"""The `orch` command: kubectl-like verbs over one installation (a state dir and a tmux socket).

This module is the parser and the dispatch; the verbs live by what they do (`declare`: apply,
diff, delete; `reading`: get, describe, events, logs, usage, top; `messaging`: send, signal;
`playbooks`: run, approve, step done; `operate`: stop, start, restart, answer, attach, controller,
service; `about`: version, schema, completion). The CLI writes desired objects and reads records;
it never edits status behind the controller's back. `main` runs it inside the one error boundary
(`boundary.guarded`, which `entry`'s fast path shares): an `OrchError` is one line on stderr with
its exit code, anything else is an internal error, never a traceback on the console.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

# Every verb module imports only what the read paths and `send` need; each command imports its
# own dependencies (pydantic models, YAML loader, tmux, watchdog, the controller) when it runs.
from reconciler.cli.boundary import guarded
from reconciler.cli.console import echo
from reconciler.cli.options import installation_options

#: Each verb: the module under reconciler.cli that defines it (in its COMMANDS), and the first
#: paragraph of its help, which `orch --help` lists without importing the module (the unit test
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


class VerbGroup(click.Group):
    """The verbs, each module imported when one of its verbs runs: `orch get` need not build the
    commands of apply, stop or run, nor import what they import; `--help` imports none."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            # An unknown word loads them all: click suggests a verb from those it knows.
            known = cmd_name in VERBS
            modules = [VERBS[cmd_name][0]] if known else sorted({m for m, _ in VERBS.values()})
            for module in modules:
                for command in importlib.import_module(f"reconciler.cli.{module}").COMMANDS:
                    self.add_command(command)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The verb listing, formatted by click itself from each verb's summary in VERBS."""
        listed = [click.Command(verb, help=summary) for verb, (_, summary) in VERBS.items()]
        click.Group(commands=listed).format_commands(ctx, formatter)


@click.group(
    cls=VerbGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
@installation_options
@click.option(
    "--debug", is_flag=True, expose_value=False, help="print the traceback of an internal error"
)
@click.version_option(package_name="orch", prog_name="orch")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """orch: keeps a team of CLI coding agents running in tmux, declared in YAML manifests."""
    if ctx.invoked_subcommand is None:
        echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; errors become a line on stderr and an exit code in `boundary.guarded`."""
    args = list(argv) if argv is not None else sys.argv[1:]
    sys.exit(guarded(lambda: _run_click(args), args))


def _run_click(args: list[str]) -> object:
    """The click CLI on `args`, click's own errors and exits turned into an exit code."""
    try:
        return cli.main(args=args, prog_name="orch", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        return 130
    except click.ClickException as err:
        echo(f"orch: error: {err.format_message()}", err=True)
        return 1
