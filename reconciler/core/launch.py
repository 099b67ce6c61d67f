"""What a launch of an agent depends on, as one digest: a change to any of it means a new process.

The digest is stored in the agent's record at each launch; a pass compares it with the desired
agent's (`DesiredAgent.launch_hash`, computed once per parsed spec rather than on every pass: it
serializes the whole spec).
"""

from __future__ import annotations

import hashlib
import json

from reconciler.api.manifest import Agent


def launch_hash(agent: Agent) -> str:
    """A digest of what a launch depends on: a change to any of it means a new process."""
    spec = agent.spec
    basis = {
        "command": spec.command,
        "workdir": spec.workdir,
        "env": agent.model_dump(mode="json", by_alias=True)["spec"]["env"],
    }
    if spec.signals != "auto":
        basis["signals"] = spec.signals  # only when set: the default leaves old hashes as they were
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]
