"""Evaluating a playbook step's gates and `when` conditions against its agent's workdir.

This is an adapter: it reads the agent's files and runs gate commands, and turns each check into a
`GateResult` that the planner can put into a rework message. What it promises:

- Paths stay inside the workdir. An absolute path, a path that leads out through `..`, or one that
  resolves outside through a symlink fails with a result saying so; it is never read.
- A command runs as `/bin/sh -c COMMAND` in the workdir, in a session of its own, with no stdin and
  the controller's environment plus `ORCH_GATE=1`. Its combined output is kept (the last
  `MAX_OUTPUT_CHARS` characters: failures are reported at the end). On timeout every process of
  its session and process tree is ended (`reconciler.adapters.processes`), so a hung test run leaves
  nothing behind, and the result says how long it was given.
- Nothing raises for a failing check: an unreadable file or a missing workdir is a failed result
  with the reason, since the agent is the one who can fix it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from reconciler.adapters.processes import stop_launch
from reconciler.api.duration import format_duration
from reconciler.api.manifest import Condition, FileMatches, Gate
from reconciler.api.regex import compile_pattern
from reconciler.core.steps import GateResult

__all__ = ["GateResult", "evaluate_condition", "evaluate_gate", "missing_outputs"]

#: How much of a command's output a result keeps: its end, where tools report failures.
MAX_OUTPUT_CHARS = 4000
#: Set to "1" in a gate command's environment.
GATE_ENV = "ORCH_GATE"
#: A timed-out command's processes get this long between SIGTERM and SIGKILL.
KILL_GRACE = 1.0
#: After a timeout, how long to wait for output still in the pipe (an escaped process may hold it).
DRAIN_TIMEOUT = 2.0
#: Longest command shown in a result's name.
MAX_NAME_CHARS = 60


class _Refused(Exception):
    """A path that must not be read: why, as one line."""


def evaluate_gate(gate: Gate, workdir: Path, approved: bool) -> GateResult:
    """Check one gate; an approval gate passes iff `approved`, and is pending until then."""
    if gate.approval is not None:
        output = "approved" if approved else "waiting for a human to run `orch approve`"
        return GateResult(
            f"approval {gate.approval}", passed=approved, output=output, pending=not approved
        )
    return evaluate_condition(gate, workdir)


def evaluate_condition(condition: Condition, workdir: Path) -> GateResult:
    """Check a fileExists, fileMatches or command condition (a `when:` or a gate) in `workdir`."""
    started = time.monotonic()
    if condition.file_exists is not None:
        name = f"fileExists {condition.file_exists}"
        passed, output = _file_exists(workdir, condition.file_exists)
    elif condition.file_matches is not None:
        check = condition.file_matches
        name = f"fileMatches {check.path} {check.pattern} (min {check.min})"
        passed, output = _file_matches(workdir, check)
    elif condition.command is not None:
        name = f"command {_one_line(condition.command)}"
        passed, output = _run_command(workdir, condition.command, condition.timeout)
    else:
        raise ValueError(f"nothing to evaluate in {condition!r}")
    return GateResult(name, passed, output, duration=time.monotonic() - started)


def missing_outputs(outputs: Sequence[str], workdir: Path, since: float = 0.0) -> list[str]:
    """The outputs not written yet: missing, or last modified before `since` (a leftover of an
    earlier attempt). A path outside the workdir never counts as written."""
    missing = []
    for output in outputs:
        try:
            written = _locate(workdir, output).stat().st_mtime >= since
        except (_Refused, OSError):
            written = False
        if not written:
            missing.append(output)
    return missing


def _locate(workdir: Path, path: str) -> Path:
    """`path` within `workdir`; raises _Refused when it is empty, absolute or leads outside."""
    if not path:
        raise _Refused("refused: the path is empty")
    if os.path.isabs(path):
        raise _Refused(f"refused: {path} is absolute; paths are relative to the agent's workdir")
    if os.path.normpath(path).split(os.sep)[0] == os.pardir:
        raise _Refused(f"refused: {path} leads outside the agent's workdir")
    located = workdir / path
    resolved = located.resolve()
    if not resolved.is_relative_to(workdir.resolve()):
        raise _Refused(f"refused: {path} resolves to {resolved}, outside the agent's workdir")
    return located


def _file_exists(workdir: Path, path: str) -> tuple[bool, str]:
    try:
        exists = _locate(workdir, path).exists()
    except _Refused as refused:
        return False, str(refused)
    return exists, f"{path} {'exists' if exists else 'does not exist'}"


def _file_matches(workdir: Path, check: FileMatches) -> tuple[bool, str]:
    """Count the file's lines in which the pattern is found (so `^` and `$` anchor at each line)."""
    try:
        text = _locate(workdir, check.path).read_text(encoding="utf-8", errors="replace")
    except _Refused as refused:
        return False, str(refused)
    except FileNotFoundError:
        return False, f"{check.path} does not exist"
    except OSError as error:
        return False, f"cannot read {check.path}: {error.strerror or error}"
    pattern = compile_pattern(check.pattern)
    found = sum(1 for line in text.splitlines() if pattern.search(line))
    return found >= check.min, (
        f"found {found} {'line' if found == 1 else 'lines'} matching `{check.pattern}` "
        f"in {check.path}, need {check.min}"
    )


def _run_command(workdir: Path, command: str, timeout: float) -> tuple[bool, str]:
    """Run `command` with `/bin/sh -c`; passed when it exits 0 within `timeout` seconds."""
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=workdir,
            env={**os.environ, GATE_ENV: "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return False, f"cannot run /bin/sh in {workdir}: {error.strerror or error}"
    with proc:
        try:
            raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The shell is not reaped yet, so its pid still names its session: end all of it.
            stop_launch("", [proc.pid], grace=KILL_GRACE)
            return False, _joined(
                _trimmed(_drain(proc)), f"timed out after {format_duration(timeout)}"
            )
    if proc.returncode == 0:
        return True, _trimmed(raw)
    return False, _joined(_trimmed(raw), f"exit status {proc.returncode}")


def _drain(proc: subprocess.Popen[bytes]) -> bytes:
    """What a killed command wrote, waiting at most DRAIN_TIMEOUT for the pipe to close."""
    try:
        raw, _ = proc.communicate(timeout=DRAIN_TIMEOUT)
    except subprocess.TimeoutExpired as expired:  # a process that left the session holds the pipe
        return expired.output or b""
    return raw


def _trimmed(raw: bytes) -> str:
    """Output as text, only its last MAX_OUTPUT_CHARS characters, saying how much was left out."""
    text = raw.decode("utf-8", errors="replace").rstrip("\n")
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    cut = len(text) - MAX_OUTPUT_CHARS
    return f"[{cut} earlier characters trimmed]\n{text[cut:]}"


def _joined(output: str, note: str) -> str:
    """A command's output followed by a note on its own line."""
    return f"{output}\n{note}" if output else note


def _one_line(command: str) -> str:
    """A command shortened for a result's name: whitespace collapsed, at most MAX_NAME_CHARS."""
    text = " ".join(command.split())
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"
