"""The control loop at team sizes past a thousand agents: its wait for agent deaths works with
descriptor numbers beyond select()'s 1024 (a pidfd per agent gets there)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from reconciler.adapters.wake import WakeChannel
from reconciler.controller.loop import Controller


def test_agent_deaths_are_seen_with_descriptors_past_1024(tmp_path: Path) -> None:
    controller = Controller(tmp_path / "state", f"orch-test-{uuid.uuid4().hex[:10]}")
    channel = WakeChannel(controller.paths.wake)
    agent = subprocess.Popen(["sleep", "30"])
    # every descriptor up to 1100 taken, as a big team's pidfds do: the next one is past 1024
    # (filled last, since other work in this process may close low descriptors meanwhile)
    held = [os.open(os.devnull, os.O_RDONLY)]
    while held[-1] < 1100:
        held.append(os.open(os.devnull, os.O_RDONLY))
    try:
        assert controller._wait({agent.pid: "a"}, channel, 0.0) == set()
        assert max(controller._pidfds.values()) > 1024
        agent.kill()
        agent.wait()
        assert controller._wait({agent.pid: "a"}, channel, 10.0) == {agent.pid}
    finally:
        agent.kill()
        channel.close()
        for part in (controller.runner, controller.guards, controller.stopper, controller.store):
            part.close()
        for fd in [*held, *controller._pidfds.values()]:
            os.close(fd)
