"""Keeps agents to their guard rules: finds protected paths they changed, restores or reports.

Runs in the controller beside the agent passes. A guarded workdir is checked when the watcher
saw a write under it (so a violation is noticed well within a second), and at least every
GUARD_RESYNC_SECONDS as the safety net. `restore` rules put the paths back (the agent's version
saved first, see `guards.restore`), record a `ProtectedFileRestored` Warning and tell the agent;
`alert` rules record a `ProtectedFileChanged` Warning once per distinct set of changed paths.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.git import (
    GuardWatcher,
    Violation,
    agent_message,
    event_message,
    find_violations,
    restore,
)
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
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


class GuardKeeper:
    """Checks and enforces the guards of every guarded agent of one installation."""

    def __init__(self, store: Store, paths: StatePaths, wake: Callable[[], None]) -> None:
        self.store = store
        self.paths = paths
        self.watcher = GuardWatcher(wake, ignore=[paths.root])
        self._seen: dict[str, _Seen] = {}
        self._dirty: set[Path] = set()  # written since their last check

    def close(self) -> None:
        """Stop watching workdirs."""
        self.watcher.stop()

    def check(self, desired: Mapping[str, DesiredAgent]) -> dict[str, GuardReport]:
        """Check the guarded agents that are due; the latest report for each guarded agent."""
        guarded = {name: d for name, d in desired.items() if d.agent.spec.guards}
        self.watcher.watch(Path(d.agent.spec.workdir) for d in guarded.values())
        self._dirty |= self.watcher.take_changed()
        for name in set(self._seen) - set(guarded):
            del self._seen[name]
        reports = {}
        now = time.monotonic()
        for name, agent in guarded.items():
            workdir = Path(agent.agent.spec.workdir)
            seen = self._seen.get(name)
            interval = (
                GUARD_MIN_INTERVAL_SECONDS if workdir in self._dirty else GUARD_RESYNC_SECONDS
            )
            if seen is None or now - seen.checked_at >= interval:
                self._dirty.discard(workdir)
                seen = self._check(name, agent, workdir, seen, now)
            reports[name] = seen.report
        return reports

    def _check(
        self, name: str, agent: DesiredAgent, workdir: Path, seen: _Seen | None, now: float
    ) -> _Seen:
        guards = agent.agent.spec.guards
        try:
            violations = find_violations(workdir, [g.protect for g in guards])
        except OrchError as err:
            log.warning("guard check of %s failed: %s", name, err)
            return _Seen(now, GuardReport(False, "GuardCheckFailed", str(err)))
        restoring = [v for v in violations if guards[v.rule_index].action == "restore"]
        restored_paths = {v.path for v in restoring}
        alerting = [
            v
            for v in violations
            if guards[v.rule_index].action != "restore" and v.path not in restored_paths
        ]
        alerted = seen.alerted if seen else frozenset()
        failure = self._restore(agent, name, workdir, restoring, seen.failure if seen else "")
        paths = frozenset(v.path for v in alerting)
        if alerting and paths != alerted:
            self._warn(name, "ProtectedFileChanged", event_message(alerting, None))
        if not violations:
            return _Seen(now, GuardReport(False, "NoViolation", "no protected path changed"))
        what = "restored" if restoring else "changed"
        report = GuardReport(
            True,
            "ProtectedFileRestored" if restoring else "ProtectedFileChanged",
            f"protected paths {what}: {', '.join(v.local_path for v in violations)}",
        )
        return _Seen(now, report, paths, failure)

    def _warn(self, name: str, reason: str, message: str) -> None:
        self.store.record_event(Event(f"agent/{name}", EventType.WARNING, reason, message))

    def _restore(
        self,
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
                self._warn(name, "RestoreFailed", f"could not restore protected paths: {err}")
            return str(err)
        self._warn(name, "ProtectedFileRestored", event_message(violations, backup))
        self.store.enqueue(name, "orch", agent_message(violations, backup), agent.uid)
        return ""


def backups(paths: StatePaths, agent: str) -> list[Path]:
    """An agent's guard backups, oldest first."""
    folder = paths.agent_dir(agent) / "backups"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
