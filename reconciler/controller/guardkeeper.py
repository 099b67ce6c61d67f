"""Keeps agents to their guard rules: finds protected paths they changed, restores or reports.

Runs in the controller beside the agent passes. When an agent is started for a spec generation,
its guards first record the protected files as they are (the baseline, see `baseline`): the
planner holds the launch until then. Every check compares the workdir with that baseline, so a
commit, a `skip-worktree` bit, an exclude or a deleted `.git` hides nothing. A guarded workdir is
checked when the watcher saw a write under it (so a violation is noticed well within a second),
and at least every GUARD_RESYNC_SECONDS as the safety net. `restore` rules put the paths back to
the baseline (the agent's version kept first, see `guardrestore`), record a
`ProtectedFileRestored` Warning saying what the agent did and tell the agent; `alert` rules
record a `ProtectedFileChanged` Warning once per distinct set of changed paths. The GuardTripped
condition carries the same message.

Checks (walks, restores, git) run in a worker thread, one at a time, never on the loop; the
loop's next pass writes a finished check's events and messages and publishes its report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters import baseline as baselines
from reconciler.adapters.baseline import GUARD_DIR, Baseline, Violation
from reconciler.adapters.git import (
    commits_since,
    head_commit,
    repository,
    sync_index,
    unhide,
)
from reconciler.adapters.guardrestore import agent_message, event_message, restore
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.protected import DigestCache
from reconciler.adapters.store import Store
from reconciler.adapters.watchers import GuardWatcher
from reconciler.api.errors import OrchError
from reconciler.api.history import Event, EventType
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
        # Touched only in the worker thread:
        self._baselines: dict[str, Baseline] = {}
        self._caches: dict[str, DigestCache] = {}

    def close(self) -> None:
        """Stop watching workdirs (a check under way finishes on its own)."""
        self.watcher.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self, desired: Mapping[str, DesiredAgent]) -> dict[str, GuardReport]:
        """Check the guarded agents that are due; the latest report for each guarded agent."""
        guarded = {name: d for name, d in desired.items() if d.agent.spec.guards}
        self.watcher.watch(Path(d.agent.spec.workdir) for d in guarded.values())
        self._dirty |= self.watcher.take_changed()
        gone = set(self._seen) - set(guarded)
        for name in gone:
            del self._seen[name]
        if gone:
            self._pool.submit(self._forget, gone)
        self._collect(guarded)
        reports = {}
        now = time.monotonic()
        for name, agent in guarded.items():
            workdir = Path(agent.agent.spec.workdir)
            seen = self._seen.get(name)
            interval = (
                GUARD_MIN_INTERVAL_SECONDS if workdir in self._dirty else GUARD_RESYNC_SECONDS
            )
            due = (
                seen is None
                or seen.report.baseline != (agent.uid, agent.generation)
                or now - seen.checked_at >= interval
            )
            if name not in self._jobs and due:
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
            check = job.result()  # _check never raises
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
        """One check of a workdir, in the worker thread: no store access here. Never raises: a
        failure is a GuardCheckFailed report (so a launch waiting for the baseline goes ahead)."""
        key = (agent.uid, agent.generation)
        try:
            return self._check_against_baseline(name, agent, workdir, seen, now)
        except (OrchError, OSError, ValueError) as err:
            log.warning("guard check of %s failed: %s", name, err)
            message = f"guard check failed: {err}"
        except Exception as err:  # a bug here must not stop the agent's launch
            log.exception("guard check of %s failed", name)
            message = f"guard check failed: {type(err).__name__}: {err}"
        check = _Check(_Seen(now, GuardReport(False, "GuardCheckFailed", message, key)))
        if seen is None or seen.report.message != message:
            check.events.append(_warning(name, "GuardCheckFailed", message))
        return check

    def _check_against_baseline(
        self, name: str, agent: DesiredAgent, workdir: Path, seen: _Seen | None, now: float
    ) -> _Check:
        rules = [g.protect for g in agent.agent.spec.guards]
        key = (agent.uid, agent.generation)
        repo = repository(workdir)
        check = _Check(_Seen(now, GuardReport(False, "NoViolation", _clean_message(seen), key)))
        baseline, stored = self._baseline(name, key)
        if baseline is None:
            # Outside git only after an earlier baseline: `rm -rf .git` switches nothing off.
            if repo is not None:
                root, head = repo[0], head_commit(repo[0])
            elif stored is not None:
                root, head = stored.root, None
            else:
                return self._inactive(name, workdir, seen, now, key)
            baseline = self._record(name, key, workdir, root, head, rules)
            check.events.append(
                Event(
                    f"agent/{name}",
                    EventType.NORMAL,
                    "GuardBaseline",
                    f"guards hold {len(baseline.files)} protected files as they are now "
                    f"(generation {agent.generation}); changes to them are restored or reported",
                )
            )
        prefix = repo[1] if repo is not None else _prefix(workdir, baseline.root)
        cache = self._caches.setdefault(name, DigestCache())
        violations = baselines.compare(baseline, workdir, rules, prefix, cache, [self.paths.root])
        if violations:
            self._enforce(check, name, agent, workdir, repo, baseline, violations, seen)
        return check

    def _enforce(
        self,
        check: _Check,
        name: str,
        agent: DesiredAgent,
        workdir: Path,
        repo: tuple[Path, str] | None,
        baseline: Baseline,
        violations: list[Violation],
        seen: _Seen | None,
    ) -> None:
        """Restore what `restore` rules protect, report what `alert` rules do, into `check`."""
        guards = agent.agent.spec.guards
        details, note = _how_changed(repo, baseline, violations)
        restoring = [v for v in violations if guards[v.rule_index].action == "restore"]
        restored_paths = {v.path for v in restoring}
        alerting = [
            v
            for v in violations
            if guards[v.rule_index].action != "restore" and v.path not in restored_paths
        ]
        said = []
        failure = ""
        if restoring:
            how = event_message(restoring, None, details, note)
            try:
                backup = restore(
                    workdir, baseline, restoring, self._backups(name), time.time(), how
                )
                if repo is not None:
                    sync_index(
                        repo[0],
                        [v.path for v in restoring if v.kind != "added"],
                        [v.path for v in restoring if v.kind == "added"],
                    )
            except (OrchError, OSError, ValueError) as err:
                log.warning("guard restore for %s failed: %s", name, err, exc_info=True)
                failure = f"could not restore protected paths: {err}"
                if seen is None or seen.failure != failure:
                    check.events.append(_warning(name, "RestoreFailed", failure))
                said.append(failure)
            else:
                said.append(event_message(restoring, backup, details, note))
                check.events.append(_warning(name, "ProtectedFileRestored", said[-1]))
                check.messages.append((name, agent.uid, agent_message(restoring, backup)))
        paths = frozenset(v.path for v in alerting)
        if alerting:
            said.append(event_message(alerting, None, details, note))
            if paths != (seen.alerted if seen else frozenset()):
                check.events.append(_warning(name, "ProtectedFileChanged", said[-1]))
        reason = "ProtectedFileRestored" if restoring else "ProtectedFileChanged"
        key = check.seen.report.baseline
        check.seen = _Seen(
            check.seen.checked_at, GuardReport(True, reason, "; ".join(said), key), paths, failure
        )

    def _record(
        self,
        name: str,
        key: tuple[str, int],
        workdir: Path,
        root: Path,
        head: str | None,
        rules: list[list[str]],
    ) -> Baseline:
        """Take the baseline of `key` now (the launch waits for it)."""
        guard_dir = self.paths.agent_dir(name) / GUARD_DIR
        baseline = baselines.record(guard_dir, key, workdir, root, head, rules, [self.paths.root])
        self._baselines[name] = baseline
        self._caches[name] = DigestCache()
        return baseline

    def _baseline(self, name: str, key: tuple[str, int]) -> tuple[Baseline | None, Baseline | None]:
        """The agent's baseline for `key` (uid, generation), kept in memory, else on disk; and
        the one stored on disk if it is of another key (None: none at all)."""
        known = self._baselines.get(name)
        if known is not None and known.key == key:
            return known, None
        stored = baselines.load(self.paths.agent_dir(name) / GUARD_DIR)
        if stored is None or stored.key != key:
            return None, stored
        self._baselines[name] = stored
        self._caches[name] = DigestCache()
        return stored, None

    def _forget(self, names: set[str]) -> None:
        """Drop what the worker keeps of agents no longer guarded (in the worker thread)."""
        for name in names:
            self._baselines.pop(name, None)
            self._caches.pop(name, None)

    def _backups(self, name: str) -> Path:
        return self.paths.agent_dir(name) / "backups"

    def _inactive(
        self, name: str, workdir: Path, seen: _Seen | None, now: float, key: tuple[str, int]
    ) -> _Check:
        """Guards outside git see nothing: say so (a Warning event once, and a condition)."""
        message = (
            f"guards do nothing: {workdir} is not in a git repository "
            "(run `git init` there and commit, or remove the guards)"
        )
        check = _Check(_Seen(now, GuardReport(False, "GuardInactive", message, key)))
        if seen is None or seen.report.reason != "GuardInactive":
            check.events.append(_warning(name, "GuardInactive", message))
        return check


def _how_changed(
    repo: tuple[Path, str] | None, baseline: Baseline, violations: list[Violation]
) -> tuple[dict[str, str], str]:
    """How the agent made its changes, as far as git tells: workdir path -> "committed in
    abc1234" / "hidden with skip-worktree", and a note for the whole (".git removed")."""
    if repo is None:
        return {}, f"{baseline.root / '.git'} removed"
    root, prefix = repo
    paths = sorted({v.path for v in violations})
    details: dict[str, list[str]] = {}
    for path, commit in commits_since(root, baseline.head, paths).items():
        details.setdefault(path[len(prefix) :], []).append(f"committed in {commit}")
    for path, bit in unhide(root, [v.path for v in violations if v.kind != "added"]).items():
        details.setdefault(path[len(prefix) :], []).append(f"hidden with {bit}")
    return {path: ", ".join(how) for path, how in details.items()}, ""


def _clean_message(seen: _Seen | None) -> str:
    """No protected path differs from the baseline now; what the guards last did, if anything."""
    last = seen.report if seen is not None else None
    if last is not None and last.tripped:
        return f"no protected path changed now; last: {last.message}"
    if last is not None and last.message.startswith("no protected path changed now; last: "):
        return last.message
    return "no protected path changed"


def _prefix(workdir: Path, root: Path) -> str:
    """The workdir's path inside the repository root, as git writes it (`sub/` or "")."""
    try:
        inside = workdir.relative_to(root).as_posix()
    except ValueError:
        return ""
    return "" if inside == "." else inside + "/"


def _warning(name: str, reason: str, message: str) -> Event:
    return Event(f"agent/{name}", EventType.WARNING, reason, message)
