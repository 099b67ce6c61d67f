"""`console.echo` writes the bytes `click.echo` writes: on a pipe or file (escape sequences
removed), on a terminal (kept), through an ASCII-configured stream (UTF-8 instead), on stderr."""

from __future__ import annotations

import io
import sys

import click
import pytest

from reconciler.cli.console import echo

TEXTS = [
    "plain",
    "",
    "ünïcødé 🚀 and\nlines\r\n",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[?25l cursor",
    "a lone \udcff surrogate",
]


class Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def _written(
    write: object, text: str, err: bool, kind: type[io.TextIOWrapper], encoding: str
) -> bytes | str:
    raw = io.BytesIO()
    stream = kind(raw, encoding=encoding, errors="strict", newline="")
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    try:
        write(text, err=err)  # type: ignore[operator]
    except UnicodeEncodeError as failed:
        return f"UnicodeEncodeError at {failed.start}"
    finally:
        sys.stdout, sys.stderr = saved
    return raw.getvalue()


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("err", [False, True])
@pytest.mark.parametrize("kind", [io.TextIOWrapper, Terminal])
@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_echo_writes_what_click_writes(
    text: str, err: bool, kind: type[io.TextIOWrapper], encoding: str
) -> None:
    assert _written(echo, text, err, kind, encoding) == _written(
        click.echo, text, err, kind, encoding
    )
