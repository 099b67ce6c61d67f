"""Peers that are not Python dependencies of orch, installed on demand into a cache dir.

pm2 comes from npm (`npm install --prefix CACHE/pm2 pm2@7`), circus from PyPI (`pip install
--target CACHE/circus circus`), CACHE being $XDG_CACHE_HOME/orch-bench (default ~/.cache). Each is
installed once and reused; a missing `npm` or a failed install is a reason, shown in the peer's
"skipped" row (failed_row), instead of an error that ends the benchmark.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.report import Figure, failed_figure

PM2_VERSION = "pm2@7"
CIRCUS_VERSION = "circus==0.19.0"


class Unavailable(RuntimeError):
    """A peer could not be installed here; the message says why."""


def failed_row(name: str, group: str, error: BaseException) -> Figure:
    """The row of a peer that did not give its figure: "skipped: reason" when it could not be
    installed (Unavailable), an ERROR row otherwise."""
    row = dataclasses.replace(failed_figure(name, error), group=group)
    if isinstance(error, Unavailable):
        return dataclasses.replace(row, error=f"skipped: {error}")
    return row


def cache_dir() -> Path:
    """Where the peers are installed, outside the repository."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "orch-bench"


def pm2() -> Path:
    """The pm2 command, installed with npm on first use."""
    folder = cache_dir() / "pm2"
    command = folder / "node_modules" / ".bin" / "pm2"
    if command.exists():
        return command
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("npm/node not found: pm2 not installable")
    folder.mkdir(parents=True, exist_ok=True)
    _install([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", PM2_VERSION])
    if not command.exists():
        raise Unavailable(f"npm install {PM2_VERSION} left no {command}")
    return command


def circus() -> Path:
    """The folder circus (and its pyzmq, tornado) is installed in, with pip on first use."""
    folder = cache_dir() / "circus"
    if (folder / "circus" / "circusd.py").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(folder)]
    _install([*pip, CIRCUS_VERSION])
    return folder


def _install(command: list[str]) -> None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"{' '.join(command[:3])} failed: {err}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise Unavailable(f"{' '.join(command[:3])} exited {proc.returncode}: {last}")
