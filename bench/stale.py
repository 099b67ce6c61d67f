"""Figure 5: stale verdict delay — `stale.after` elapsed since the last output -> store says Stale.

One fake agent (see bench.workload) with `stale: {after: 2s, action: none}`. Each round first
waits a random 0-1 s (a round starts right after the store showed Stale, i.e. right after a
controller pass: without the pause every output would come at the same phase of the 1 s
safety-pass cycle and the figure would be the worst case every time), then types
`say stale-mark-N` + Enter into its pane (tmux send-keys on the sandbox's socket): the agent
records the line in its --record file and prints it, and from then on its screen does not change.
The moment of that last output is the record file's mtime (written just before the agent prints;
the kernel's coarse clock, a few ms at worst), bounded below by the time the keys were sent. The
figure is the moment the store first shows the agent Stale in a transition made after that
output (polled every 5 ms, read straight from the store) minus (last output + stale.after).

Two informational companions explain it: when the controller dated the last change
(`screen_changed_at` - last output), and when the controller's own pass decided Stale (`since`
of the Stale record - (last output + after)). Reference: the 1 s safety-pass interval.
"""

from __future__ import annotations

import random
import time

from bench.report import Budget, Figure
from bench.sandbox import Sandbox, StoreReader, sandbox
from bench.workload import RecordLog, agent_document, fake_agent_command, manifest
from reconciler.adapters.deadline import wait_until
from reconciler.api.status import AgentState
from reconciler.controller.loop import RESYNC_SECONDS

AGENT = "quiet"
AFTER_SECONDS = 2.0
ROUNDS = 8
REFERENCE = Budget(None, text="ref: 1 s safety pass")


def run(rounds: int = ROUNDS) -> list[Figure]:
    """Let the agent go quiet `rounds` times; return the three delay figures in ms."""
    with sandbox() as box:
        log = RecordLog(box.workdir / "record.jsonl")
        path = box.workdir / "agent.yaml"
        stale = {"stale": {"after": f"{AFTER_SECONDS:g}s", "action": "none"}}
        path.write_text(
            manifest([agent_document(AGENT, fake_agent_command(log.path), None, stale)])
        )
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "60s")
        reader = StoreReader(box.state_dir)
        rng = random.Random("bench-stale")
        try:
            rounds_ms = [_quiet_once(box, reader, log, n, rng) for n in range(rounds)]
        finally:
            reader.close()
    seen, dated, decided = zip(*rounds_ms, strict=True)
    after = f"stale.after {AFTER_SECONDS:g} s"
    return [
        Figure(
            f"stale verdict delay ({after})",
            "ms",
            seen,
            REFERENCE,
            note="(last output + stale.after) -> the store first shows Stale",
        ),
        Figure(
            "stale: last output -> change dated by controller",
            "ms",
            dated,
            REFERENCE,
            note="record.screen_changed_at - last output (the stale clock starts there)",
        ),
        Figure(
            "stale: controller's Stale pass - (output + after)",
            "ms",
            decided,
            Budget(None),
            note="record.since of the Stale transition - (last output + stale.after)",
        ),
    ]


def _quiet_once(
    box: Sandbox, reader: StoreReader, log: RecordLog, index: int, rng: random.Random
) -> tuple[float, float, float]:
    """Make the agent print once, then wait for Stale; (seen, dated, decided) delays in ms."""
    target = f"={AGENT}:"
    time.sleep(rng.uniform(0.0, RESYNC_SECONDS))
    sent = time.time()
    box.tmux(
        *("send-keys", "-t", target, "-l", "--", f"say stale-mark-{index}", ";"),
        *("send-keys", "-t", target, "Enter"),
    )
    wait_until(lambda: log.poll() > index, what=f"line {index} recorded")
    printed = max(log.modified(), sent)

    def stale_now() -> float:
        record = reader.record(AGENT)
        if record is None or record.state is not AgentState.STALE or record.since <= printed:
            return 0.0
        return time.time()

    seen = wait_until(stale_now, timeout=AFTER_SECONDS + 10, what="Stale after the last output")
    record = reader.record(AGENT)
    if record is None or record.screen_changed_at is None:
        raise RuntimeError("a Stale record without screen_changed_at")
    due = printed + AFTER_SECONDS
    return (
        (seen - due) * 1000.0,
        (record.screen_changed_at - printed) * 1000.0,
        (record.since - due) * 1000.0,
    )
