"""Figure 8: messages per second — many short messages queued at once, until all are recorded.

Two parts, each in its own sandbox with fake agents (see bench.workload), all Running and idle:

- 50 messages to one agent;
- 100 messages spread over 20 agents (5 each, queued round-robin).

"Queued at once": the messages go into the store the way `orch send` puts them there
(`Store.enqueue`, one transaction each, in a row), then the controller is woken through its wake
FIFO once, as `orch send` does; 50 or 100 CLI processes could not be started at once on 2 cores
(each costs ≈ 0.4 s of start-up, see bench.delivery). t0 = time.monotonic() before the first
enqueue. Every agent's --record file is polled every 5 ms; the time each new message shows up is
noted. The throughput figure is messages / (last recorded - t0); its companion figure is the
gap between consecutive recorded messages of one agent (ms), which says where the time goes.
Every agent must record exactly its messages, in order.
"""

from __future__ import annotations

import itertools
import time

from bench.report import Budget, Figure
from bench.sandbox import sandbox
from bench.workload import RecordLog, agent_document, fake_agent_command, manifest
from reconciler.adapters.deadline import wait_until
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
from reconciler.adapters.wake import notify

#: (agents, messages per agent)
PARTS = ((1, 50), (20, 5))
TIMEOUT = 240.0


def run() -> list[Figure]:
    """Both parts: a throughput figure and a gap figure each."""
    return [figure for agents, each in PARTS for figure in _part(agents, each)]


def _part(agents: int, each: int) -> list[Figure]:
    total = agents * each
    names = [f"inbox-{i}" for i in range(agents)]
    with sandbox() as box:
        logs = {name: RecordLog(box.workdir / f"{name}.jsonl") for name in names}
        path = box.workdir / "agents.yaml"
        documents = [agent_document(n, fake_agent_command(logs[n].path)) for n in names]
        path.write_text(manifest(documents))
        box.orch("apply", "-f", str(path), "--wait", "--timeout", "60s")
        expected = {name: [f"note {i} for {name}" for i in range(each)] for name in names}
        arrivals: dict[str, list[float]] = {name: [] for name in names}
        store = Store(box.state_dir)
        try:
            start = time.monotonic()
            for i in range(each):
                for name in names:
                    store.enqueue(name, "bench", expected[name][i])
            notify(StatePaths(box.state_dir).wake)
            wait_until(
                lambda: _note_arrivals(logs, arrivals) == total,
                timeout=TIMEOUT,
                what=f"{total} messages recorded",
            )
        finally:
            store.close()
    for name in names:
        if logs[name].messages() != expected[name]:
            raise RuntimeError(f"{name} recorded {logs[name].messages()!r}")
    last = max(times[-1] for times in arrivals.values())
    gaps = tuple(
        (later - earlier) * 1000.0
        for times in arrivals.values()
        for earlier, later in itertools.pairwise(times)
    )
    first = sorted(times[0] - start for times in arrivals.values())
    label = f"{total} msgs to {agents} agent{'s' if agents > 1 else ''}"
    return [
        Figure(
            f"{label}: throughput",
            "msg/s",
            (total / (last - start),),
            Budget(None),
            note=f"all {total} recorded {last - start:.2f} s after the first was queued",
        ),
        Figure(
            f"{label}: gap between one agent's messages",
            "ms",
            gaps,
            Budget(None),
            note=f"first message recorded after {first[len(first) // 2] * 1000:.0f} ms (median)",
        ),
    ]


def _note_arrivals(logs: dict[str, RecordLog], arrivals: dict[str, list[float]]) -> int:
    """Note when each agent's newly recorded messages showed up; how many are recorded in all."""
    now = time.monotonic()
    for name, log in logs.items():
        count = log.poll()
        arrivals[name].extend([now] * (count - len(arrivals[name])))
    return sum(len(times) for times in arrivals.values())
