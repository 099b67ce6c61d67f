"""The agents the benchmarks run: manifests of `sleep` agents, some recording their start times.

A recording agent's command is `date +%s.%N >> FILE; sleep 100000`: the pane's /bin/sh appends
the wall-clock time it started to FILE (one line per launch) and then runs `sleep` as its child,
so killing that `sleep` ends the launch, and the newest line of FILE says when the next began.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

#: What every benchmark agent ends up running: a process that does nothing for a day.
IDLE = "sleep 100000"

#: Restart limits that never back off within a benchmark run, and a quick Starting -> Running.
FAST_POLICY: dict[str, object] = {
    "crashLoop": {"maxRestarts": 1000, "window": "1m"},
    "startup": {"after": "100ms"},
}


def recording_command(starts: Path) -> str:
    """A command that appends its start time to `starts`, then idles."""
    return f"date +%s.%N >> {shlex.quote(str(starts))}; {IDLE}"


def agent_document(name: str, command: str, env: Mapping[str, str] | None = None) -> str:
    """One Agent manifest document (JSON is YAML) with the fast restart policy."""
    spec: dict[str, object] = {"command": command, "workdir": ".", **FAST_POLICY}
    if env:
        spec["env"] = dict(env)
    document = {"apiVersion": "orch/v1", "kind": "Agent", "metadata": {"name": name}, "spec": spec}
    return json.dumps(document)


def manifest(documents: Sequence[str]) -> str:
    """A multi-document manifest file's text."""
    return "---\n".join(f"{doc}\n" for doc in documents)


def idle_agents(prefix: str, count: int) -> str:
    """A manifest of `count` idle agents named PREFIX-0 .. PREFIX-(count-1)."""
    return manifest([agent_document(f"{prefix}-{i}", IDLE) for i in range(count)])


class StartLog:
    """The file a recording agent appends one start time per launch to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def times(self) -> list[float]:
        """Every recorded start time, oldest first."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        # Only whole lines: a launch may be writing its line right now.
        return [float(line) for line in text.split("\n")[:-1] if line.strip()]

    def previous(self) -> float:
        """The start time of the launch before the newest one (0.0 if there is none)."""
        times = self.times()
        return times[-2] if len(times) > 1 else 0.0

    def count(self) -> int:
        """How many launches have recorded their start so far."""
        return len(self.times())
