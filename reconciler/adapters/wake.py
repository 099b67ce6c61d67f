"""A FIFO in the state dir through which the CLI wakes the controller for an early pass.

The wake-up carries no state: the pass that follows re-reads everything, so a lost byte costs at
most the one-second safety pass. A FIFO rather than a Unix socket because socket paths are limited
to 108 bytes and state dirs can be deep.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path


class WakeChannel:
    """The controller's end: a readable fd that becomes ready when someone calls `notify`."""

    def __init__(self, path: Path) -> None:
        if path.exists() and not stat.S_ISFIFO(path.stat().st_mode):
            path.unlink()
        if not path.exists():
            os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        # Holding a writer open ourselves keeps the FIFO from reporting EOF (and spinning select)
        # between CLI writers.
        self._keepalive = os.open(path, os.O_WRONLY | os.O_NONBLOCK)

    def drain(self) -> None:
        """Consume pending wake-ups."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        """Close both ends."""
        os.close(self._keepalive)
        os.close(self.fd)


def notify(path: Path) -> None:
    """Wake the controller if one listens; do nothing otherwise."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as err:
        if err.errno in (errno.ENXIO, errno.ENOENT):
            return
        raise
    try:
        with contextlib.suppress(BlockingIOError):
            os.write(fd, b"!")
    finally:
        os.close(fd)
