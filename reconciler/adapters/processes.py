"""Finding and ending every process of one agent launch: the only code that signals processes.

`kill-session` and even `kill-server` leave agent processes behind: tools fork helpers, language
servers and daemons that double-fork, call setsid and get reparented to init. So a launch is found
three ways in one pass over /proc:

- the tree under its root pids (the pane's pid),
- every process in the session (SID) of a root: tmux makes each pane process a session leader, so
  helpers that were reparented but did not call setsid keep that SID,
- every process whose environment carries `ORCH_LAUNCH_ID=<launch_id>` (the launcher puts it in the
  pane's environment), which catches double-forked daemons that left both the tree and the session.

The calling process, its ancestors and its own session are never included, and a root that is one
of them is ignored, so a mistaken root can not take the supervisor or the user's shell down.
Zombies are skipped and count as gone: they hold no resources, and waiting on a zombie we are not
the parent of would never end (psutil.wait_procs alone would wait out the whole timeout).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    # imported where processes are signalled: `orch send` reads its ancestry from /proc alone
    import psutil

#: Environment variable that marks every process of one launch.
LAUNCH_ID_ENV = "ORCH_LAUNCH_ID"

#: How long to wait for SIGKILLed processes to disappear.
KILL_WAIT = 2.0

#: Rounds of find-and-terminate in `stop_launch`: a dying process can fork one last time.
STOP_ROUNDS = 3

_PROC = "/proc"


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one /proc/PID/stat (and environ) says about a process."""

    ppid: int
    sid: int
    zombie: bool
    marked: bool


def launch_processes(launch_id: str, roots: Iterable[int] = ()) -> list[psutil.Process]:
    """Live processes of one launch: roots, their descendants, their sessions, the env-marked."""
    table = _scan(launch_id)
    spared = _self_and_ancestors(table)
    present = {pid for pid in roots if pid in table} - spared
    sids = {table[pid].sid for pid in present} - {0, 1, os.getsid(0)}
    seeds = present | {pid for pid, e in table.items() if e.marked or e.sid in sids}
    members = _with_descendants(seeds, table) - spared
    return _processes(pid for pid in sorted(members) if not table[pid].zombie)


def terminate(procs: Iterable[psutil.Process], grace: float) -> None:
    """SIGTERM all, give them `grace` seconds, SIGKILL the rest and wait until they are gone."""
    alive = _wait_gone(_signal(procs, signal.SIGTERM), grace)
    _wait_gone(_signal(alive, signal.SIGKILL), KILL_WAIT)


def ask_to_stop(pid: int) -> None:
    """SIGTERM one process (another controller handing over); gone already is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def stop_launch(launch_id: str, roots: Iterable[int], grace: float = 0.5) -> None:
    """End every process of a launch, rescanning for any a dying process forked meanwhile."""
    roots = list(roots)
    for _ in range(STOP_ROUNDS):
        procs = launch_processes(launch_id, roots)
        if not procs:
            return
        terminate(procs, grace)


#: Most parents followed up from a process (a chain longer than this is not a real one).
MAX_ANCESTRY = 256


def ancestry(pid: int | None = None) -> list[int]:
    """`pid` (this process by default) and its ancestors, nearest first, up to init."""
    chain: list[int] = []
    current = os.getpid() if pid is None else pid
    while current > 1 and len(chain) < MAX_ANCESTRY and current not in chain:
        chain.append(current)
        entry = _read_entry(current, None)
        if entry is None:
            break
        current = entry.ppid
    return chain


def started_for(pid: int, launch_id: str) -> bool:
    """Whether process `pid` was started for this launch: its environment, set by orch when it
    started the pane and out of the agent's reach, carries the launch's mark."""
    return bool(launch_id) and f"{LAUNCH_ID_ENV}={launch_id}".encode() in _environ(pid)


def _scan(launch_id: str) -> dict[int, _Entry]:
    """One pass over /proc: parent, session, zombie state and launch mark of every process."""
    marker = f"{LAUNCH_ID_ENV}={launch_id}".encode() if launch_id else None
    table: dict[int, _Entry] = {}
    for name in os.listdir(_PROC):
        if name.isdigit():
            entry = _read_entry(int(name), marker)
            if entry is not None:
                table[int(name)] = entry
    return table


def _read_entry(pid: int, marker: bytes | None) -> _Entry | None:
    """Parse /proc/PID/stat; None when the process is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain anything: split after the last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    state, ppid, sid = fields[0], int(fields[1]), int(fields[3])
    marked = marker is not None and marker in _environ(pid)
    return _Entry(ppid=ppid, sid=sid, zombie=state == b"Z", marked=marked)


def _environ(pid: int) -> list[bytes]:
    """The KEY=VALUE entries of a process's environment; empty when unreadable."""
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _self_and_ancestors(table: dict[int, _Entry]) -> set[int]:
    """The calling process and every process above it up to init."""
    spared: set[int] = set()
    pid = os.getpid()
    while pid > 0 and pid not in spared:
        spared.add(pid)
        entry = table.get(pid)
        pid = entry.ppid if entry is not None else 0
    return spared


def _with_descendants(seeds: set[int], table: dict[int, _Entry]) -> set[int]:
    """`seeds` plus every process below one of them."""
    children: dict[int, list[int]] = {}
    for pid, entry in table.items():
        children.setdefault(entry.ppid, []).append(pid)
    found = set(seeds)
    stack = list(seeds)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    """psutil handles (which guard against pid reuse) for the pids still alive."""
    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return procs


def _signal(procs: Iterable[psutil.Process], sig: signal.Signals) -> list[psutil.Process]:
    """Send `sig` to each process; return those that were still there to receive it."""
    import psutil

    sent = []
    for proc in procs:
        try:
            proc.send_signal(sig)
            sent.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sent


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` s for processes to exit (reaping our own children); return the rest."""
    import psutil

    deadline = time.monotonic() + timeout
    alive = procs
    while alive:
        step = min(0.02, max(0.0, deadline - time.monotonic()))
        _, alive = psutil.wait_procs(alive, timeout=step)
        alive = [proc for proc in alive if not _is_zombie(proc)]
        if time.monotonic() >= deadline:
            break
    return alive


def _is_zombie(proc: psutil.Process) -> bool:
    """True for an exited process that its parent has not reaped yet (or that is gone)."""
    import psutil

    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
