"""The agents the benchmarks run: manifests of `sleep` agents, some recording their start times.

A recording agent's command is `date +%s.%N >> FILE; sleep 100000`: the pane's /bin/sh appends
the wall-clock time it started to FILE (one line per launch) and then runs `sleep` as its child,
so killing that `sleep` ends the launch, and the newest line of FILE says when the next began.

A fake agent (tests/fakes/fake_agent.py, see `fake_agent_command`) is an interactive TUI-like
agent instead: it records every message submitted to it as one JSON line of its --record file,
which `RecordLog` reads incrementally.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: What every benchmark agent ends up running: a process that does nothing for a day.
IDLE = "sleep 100000"

#: The test suite's fake interactive agent CLI (python3 stdlib only): it records each message
#: submitted to it as one JSON line {"message": ...} in its --record file.
FAKE_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "fake_agent.py"

#: Restart limits that never back off within a benchmark run, and a quick Starting -> Running.
FAST_POLICY: dict[str, object] = {
    "crashLoop": {"maxRestarts": 1000, "window": "1m"},
    "startup": {"after": "100ms"},
}


def recording_command(starts: Path) -> str:
    """A command that appends its start time to `starts`, then idles."""
    return f"date +%s.%N >> {shlex.quote(str(starts))}; {IDLE}"


def silent_command(starts: Path) -> str:
    """A command that appends its start time to `starts`, then becomes the idle process itself
    (`exec`): killing it is a silent death of the supervised program, with no shell left to
    report it."""
    return f"date +%s.%N >> {shlex.quote(str(starts))}; exec {IDLE}"


def fake_agent_command(record: Path) -> str:
    """The fake agent, recording what it is sent to `record`."""
    parts = (sys.executable, str(FAKE_AGENT), "--record", str(record))
    return " ".join(shlex.quote(part) for part in parts)


def agent_document(
    name: str,
    command: str,
    env: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """One Agent manifest document (JSON is YAML) with the fast restart policy (and `extra`)."""
    spec: dict[str, object] = {"command": command, "workdir": ".", **FAST_POLICY}
    if env:
        spec["env"] = dict(env)
    if extra:
        spec.update(extra)
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


class RecordLog:
    """The fake agent's --record file, read incrementally: one message per complete JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._messages: list[str] = []

    def poll(self) -> int:
        """Read what was appended since the last call; how many messages are recorded so far."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size > self._offset:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
            self._offset += len(data)
            *lines, self._partial = (self._partial + data).split(b"\n")
            self._messages.extend(json.loads(line)["message"] for line in lines if line)
        return len(self._messages)

    def messages(self) -> list[str]:
        """Every message recorded so far (as of the last poll), oldest first."""
        return list(self._messages)

    def modified(self) -> float:
        """The file's last modification time (epoch seconds; the kernel's coarse clock)."""
        return self.path.stat().st_mtime_ns / 1e9
