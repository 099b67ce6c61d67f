"""The pane-log writer that `tmux pipe-pane` runs: `python -m reconciler.adapters.logwriter`.

Its arguments are PATH MAX KEEP. Copies its stdin (the pane's output) to PATH until end of file,
rotating PATH when it would pass MAX bytes and keeping KEEP rotated files (see
reconciler.adapters.agentlog, which builds this command line with `pipe_command` and holds the
logic). Standard library only, so it starts fast and needs
nothing from the controller's environment but this package on its path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.adapters.agentlog import copy_to_log, writer_pid_path


def main(argv: Sequence[str] | None = None) -> None:
    """Parse PATH MAX KEEP and copy stdin to the rotating log."""
    parser = argparse.ArgumentParser(prog="python -m reconciler.adapters.logwriter")
    parser.add_argument("path", type=Path)
    parser.add_argument("max_bytes", type=int)
    parser.add_argument("keep", type=int)
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):  # a full disk must not keep the log from being written
        writer_pid_path(args.path).write_text(f"{os.getpid()}\n")
    copy_to_log(sys.stdin.fileno(), args.path, args.max_bytes, args.keep)


if __name__ == "__main__":
    main()
