"""The lazily loaded CLI's verb table names every command of every verb module, and only those,
with the help `orch --help` lists for each: what click derives from the command itself."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from reconciler.cli.helppage import VERBS
from reconciler.cli.main import cli


def _commands() -> dict[str, tuple[str, click.Command]]:
    return {
        command.name: (module, command)
        for module in {module for module, _ in VERBS.values()}
        for command in importlib.import_module(f"reconciler.cli.{module}").COMMANDS
        if command.name is not None
    }


def test_every_verb_is_listed_with_its_module() -> None:
    assert {name: module for name, (module, _) in _commands().items()} == {
        verb: module for verb, (module, _) in VERBS.items()
    }


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_each_verb_summary_is_the_short_help_click_derives_at_every_width(verb: str) -> None:
    command = _commands()[verb][1]
    listed = click.Command(verb, help=VERBS[verb][1])
    assert not command.hidden and not command.deprecated
    for limit in range(1, 200):
        assert listed.get_short_help_str(limit) == command.get_short_help_str(limit), limit


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_lists_the_verbs_as_click_lists_the_commands(width: int) -> None:
    """`orch --help` from the table is byte for byte the help of a group holding every command."""
    group = click.Group(
        name=cli.name,
        commands=[command for _, command in _commands().values()],
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
        invoke_without_command=True,
    )
    runner = CliRunner()
    ours = runner.invoke(cli, ["--help"], prog_name="orch", terminal_width=width)
    derived = runner.invoke(group, ["--help"], prog_name="orch", terminal_width=width)
    assert ours.exit_code == derived.exit_code == 0
    assert ours.output == derived.output
    assert "Commands:" in ours.output and "send " in ours.output
