"""Lines on standard output and standard error without importing click (about 30 ms of start-up).

`echo` writes text exactly as `click.echo` does, so a verb prints the same bytes whether it runs
through the click CLI or on `entry`'s fast path: the line and its newline, escape sequences
(`ESC [ ... letter`) removed when the stream is not a terminal, written through a UTF-8 stream
(errors replaced) where the stream's own encoding is ASCII, then flushed. The unit test
tests/unit/test_console.py holds it to click's output.
"""

from __future__ import annotations

import codecs
import re
import sys

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

#: click's ANSI escape sequence pattern (click._compat._ansi_re).
ANSI_SEQUENCE = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")


def echo(text: str, err: bool = False) -> None:
    """Write `text` and a newline to stdout (stderr with `err`), as `click.echo(text)` would."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # no stream attached: click writes nothing either
        return
    out = text + "\n"
    binary: BinaryIO | None = getattr(stream, "buffer", None)
    if binary is not None and _ascii(stream):  # click writes through a UTF-8 wrapper of its own
        if not _isatty(binary):
            out = ANSI_SEQUENCE.sub("", out)
        stream.flush()
        binary.write(out.encode("utf-8", "replace"))
        binary.flush()
        return
    if not _isatty(stream):
        out = ANSI_SEQUENCE.sub("", out)
    stream.write(out)
    stream.flush()


def _isatty(stream: TextIO | BinaryIO) -> bool:
    try:
        return stream.isatty()
    except Exception:  # noqa: BLE001 - click treats any failure as "not a terminal"
        return False


def _ascii(stream: TextIO) -> bool:
    """A stream whose encoding is ASCII (or unset), which click replaces by a UTF-8 one."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
    except LookupError:
        return False
