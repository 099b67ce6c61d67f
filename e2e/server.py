"""The e2e model server as a child process, and questions about what it received."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.orchctl import wait_for

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Request:
    index: int
    t: float
    path: str
    mode: str
    status: int | None
    texts: list[str]
    """The user texts, each cut to 300 chars by the server."""
    hashes: list[str]
    """sha256 of each full user text."""
    unwrapped: list[str]
    """sha256 of each user text without the CLI's own paste wrapper (if it has one)."""


class ModelServer:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.log = root / "modelserver.jsonl"
        self.ctl = root / "ctl"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ModelServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "e2e.modelserver",
                "--port",
                str(self.port),
                "--log",
                str(self.log),
                "--control-dir",
                str(self.ctl),
                "--mode",
                "text",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(self._up, 15, 0.2):
            raise RuntimeError("the model server did not start")
        return self

    def _up(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/_control", timeout=1).read()
            return True
        except OSError:
            return False

    def mode(self, mode: str, retry_after: int | None = None) -> None:
        body: dict[str, Any] = {"mode": mode}
        if retry_after is not None:
            body["retry_after"] = retry_after
        req = urllib.request.Request(
            f"{self.url}/_control", json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()

    def requests(self, after: int = 0) -> list[Request]:
        """Model requests (not /_control, not probes without user text) from index `after` on."""
        if not self.log.exists():
            return []
        out = []
        for i, line in enumerate(self.log.read_text().splitlines()):
            if i < after:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("api") in ("control", "unknown", "?"):
                continue
            out.append(
                Request(
                    i,
                    rec.get("t", 0.0),
                    rec.get("path", ""),
                    rec.get("mode", ""),
                    rec.get("status"),
                    rec.get("user_texts") or [],
                    rec.get("user_text_sha256") or [],
                    rec.get("user_text_sha256_unwrapped") or rec.get("user_text_sha256") or [],
                )
            )
        return out

    def mark(self) -> int:
        """A position in the log: requests(after=mark()) are the ones that come later."""
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0
