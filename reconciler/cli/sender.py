"""Who runs `orch send`: the agent whose pane the calling process descends from.

The environment is the agent's to change (`env -u ORCH_AGENT_NAME`, or another agent's name), so
it cannot say who sends. The process tree can: every process an agent starts descends from the
pane process orch started for it, whose pid orch records and whose environment (set by orch,
out of the agent's reach) carries the launch's mark. A process that left the tree (a double
fork and setsid) falls back to what its environment says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from reconciler.adapters.processes import ancestry, started_for
from reconciler.api.status import AgentRecord


def calling_agent(records: Mapping[str, AgentRecord], state_dir: Path) -> str | None:
    """The agent of this installation that runs this process, if any."""
    launches = {r.pid: r for r in records.values() if r.pid}
    for pid in ancestry():
        record = launches.get(pid)
        if record is not None and started_for(pid, record.launch_id):
            return record.name
    inside = os.environ.get("ORCH_AGENT_NAME")
    home = os.environ.get("ORCH_STATE_DIR")
    if inside and home and Path(home).expanduser().resolve() == state_dir:
        return inside
    return None
