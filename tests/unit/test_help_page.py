"""`orch --help` is printed without click: the page must stay the one click's group prints."""

from __future__ import annotations

import shutil

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import entry, helppage
from reconciler.cli.main import cli
from reconciler.cli.main import main as click_main


@pytest.mark.parametrize("width", range(helppage.MIN_WIDTH, helppage.MAX_WIDTH + 1))
def test_the_page_is_clicks_at_every_width_click_chooses(width: int) -> None:
    clicks = CliRunner().invoke(cli, ["--help"], prog_name="orch", terminal_width=width)
    assert clicks.exit_code == 0
    assert helppage.page(width) + "\n" == clicks.output


@pytest.mark.parametrize("columns", ["1", "49", "52", "60", "79", "80", "81", "200", "x", "-3"])
def test_the_width_is_clicks_for_every_terminal(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert helppage.terminal_width() == click.HelpFormatter().width
    assert helppage.terminal_width() == max(min(shutil.get_terminal_size().columns, 80) - 2, 50)


@pytest.mark.parametrize("args", [["--help"], ["-h"], [], ["--state-dir", "s", "--help"]])
def test_entry_prints_what_the_click_cli_prints(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "64")
    outputs = []
    for run in (entry.main, lambda: click_main(args)):
        monkeypatch.setattr("sys.argv", ["orch", *args])
        with pytest.raises(SystemExit) as done:
            run()
        outputs.append((done.value.code, capsys.readouterr()))
    assert outputs[0] == outputs[1]
    assert outputs[0][1].out.startswith("Usage: orch ")


def test_short_help_cuts_at_a_word_as_click_does() -> None:
    text = "Stop and start an agent now: a manual restart, not a crash (the backoff is reset)."
    for limit in range(1, 120):
        listed = click.Command("x", help=text).get_short_help_str(limit)
        assert helppage.short_help(text, limit) == listed, limit
