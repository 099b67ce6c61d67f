"""`orch signal`: an agent CLI's hook records one signal in the store and wakes the controller.

Agents' hooks call this on every turn, often while the CLI waits for it, so it is cheap and never
blocks: stdlib only (no pydantic, no click), a payload read with a size and time bound (what is
not read is drained and dropped), a short SQLite timeout, and every failure swallowed (a signal
lost costs a screen-based guess, a hook that fails costs the user a warning in their CLI). It
never creates a state dir and never starts a controller.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from reconciler.adapters.wake import notify
from reconciler.core.signals import EVENT_NAME, compact

#: The table, created by the controller's store and here alike (CREATE … IF NOT EXISTS).
SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL, event TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_signals_agent ON agent_signals (agent, id)
"""
#: Signals kept per agent; older ones are pruned on insert.
KEEP_PER_AGENT = 50
#: The largest payload parsed; a larger one is drained and recorded as `{"truncated": "true"}`.
MAX_PAYLOAD_BYTES = 1 << 20
#: How long reading the payload may take in all.
READ_SECONDS = 2.0
#: How long to wait for the store's write lock before giving the signal up.
LOCK_SECONDS = 2.0
#: An agent name as manifests allow (checked again by the controller against its agents).
AGENT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
DB_NAME = "orch.db"


def read_payload(stream: BinaryIO, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, str]:
    """The kept fields of a JSON payload on `stream`, read within READ_SECONDS and `limit` bytes."""
    data = bytearray()
    deadline = time.monotonic() + READ_SECONDS
    fd = stream.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return {"truncated": "true"}
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if len(data) <= limit:
            data += chunk  # past the limit, the rest is drained so the writer never blocks
    if len(data) > limit:
        return {"truncated": "true"}
    return parse_payload(bytes(data))


def parse_payload(raw: bytes | str) -> dict[str, str]:
    """The kept fields of a JSON payload; `{"invalid": "true"}` when it is not a JSON object."""
    try:
        payload: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return {"invalid": "true"}
    return compact(payload) if isinstance(payload, dict) else {"invalid": "true"}


def record_signal(state_dir: Path, agent: str, event: str, payload: dict[str, str]) -> bool:
    """Store one signal and wake the controller; False when it was not recorded."""
    if not (AGENT_NAME.fullmatch(agent) and EVENT_NAME.fullmatch(event)):
        return False
    db = state_dir / DB_NAME
    if not db.is_file():
        return False  # no installation here: never create one from a hook
    try:
        conn = sqlite3.connect(db, timeout=LOCK_SECONDS, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(LOCK_SECONDS * 1000)}")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO agent_signals (agent, event, payload, created) VALUES (?, ?, ?, ?)",
                (agent, event, json.dumps(payload, sort_keys=True), time.time()),
            )
            conn.execute(
                "DELETE FROM agent_signals WHERE agent = ? AND id <= (SELECT id FROM"
                " agent_signals WHERE agent = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (agent, agent, KEEP_PER_AGENT),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    with contextlib.suppress(OSError):
        notify(state_dir / "controller.wake")
    return True


def run(args: list[str], state_dir: str | None) -> int:
    """`orch signal AGENT EVENT [--json -|TEXT]`: always exit 0 (a hook must not fail its CLI).

    Returns 2 only when the arguments are not that shape, so the caller can hand them to the
    full CLI (which prints usage).
    """
    if len(args) == 2:
        agent, event, source = args[0], args[1], None
    elif len(args) == 4 and args[2] == "--json":
        agent, event, source = args[0], args[1], args[3]
    else:
        return 2
    if agent.startswith("-") or event.startswith("-"):
        return 2
    payload: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        if source == "-":
            payload = read_payload(sys.stdin.buffer)
        elif source is not None:
            raw = source.encode(errors="replace")
            payload = parse_payload(raw) if len(raw) <= MAX_PAYLOAD_BYTES else {"truncated": "true"}
    root = Path(state_dir or os.environ.get("ORCH_STATE_DIR") or "./state").expanduser()
    with contextlib.suppress(OSError):
        record_signal(root.absolute(), agent, event, payload)
    return 0
