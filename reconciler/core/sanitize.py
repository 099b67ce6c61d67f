"""Makes a message safe to paste into an agent: no control byte of it reaches the pane.

`orch send` delivers a message as one bracketed paste (`ESC[200~` … `ESC[201~`, see
`Tmux.paste`). tmux 3.3a writes the paste buffer to the pane verbatim: every C0 byte, DEL and C1
byte goes through (reference/tmux-measurements.md §6). A message containing `ESC[201~` therefore
ends the paste early, and whatever follows it reaches the agent as typed keys — `^U` to clear the
line, then a command, then CR for Enter. With bash readline that executed a command in the
measurements. Other control bytes are keystrokes too (^C interrupts, ^D ends input, BS and ^W edit
what was typed before the paste) and 8-bit C1 `CSI` (U+009B) is ESC[ to an application that
reads C1 controls.

So every control character goes, except newline and tab, which are text: all of C0 but `\\n`
and `\\t` (ESC and NUL included), DEL, and C1 (U+0080–U+009F) — exactly Unicode category Cc.
CR becomes LF (`\\r\\n` and a lone `\\r` both end a line), so a message pasted from a Windows file
keeps its lines and no CR (Enter to an agent without bracketed paste) is ever inside a message.
Lone surrogates (U+D800–U+DFFF, what `surrogateescape` makes of bytes that are not UTF-8) go too:
they are not text, `Tmux.paste` would turn U+DC9B back into the raw byte 0x9B (8-bit CSI) and any
other surrogate could not be encoded at all. Everything else — any script, emoji, combining
marks, bidi controls (they are format characters, not keystrokes) — is kept unchanged.

With no ESC byte and no C1 CSI left, the message cannot contain the paste-end sequence nor any
other escape sequence, so the only bracket end the agent sees is the one tmux adds: an early end
of the paste is impossible, whatever the message.

Why strip rather than refuse: the control bytes in a real message are accidents (a colored
`git diff` piped into `orch send -`, a terminal title sequence in copied output, CRLF line ends),
and the visible text is what the sender meant to deliver. Refusing would make those messages
undeliverable for no gain; stripping delivers the text and cannot deliver a keystroke. The caller
reports `SanitizedMessage.removed` so nothing disappears silently.

This module is pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.api.errors import InvalidInput

#: The largest message `orch send` accepts, in UTF-8 bytes.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

#: Control characters (Unicode Cc) other than \t and \n, and lone surrogates. CR never reaches
#: this pattern: line ends are normalised first.
_REMOVED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_END = re.compile("\r\n?")


@dataclass(frozen=True, slots=True)
class SanitizedMessage:
    """A message ready to paste, and how many characters were removed from it."""

    text: str
    #: Control characters and lone surrogates dropped; a CR turned into (or merged with) a
    #: line feed is a line end, not a removal, and is not counted.
    removed: int


def sanitize(text: str) -> SanitizedMessage:
    """`text` with CRLF and CR turned into LF and every other control character removed."""
    cleaned, removed = _REMOVED.subn("", _LINE_END.sub("\n", text))
    return SanitizedMessage(cleaned, removed)


def clean_message(text: str) -> str:
    """The text of `sanitize(text)`."""
    return sanitize(text).text


def check_size(text: str) -> None:
    """Raise InvalidInput when `text` is larger than MAX_MESSAGE_BYTES in UTF-8."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInput(
            f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (4 MiB)"
        )
