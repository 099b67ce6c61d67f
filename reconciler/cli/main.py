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
from reconciler.cli.helppage import DEBUG_HELP, DESCRIPTION, VERBS
from reconciler.cli.options import installation_options


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
    help=DESCRIPTION,
)
@installation_options
@click.option("--debug", is_flag=True, expose_value=False, help=DEBUG_HELP)
@click.version_option(package_name="orch", prog_name="orch")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """The group; its help is helppage.DESCRIPTION, whose page `entry` prints without click."""
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
