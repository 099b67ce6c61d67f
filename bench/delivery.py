"""Figure 7: `orch send` -> the whole message recorded by the agent, for 1 KB, 100 KB and 1 MB.

One fake agent (see bench.workload), Running and idle. Each round waits until no message is
queued for it any more (the previous one is confirmed delivered), then runs `orch send AGENT -`
as a subprocess with a multi-line message (ASCII lines of 40-100 characters, unique per round) on
its stdin. t0 = time.monotonic() right before the subprocess starts; the figure is the moment the
agent's --record file holds the message as a complete JSON line (polled every 5 ms, read
incrementally) minus t0. The recorded text must equal the text sent, byte for byte.

So the figure covers the CLI (start-up, reading stdin, sanitizing, queuing, waking the
controller), the controller's paste, the settle pause before Enter (0.15 s + 1 s per MiB, see
reconciler.core.delivery) and the Enter. The CLI's own run time is in each figure's note.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Budget, Figure
from bench.sandbox import Sandbox, sandbox
from bench.workload import RecordLog, agent_document, fake_agent_command, manifest
from reconciler.adapters.deadline import DeadlinePassed, wait_until
from reconciler.adapters.store import Store

AGENT = "receiver"
#: (label, bytes, rounds, budget in ms)
SIZES: tuple[tuple[str, int, int, float | None], ...] = (
    ("1 KB", 1_000, 5, None),
    ("100 KB", 100_000, 5, 1000.0),
    ("1 MB", 1_000_000, 3, None),
)


def run() -> list[Figure]:
    """Send each size its number of times; return one figure per size (ms)."""
    rng = random.Random("bench-delivery")
    with sandbox() as box:
        log = RecordLog(box.workdir / "record.jsonl")
        path = box.workdir / "agent.yaml"
        path.write_text(manifest([agent_document(AGENT, fake_agent_command(log.path))]))
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "60s")
        store = Store(box.state_dir)
        try:
            figures = []
            for label, size, rounds, limit in SIZES:
                results = [
                    _send_once(box, store, log, message_text(rng, size, f"{label} #{n}"))
                    for n in range(rounds)
                ]
                total = tuple(r[0] for r in results)
                cli = statistics.median(r[1] for r in results)
                budget = Budget(limit) if limit is not None else Budget(None)
                figures.append(
                    Figure(
                        f"orch send {label} -> recorded by agent",
                        "ms",
                        total,
                        budget,
                        note=f"median orch send CLI run time {cli:.0f} ms",
                    )
                )
        finally:
            store.close()
    return figures


def message_text(rng: random.Random, size: int, tag: str) -> str:
    """A multi-line ASCII message of exactly `size` bytes, starting with `tag`."""
    letters = "abcdefghijklmnopqrstuvwxyz     ,.;:-()0123456789"
    lines = [f"bench message {tag}"]
    length = len(lines[0])
    while length < size:
        line = "".join(rng.choices(letters, k=rng.randint(40, 100))).strip() or "x"
        lines.append(line)
        length += len(line) + 1
    text = "\n".join(lines)[:size]
    return text.rstrip() + "." * (size - len(text.rstrip()))


def _send_once(box: Sandbox, store: Store, log: RecordLog, text: str) -> tuple[float, float]:
    """Send `text` once the agent's queue is empty; (ms until recorded, ms the CLI ran)."""
    wait_until(lambda: AGENT not in store.pending_messages(), timeout=30, what="an empty queue")
    recorded = log.poll()
    errors = box.root / "send.err"
    with errors.open("wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "send", AGENT, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=box.env,
            cwd=box.workdir,
        )
        try:
            assert proc.stdin is not None
            proc.stdin.write(text.encode())
            proc.stdin.close()
            cli_done = 0.0

            def arrived() -> float:
                nonlocal cli_done
                if not cli_done and proc.poll() is not None:
                    cli_done = time.monotonic()
                    if proc.returncode != 0:
                        raise RuntimeError(f"orch send exited {proc.returncode}: {_text(errors)}")
                return time.monotonic() if log.poll() > recorded else 0.0

            try:
                done = wait_until(arrived, timeout=30, what="the message recorded")
            except DeadlinePassed:
                raise DeadlinePassed(f"message of {len(text)} bytes not recorded in 30 s") from None
            proc.wait(timeout=30)
            cli_done = cli_done or time.monotonic()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if log.messages()[recorded:] != [text]:
        raise RuntimeError(f"the agent recorded something else than the {len(text)} bytes sent")
    return (done - start) * 1000.0, (cli_done - start) * 1000.0


def _text(path: Path) -> str:
    return path.read_text(errors="replace").strip()
