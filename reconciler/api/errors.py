"""The errors users see: each carries the exit code the contract gives it.

The CLI prints an `OrchError` as one line on stderr and exits with its code; anything else is a bug
and is reported as an internal error.
"""

from __future__ import annotations


class OrchError(Exception):
    """An error meant for the user: one line, one exit code."""

    exit_code = 1


class InvalidInput(OrchError):
    """The user's input (flags, names, manifests, messages) is wrong; nothing was changed."""

    exit_code = 1


class ManifestError(InvalidInput):
    """A manifest that does not parse or validate, located at file:line and a dotted field path."""

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class NotFound(OrchError):
    """The named object does not exist."""

    exit_code = 2


class Unavailable(OrchError):
    """The controller or tmux cannot be reached or started."""

    exit_code = 3
