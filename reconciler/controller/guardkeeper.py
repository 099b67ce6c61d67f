"""Keeps agents to their guard rules: finds protected paths they changed, restores or reports.

Runs in the controller beside the agent passes. A guarded workdir is checked when the watcher
saw a write under it (so a violation is noticed well within a second), and at least every
GUARD_RESYNC_SECONDS as the safety net. `restore` rules put the paths back (the agent's version
saved first, see `guards.restore`), record a `ProtectedFileRestored` Warning and tell the agent;
`alert` rules record a `ProtectedFileChanged` Warning once per distinct set of changed paths.

Checks (git status, restores) run in a worker thread, one at a time per agent, never on the
loop; the loop's next pass writes a finished check's events and messages and publishes its report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.git import (
    Violation,
    agent_message,
    event_message,
    find_violations,
    in_repository,
    restore,
)
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
from reconciler.adapters.watchers import GuardWatcher
from reconciler.api.errors import OrchError
from reconciler.api.status import Event, EventType
from reconciler.core.agent_plan import DesiredAgent, GuardReport

log = logging.getLogger(__name__)

#: The longest a guarded workdir goes unchecked without a write seen under it.
GUARD_RESYNC_SECONDS = 5.0
#: The shortest time between two checks of one workdir while an agent writes continuously.
GUARD_MIN_INTERVAL_SECONDS = 0.3


@dataclass
class _Seen:
    checked_at: float
    report: GuardReport
    alerted: frozenset[str] = frozenset()
    failure: str = ""  # the last restore error, reported once until it changes


@dataclass
class _Check:
    """A finished check: what it saw, and the events and messages it asks the loop to write."""

    seen: _Seen
    events: list[Event] = field(default_factory=list)
    messages: list[tuple[str, str, str]] = field(default_factory=list)  # agent, uid, text


class GuardKeeper:
    """Checks and enforces the guards of every guarded agent of one installation."""

    def __init__(self, store: Store, paths: StatePaths, wake: Callable[[], None]) -> None:
        self.store = store
        self.paths = paths
        self.watcher = GuardWatcher(wake, ignore=[paths.root])
        self._wake = wake
        self._seen: dict[str, _Seen] = {}
        self._dirty: set[Path] = set()  # written since their last check
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guards")
        self._jobs: dict[str, Future[_Check]] = {}

    def close(self) -> None:
        """Stop watching workdirs (a check under way finishes on its own)."""
        self.watcher.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self, desired: Mapping[str, DesiredAgent]) -> dict[str, GuardReport]:
        """Check the guarded agents that are due; the latest report for each guarded agent."""
        guarded = {name: d for name, d in desired.items() if d.agent.spec.guards}
        self.watcher.watch(Path(d.agent.spec.workdir) for d in guarded.values())
        self._dirty |= self.watcher.take_changed()
        for name in set(self._seen) - set(guarded):
            del self._seen[name]
        self._collect(guarded)
        reports = {}
        now = time.monotonic()
        for name, agent in guarded.items():
            workdir = Path(agent.agent.spec.workdir)
            seen = self._seen.get(name)
            interval = (
                GUARD_MIN_INTERVAL_SECONDS if workdir in self._dirty else GUARD_RESYNC_SECONDS
            )
            if name not in self._jobs and (seen is None or now - seen.checked_at >= interval):
                self._dirty.discard(workdir)
                job = self._pool.submit(self._check, name, agent, workdir, seen, now)
                job.add_done_callback(lambda _: self._wake())
                self._jobs[name] = job
            if seen is not None:
                reports[name] = seen.report
        return reports

    def _collect(self, guarded: Mapping[str, DesiredAgent]) -> None:
        """Take in finished checks: their reports, events and messages (written here, on the
        loop's thread, which owns the store connection)."""
        for name, job in list(self._jobs.items()):
            if not job.done():
                continue
            del self._jobs[name]
            try:
                check = job.result()
            except Exception:
                log.exception("guard check of %s failed", name)
                continue
            if name not in guarded:
                continue
            self._seen[name] = check.seen
            for event in check.events:
                self.store.record_event(event)
            for agent, uid, text in check.messages:
                self.store.enqueue(agent, "orch", text, uid)

    def _check(
        self, name: str, agent: DesiredAgent, workdir: Path, seen: _Seen | None, now: float
    ) -> _Check:
        """One check of a workdir, in the worker thread: no store access here."""
        guards = agent.agent.spec.guards
        try:
            if not in_repository(workdir):
                return self._inactive(name, workdir, seen, now)
            violations = find_violations(workdir, [g.protect for g in guards])
        except OrchError as err:
            log.warning("guard check of %s failed: %s", name, err)
            return _Check(_Seen(now, GuardReport(False, "GuardCheckFailed", str(err))))
        restoring = [v for v in violations if guards[v.rule_index].action == "restore"]
        restored_paths = {v.path for v in restoring}
        alerting = [
            v
            for v in violations
            if guards[v.rule_index].action != "restore" and v.path not in restored_paths
        ]
        alerted = seen.alerted if seen else frozenset()
        check = _Check(_Seen(now, GuardReport(False, "NoViolation", "no protected path changed")))
        failure = self._restore(
            check, agent, name, workdir, restoring, seen.failure if seen else ""
        )
        paths = frozenset(v.path for v in alerting)
        if alerting and paths != alerted:
            check.events.append(
                _warning(name, "ProtectedFileChanged", event_message(alerting, None))
            )
        if not violations:
            return check
        what = "restored" if restoring else "changed"
        report = GuardReport(
            True,
            "ProtectedFileRestored" if restoring else "ProtectedFileChanged",
            f"protected paths {what}: {', '.join(v.local_path for v in violations)}",
        )
        check.seen = _Seen(now, report, paths, failure)
        return check

    def _inactive(self, name: str, workdir: Path, seen: _Seen | None, now: float) -> _Check:
        """Guards outside git see nothing: say so (a Warning event once, and a condition)."""
        message = (
            f"guards do nothing: {workdir} is not in a git repository "
            "(run `git init` there and commit, or remove the guards)"
        )
        check = _Check(_Seen(now, GuardReport(False, "GuardInactive", message)))
        if seen is None or seen.report.reason != "GuardInactive":
            check.events.append(_warning(name, "GuardInactive", message))
        return check

    def _restore(
        self,
        check: _Check,
        agent: DesiredAgent,
        name: str,
        workdir: Path,
        violations: list[Violation],
        failed: str,
    ) -> str:
        """Restore `violations`; the error if it failed (a Warning only when it is a new one)."""
        if not violations:
            return ""
        backup_root = self.paths.agent_dir(name) / "backups"
        try:
            backup = restore(workdir, violations, backup_root, time.time())
        except (OrchError, OSError, ValueError) as err:
            log.warning("guard restore for %s failed: %s", name, err, exc_info=True)
            if str(err) != failed:
                message = f"could not restore protected paths: {err}"
                check.events.append(_warning(name, "RestoreFailed", message))
            return str(err)
        check.events.append(
            _warning(name, "ProtectedFileRestored", event_message(violations, backup))
        )
        check.messages.append((name, agent.uid, agent_message(violations, backup)))
        return ""


def _warning(name: str, reason: str, message: str) -> Event:
    return Event(f"agent/{name}", EventType.WARNING, reason, message)
