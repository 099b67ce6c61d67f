"""Secret environment values read from files (`env: {KEY: {valueFrom: {file: PATH}}}`).

Read by the controller at each launch, so the value is in no manifest, store, event or log, and
handed to the pane only through its private env file (see Tmux.start).
"""

from __future__ import annotations

import os

from reconciler.api.errors import InvalidInput
from reconciler.api.limits import MAX_TEXT


def read_secret(path: str) -> str:
    """The value in file `path`, without one trailing newline; InvalidInput naming the file (never
    its content) when it cannot be read, is too long or holds a NUL byte."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            data = file.read(MAX_TEXT * 4 + 1)
    except OSError as error:
        raise InvalidInput(f"valueFrom.file {path}: {error.strerror or error}") from None
    text = data.decode(errors="surrogateescape")
    if len(data) > MAX_TEXT * 4 or len(text) > MAX_TEXT:
        raise InvalidInput(f"valueFrom.file {path}: longer than {MAX_TEXT} characters")
    if "\0" in text:
        raise InvalidInput(f"valueFrom.file {path}: holds a NUL byte")
    return text.removesuffix("\n")
