"""The `orch` command: kubectl-like verbs over one installation (a state dir and a tmux socket).

This module is the parser and the dispatch; the verbs live by what they do (`declare`: apply,
diff, delete; `reading`: get, describe, events, logs, usage, top; `messaging`: send, signal;
`playbooks`: run, approve, step done; `operate`: stop, start, restart, answer, attach, controller,
service; `about`: version, schema, completion). The CLI writes desired objects and reads records;
it never edits status behind the controller's back. `main` is the single error boundary: an
`OrchError` is one line on stderr with its exit code, anything else is an internal error, never a
traceback on the console.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

# Every verb module imports only what the read paths and `send` need; each command imports its
# own dependencies (pydantic models, YAML loader, tmux, watchdog, the controller) when it runs.
from reconciler.api.errors import OrchError
from reconciler.cli.installation import installation_options

#: The module under reconciler.cli that defines each verb (in its COMMANDS).
VERBS = {
    **dict.fromkeys(("completion", "version", "schema"), "about"),
    **dict.fromkeys(("apply", "diff", "delete"), "declare"),
    **dict.fromkeys(("send", "signal"), "messaging"),
    **dict.fromkeys(
        ("stop", "start", "restart", "answer", "attach", "controller", "service"), "operate"
    ),
    **dict.fromkeys(("run", "approve", "step"), "playbooks"),
    **dict.fromkeys(("get", "describe", "events", "logs", "usage", "top"), "reading"),
}


class VerbGroup(click.Group):
    """The verbs, each module imported when one of its verbs runs (or `--help` lists them):
    `orch get` need not build the commands of apply, stop or run, nor import what they import."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            # An unknown word loads them all: click suggests a verb from those it knows.
            known = cmd_name in VERBS
            for module in [VERBS[cmd_name]] if known else sorted(set(VERBS.values())):
                for command in importlib.import_module(f"reconciler.cli.{module}").COMMANDS:
                    self.add_command(command)
        return self.commands.get(cmd_name)


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
        click.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; the one place that turns errors into a line on stderr and an exit code."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None, prog_name="orch", standalone_mode=False
        )
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        code = 130
    except click.ClickException as err:
        click.echo(f"orch: error: {err.format_message()}", err=True)
        code = 1
    except OrchError as err:
        click.echo(f"orch: error: {err}", err=True)
        code = err.exit_code
    except BrokenPipeError:
        code = 0
    except Exception as err:  # noqa: BLE001 - the error boundary: no tracebacks on the console
        import traceback  # only on this rare path: it costs every command's start-up

        args = list(argv) if argv is not None else sys.argv[1:]
        where = _log_internal_error(args)
        if "--debug" in args:
            traceback.print_exc()
        hint = f"details in {where}" if where else "run again with --debug for details"
        if isinstance(err, OSError) and err.errno in STORAGE_FAULTS:  # the disk, not a bug
            click.echo(f"orch: error: {err.filename or 'state dir'}: {err.strerror}", err=True)
            code = 3
        else:
            click.echo(f"orch: internal error: {type(err).__name__}: {err} ({hint})", err=True)
            code = 1
    sys.exit(code if isinstance(code, int) else 0)


#: OS errors that say the state dir cannot be written (exit 3, one line): full, read-only, quota.
STORAGE_FAULTS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
#: Internal errors of the CLI are appended here, in the state dir, with their traceback.
CLI_LOG = "cli.log"
#: The log is cut to its newest half past this size.
CLI_LOG_MAX_BYTES = 1_000_000


def _log_internal_error(args: list[str]) -> Path | None:
    """Append the current exception's traceback to the state dir's cli.log (never creating a
    state dir); the file written, or None."""
    state_dir = os.environ.get("ORCH_STATE_DIR") or "./state"
    for i, arg in enumerate(args):
        if arg == "--state-dir" and i + 1 < len(args):
            state_dir = args[i + 1]
        elif arg.startswith("--state-dir="):
            state_dir = arg.split("=", 1)[1]
    import traceback

    from reconciler.adapters.atomic import write_atomic  # only on this rare path

    path = Path(state_dir).expanduser() / CLI_LOG
    if not path.parent.is_dir():
        return None
    try:
        if path.exists() and path.stat().st_size > CLI_LOG_MAX_BYTES:
            write_atomic(path, path.read_bytes()[-CLI_LOG_MAX_BYTES // 2 :])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} orch {' '.join(args)}\n{traceback.format_exc()}\n")
    except OSError:
        return None
    return path
