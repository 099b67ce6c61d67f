"""The global options of every click command, `--state-dir` and `--socket` (accepted before or
after the verb), and the installation they choose."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.cli.helppage import SOCKET_HELP, STATE_DIR_HELP

if TYPE_CHECKING:
    from reconciler.cli.installation import Installation

F = TypeVar("F", bound=Callable[..., Any])


def _set_state_dir(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["state_dir"] = value


def _set_socket(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["socket"] = value


def installation_options(command: F) -> F:
    """`--state-dir` and `--socket`, accepted before or after the command name."""
    command = click.option(
        "--state-dir",
        metavar="DIR",
        expose_value=False,
        callback=_set_state_dir,
        help=STATE_DIR_HELP,
    )(command)
    return click.option(
        "--socket",
        metavar="NAME",
        expose_value=False,
        callback=_set_socket,
        help=SOCKET_HELP,
    )(command)


def installation() -> Installation:
    """The installation the click command's `--state-dir` and `--socket` choose."""
    from reconciler.cli.installation import open_installation  # not for `orch --help`

    options = click.get_current_context().find_root().ensure_object(dict)
    return open_installation(options.get("state_dir"), options.get("socket"))
