"""The control loop: observe everything once, plan every agent, act, persist; then wait.

Level-triggered: a pass re-reads the desired state, the recorded state and what tmux shows, so it
never matters what woke it. Wake-ups come from a pidfd per agent process (a death is known within
a millisecond), the CLI's wake FIFO, manifest files changing on disk (watchdog), and a plain pass
every second as the safety net. A pidfd death is handled first on its own (`run_exits`: only the
agents that died are planned, with what the last pass knew of guards and screens), so the time to
a replacement does not grow with the team; the full pass follows at once. One controller per
state dir, guarded by a lock file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import logging.handlers
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType

from filelock import FileLock, Timeout
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from reconciler.adapters.agentlog import log_path
from reconciler.adapters.logmark import log_mark, output_since
from reconciler.adapters.logwriter import LogWriterKeeper
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.statedir import ensure_state_dir, open_private
from reconciler.adapters.store import Store, StoredObject
from reconciler.adapters.tmux import Tmux
from reconciler.adapters.wake import WakeChannel
from reconciler.api.actions import Paste, PressEnter, SendKeys
from reconciler.api.errors import ManifestError, Unavailable
from reconciler.api.intents import NO_INTENT
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, Event, EventType, Transition
from reconciler.controller.apply import agent_from, apply_files
from reconciler.controller.daemon import read_pid
from reconciler.controller.executor import Executor
from reconciler.controller.guardkeeper import GuardKeeper
from reconciler.controller.notifications import NotificationWorker
from reconciler.controller.runner import PlaybookRunner
from reconciler.controller.usage import UsageCollector
from reconciler.core.agent_plan import (
    AgentObservation,
    AgentPlan,
    DesiredAgent,
    GuardReport,
    PlanContext,
)
from reconciler.core.delivery import (
    EVIDENCE_GRACE_SECONDS,
    Evidence,
    Phase,
    QueuedMessage,
    judge_echo,
    settle,
)
from reconciler.core.health import local_time, settle_keys
from reconciler.core.planner import plan_agent
from reconciler.core.screen import ScreenVerdict, classify
from reconciler.core.signals import AgentSignal

log = logging.getLogger(__name__)

#: The safety-net pass interval: the longest the loop sleeps without looking.
RESYNC_SECONDS = 1.0
#: Quiet time after a manifest file changes before it is read, so a half-written file is not.
EDIT_SETTLE_SECONDS = 0.05
#: watchdog event types that mean a file's content may have changed.
WRITE_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
#: Actions that type into an agent: written ahead, so none is sent twice.
KEYSTROKES = (Paste, PressEnter, SendKeys)
#: How often old events and transitions are pruned.
PRUNE_SECONDS = 600.0


@dataclass(frozen=True)
class CachedScreen:
    """The last capture of a pane, reused while tmux reports no output since."""

    pane_id: str
    activity: int
    captured_at: float
    text: str
    verdict: ScreenVerdict | None = None  # classified for `generation` of the agent's spec
    generation: int = 0
    cursor_y: int | None = None  # ... and with the cursor on this row

    def current_for(self, pane: PaneObservation) -> bool:
        """No output since this capture: same pane, and its last output second ended before it.

        `window_activity` has one-second resolution, so output in the very second of the capture
        may have come after it: such a capture is taken again.
        """
        return (
            self.pane_id == pane.pane_id
            and self.activity == pane.activity
            and int(self.captured_at) > pane.activity
        )


@dataclass
class PassResult:
    """What one pass learned: live agent pids to watch (pid -> agent) and when to look again."""

    pids: dict[int, str] = field(default_factory=dict)
    requeue_after: float = RESYNC_SECONDS


class ManifestWatcher(FileSystemEventHandler):
    """Notes which applied manifest files changed on disk and wakes the loop."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._files: set[str] = set()
        self._dirty: dict[str, float] = {}
        self._observer = Observer()
        self._watched_dirs: dict[str, object] = {}
        self._observer.start()

    def watch(self, files: list[str]) -> None:
        """Watch exactly these files (their folders, since editors save by renaming)."""
        with self._lock:
            self._files = set(files)
        wanted = {str(Path(f).parent) for f in files}
        for folder in set(self._watched_dirs) - wanted:
            self._observer.unschedule(self._watched_dirs.pop(folder))  # type: ignore[arg-type]
        for folder in wanted - set(self._watched_dirs):
            if Path(folder).is_dir():
                self._watched_dirs[folder] = self._observer.schedule(self, folder)

    def on_any_event(self, event: FileSystemEvent) -> None:
        """A write in a watched folder: remember it if it touches an applied file."""
        if event.event_type not in WRITE_EVENTS:
            return  # opens and reads (the CLI loading a file) are not edits
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        with self._lock:
            touched = paths & self._files
            for path in touched:
                self._dirty[path] = time.monotonic()
        if touched:
            self._wake()

    def settled(self) -> tuple[list[str], float | None]:
        """Files changed and quiet for EDIT_SETTLE_SECONDS, and how long until the rest settle."""
        now = time.monotonic()
        ready, wait = [], None
        with self._lock:
            for path, when in list(self._dirty.items()):
                left = when + EDIT_SETTLE_SECONDS - now
                if left <= 0:
                    ready.append(path)
                    del self._dirty[path]
                else:
                    wait = left if wait is None else min(wait, left)
        return ready, wait

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._observer.stop()
        self._observer.join(timeout=5)


class Controller:
    """The reconcile loop of one installation."""

    def __init__(self, state_dir: Path, socket: str) -> None:
        self.paths = StatePaths(ensure_state_dir(state_dir))
        self.socket = socket
        self.tmux = Tmux(socket)
        self.store = Store(state_dir)
        self.executor = Executor(self.tmux, self.paths, socket)
        self.log_writer = LogWriterKeeper(self.paths.root, self.paths.log)
        self.runner = PlaybookRunner(self.store, self.wake)
        self.guards = GuardKeeper(self.store, self.paths, self.wake)
        self.usage = UsageCollector(self.store)
        self._stopping = False
        self._pidfds: dict[int, int] = {}
        self._parsed: dict[tuple[str, int], DesiredAgent] = {}
        self._edits_seen: dict[str, bytes] = {}
        self._rejected: set[str] = set()  # files whose last live edit was refused
        self._screens: dict[str, CachedScreen] = {}
        self._guard_reports: dict[str, GuardReport] = {}
        self._signal_cursor = 0  # agents' signals below this id were planned and committed
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Run passes until SIGTERM or SIGINT; agents keep running when the controller stops."""
        lock = FileLock(self.paths.lock)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise Unavailable(
                f"a controller already runs for {self.paths.root} (pid {read_pid(self.paths)})"
            ) from None
        try:
            fd = open_private(self.paths.pid, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "w") as pid_file:
                pid_file.write(f"{os.getpid()}\n")
            self._serve()
        finally:
            self.paths.pid.unlink(missing_ok=True)
            lock.release()

    def _serve(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        channel = WakeChannel(self.paths.wake)
        watcher = ManifestWatcher(self.wake)
        notifications = NotificationWorker(self.paths.root)
        notifications.start()
        self.store.record_event(
            Event(
                "controller",
                EventType.NORMAL,
                "ControllerStarted",
                f"controller started (pid {os.getpid()})",
            )
        )
        log.info("controller started for %s on socket %s", self.paths.root, self.socket)
        last_prune = 0.0
        try:
            while not self._stopping:
                changed, settle_wait = watcher.settled()
                try:
                    for path in changed:
                        self._reapply(path)
                    result = self.run_pass()
                    notifications.wake()
                    watcher.watch(self.store.sources())
                    if time.monotonic() - last_prune > PRUNE_SECONDS:
                        self.store.prune_history()
                        last_prune = time.monotonic()
                except Exception:  # transient until proven otherwise (kopf)
                    # A pass that fails (tmux restarting, the disk full a moment) is logged with
                    # its traceback and tried again; the next pass re-reads everything anyway.
                    log.exception("pass failed; trying again in %.0fs", RESYNC_SECONDS)
                    result = PassResult()
                timeout = result.requeue_after
                if settle_wait is not None:
                    timeout = min(timeout, settle_wait)
                exited = self._wait(result.pids, channel, timeout)
                if exited:
                    try:
                        self.run_exits({result.pids[pid]: pid for pid in exited})
                    except Exception:  # the full pass that follows handles them anyway
                        log.exception("relaunch of %s failed", sorted(exited))
        finally:
            notifications.close()
            self.runner.close()
            self.guards.close()
            watcher.stop()
            channel.close()
            for fd in self._pidfds.values():
                os.close(fd)
            log.info("controller stopped")

    def wake(self) -> None:
        """Ask for an early pass (thread-safe)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"!")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        self.wake()

    def _wait(self, pids: Mapping[int, str], channel: WakeChannel, timeout: float) -> set[int]:
        """Sleep until an agent process dies, someone wakes us, or `timeout` passes; return the
        pids whose process the kernel says has ended."""
        for pid in set(self._pidfds) - pids.keys():
            os.close(self._pidfds.pop(pid))
        for pid in pids.keys() - set(self._pidfds):
            try:
                self._pidfds[pid] = os.pidfd_open(pid)
            except OSError:
                timeout = 0  # already gone: look again at once
        fds = [channel.fd, self._wake_r, *self._pidfds.values()]
        ready, _, _ = select.select(fds, [], [], max(timeout, 0.0))
        exited = {pid for pid, fd in self._pidfds.items() if fd in ready}
        if channel.fd in ready:
            channel.drain()
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
        return exited

    def _reapply(self, path: str) -> None:
        """A live edit: apply the saved file, or keep the last good spec and say why."""
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).digest()
        except OSError:
            return  # deleted or moved away: keep the team as it is
        if self._edits_seen.get(path) == digest:
            return
        self._edits_seen[path] = digest
        try:
            changes = apply_files(self.store, [path])
        except ManifestError as err:
            self._rejected.add(path)
            log.warning("live edit rejected: %s", err)
            self.store.record_event(
                Event(
                    f"manifest/{Path(path).name}",
                    EventType.WARNING,
                    "InvalidManifest",
                    f"{err}; keeping the last good spec",
                )
            )
            return
        done = [f"{c.kind.lower()}/{c.name} {c.verb}" for c in changes if c.verb != "unchanged"]
        for line in done:
            log.info("live edit: %s", line)
        again = path in self._rejected
        self._rejected.discard(path)
        if done or again:
            self.store.record_event(
                Event(
                    f"manifest/{Path(path).name}",
                    EventType.NORMAL,
                    "ManifestValid" if again else "ManifestApplied",
                    ("valid again; " if again else "live edit applied: ")
                    + (", ".join(done) or "nothing changed"),
                )
            )

    # -- one pass ------------------------------------------------------------------------------

    def run_pass(self) -> PassResult:
        """Observe every agent once, plan each, act, and persist the outcome in one transaction."""
        now = time.time()
        self.log_writer.ensure()  # before any launch: panes' output waits in FIFOs until it runs
        desired = self._desired()
        self.runner.run_pass(desired, now)  # first: the prompts it queues go out this pass
        self._guard_reports = self.guards.check(desired)
        usage_events, budget_cooldowns = self.usage.collect(desired, now)
        records = self.store.agent_records()
        panes = self.tmux.observe()
        screens = self._capture(panes, desired)
        observations = {
            name: self._observe(name, panes, screens, records.get(name))
            for name in set(desired) | set(records)
        }
        return self._reconcile(now, desired, records, observations, usage_events, budget_cooldowns)

    def run_exits(self, exited: Mapping[str, int]) -> PassResult:
        """The fast path of a death: plan and act for just the agents whose process `exited`
        (agent -> pid, from its pidfd), before the full pass.

        The kernel's word is the observation: the pane whose process that was is dead, whether
        or not tmux has noticed yet, so tmux is not asked. Only these agents' rows are read, so
        the cost does not grow with the team; guard reports are the last pass's, and the full
        pass right after re-reads everything.
        """
        now = time.time()
        desired, records, observations = {}, {}, {}
        for name, pid in exited.items():
            recorded = self.store.agent_record(name)
            if recorded is None or recorded.pid != pid:
                continue  # not the launch we watched: the full pass sorts it out
            stored = self.store.object("Agent", name)
            if stored is not None:
                desired[name] = self._parsed_agent(stored)
            records[name] = recorded
            pane = PaneObservation(name, "", pid, True, 0, 0, recorded.launch_id)
            code = self.executor.exit_code(name, recorded.launch_id)
            observations[name] = AgentObservation(pane, code)
        return self._reconcile(now, desired, records, observations)

    def _reconcile(
        self,
        now: float,
        desired: Mapping[str, DesiredAgent],
        records: Mapping[str, AgentRecord],
        observations: Mapping[str, AgentObservation],
        usage_events: Sequence[Event] = (),
        budget_cooldowns: Mapping[str, float | None] | None = None,
    ) -> PassResult:
        """Plan and act for each observed agent, then persist the outcome in one transaction.

        `usage_events` and `budget_cooldowns` come from the full pass's usage collection; the
        fast path passes none (the cooldowns it set are in the store by then)."""
        budget_cooldowns = budget_cooldowns or {}
        pending = self.store.pending_messages()
        cooldowns = self.store.cooldowns()
        cooldowns.update({k: until for k, until in budget_cooldowns.items() if until is not None})
        intents = self.store.intents()
        signals = self._new_signals()
        timezone = datetime.now().astimezone().tzinfo
        result = PassResult()
        changed: dict[str, AgentRecord | None] = {}
        events: list[Event] = list(usage_events)
        transitions: list[Transition] = []
        messages: list[QueuedMessage] = []
        cooldown_changes: dict[str, float | None] = dict(budget_cooldowns)
        for name in sorted(observations):
            recorded = records.get(name)
            observation = replace(observations[name], guard=self._guard_reports.get(name))
            message = pending.get(name)
            ctx = PlanContext(
                now,
                timezone,
                cooldowns,
                message,
                self._evidence(message, now),
                tuple(signals.get(name, ())),
                intent=intents.get(name, NO_INTENT),
            )
            plan = plan_agent(name, desired.get(name), observation, recorded, ctx)
            if plan.answer is not None:
                self.store.finish_answers([plan.answer])  # before typing: never typed twice
            record, settled = self._execute(name, plan, events)
            if record != recorded:
                changed[name] = record
            transitions.extend(plan.transitions)
            if settled is not None:
                messages.append(settled)
            if plan.cooldowns:
                cooldown_changes.update(plan.cooldowns)
                # Agents planned later in this pass see an account's new cooldown at once.
                cooldowns = {
                    account: until
                    for account, until in {**cooldowns, **plan.cooldowns}.items()
                    if until is not None
                }
            if plan.requeue_after is not None:
                result.requeue_after = min(result.requeue_after, plan.requeue_after)
            if record is not None and record.pid is not None and observation.alive:
                result.pids[record.pid] = name
        self.store.commit_pass(changed, events, transitions, messages, cooldown_changes)
        for agent_signals in signals.values():
            self._signal_cursor = max(self._signal_cursor, agent_signals[-1].id)
        return result

    def _new_signals(self) -> dict[str, list[AgentSignal]]:
        """Agents' own signals not planned yet, per agent, oldest first (each record keeps the
        id it folded up to, so a signal planned twice after a failed pass counts once)."""
        grouped: dict[str, list[AgentSignal]] = {}
        for signal_ in self.store.agent_signals_after(self._signal_cursor):
            grouped.setdefault(signal_.agent, []).append(signal_)
        return grouped

    def _capture(
        self, panes: Mapping[str, PaneObservation], desired: Mapping[str, DesiredAgent]
    ) -> dict[str, CachedScreen]:
        """Screens of live desired agents (captured again only where tmux saw output), classified
        once per screen, spec generation and cursor row."""
        live = {name: pane for name, pane in panes.items() if name in desired and not pane.dead}
        stale = [
            name
            for name, pane in live.items()
            if name not in self._screens or not self._screens[name].current_for(pane)
        ]
        if stale:
            captured_at = time.time()
            for name, text in self.tmux.capture_many(stale).items():
                pane = live[name]
                self._screens[name] = CachedScreen(pane.pane_id, pane.activity, captured_at, text)
        for name in set(self._screens) - set(live):
            del self._screens[name]
        local_now = local_time(time.time(), None)
        for name, cached in self._screens.items():
            agent, cursor = desired[name], live[name].cursor_y
            seen_for = (cached.generation, cached.cursor_y)
            if cached.verdict is None or seen_for != (agent.generation, cursor):
                verdict = classify(cached.text, agent.agent.spec, local_now, cursor)
                self._screens[name] = replace(
                    cached, verdict=verdict, generation=agent.generation, cursor_y=cursor
                )
        return dict(self._screens)

    def _desired(self) -> dict[str, DesiredAgent]:
        """Desired agents, parsed once per generation."""
        return {stored.name: self._parsed_agent(stored) for stored in self.store.objects("Agent")}

    def _parsed_agent(self, stored: StoredObject) -> DesiredAgent:
        key = (stored.name, stored.generation)
        if key not in self._parsed:
            self._parsed[key] = DesiredAgent(
                agent_from(stored.document, self.paths), stored.generation
            )
        return self._parsed[key]

    def _observe(
        self,
        name: str,
        panes: Mapping[str, PaneObservation],
        screens: Mapping[str, CachedScreen],
        recorded: AgentRecord | None,
    ) -> AgentObservation:
        pane = panes.get(name)
        if pane is None:
            launch_id = recorded.launch_id if recorded else ""
            return AgentObservation(None, self.executor.exit_code(name, launch_id))
        cached = screens.get(name)
        if cached is None:
            return AgentObservation(pane)
        return AgentObservation(pane, screen=cached.text, verdict=cached.verdict)

    def _execute(
        self, name: str, plan: AgentPlan, events: list[Event]
    ) -> tuple[AgentRecord | None, QueuedMessage | None]:
        """Carry out a plan; keystrokes (pastes, Enters, answers) are written ahead.

        Before a keystroke the plan's record and message are committed as intended; right after
        it, as done or failed. A controller that dies in between leaves the intent for the next
        one to resolve from evidence, so no keystroke is sent twice or lost without a trace.
        """
        events.extend(plan.events)
        message = plan.message
        if not plan.actions:
            return plan.record, message
        keystrokes = any(isinstance(a, KEYSTROKES) for a in plan.actions)
        if keystrokes:
            if message is not None and message.phase is Phase.PASTING:
                message = self._mark_log(message)
            self.store.write_ahead(name, plan.record, message)
        outcome = self.executor.execute(plan.record, plan.actions)
        events.extend(outcome.events)
        if not keystrokes:
            return outcome.record, message
        failed = [f for f in outcome.failures if isinstance(f.action, KEYSTROKES)]
        record = outcome.record
        if record is not None:
            record = settle_keys(record, bool(failed))
        if message is not None:
            definite = all(f.definite for f in failed)
            message = settle(message, bool(failed), definite, time.time())
        self.store.write_ahead(name, record, message)
        return record, message

    def _mark_log(self, message: QueuedMessage) -> QueuedMessage:
        """The paste's intent with the pane log's position: its evidence comes after it."""
        mark = log_mark(log_path(self.paths.agent_dir(message.agent)))
        inode, offset = mark if mark is not None else (None, None)
        return replace(message, log_inode=inode, log_offset=offset)

    def _evidence(self, message: QueuedMessage | None, now: float) -> Evidence | None:
        """What the pane log says about an unsettled paste, once the log has caught up."""
        if message is None or message.phase is not Phase.PASTING or message.phase_at is None:
            return None
        if now - message.phase_at < EVIDENCE_GRACE_SECONDS:
            return None
        output = None
        if message.log_inode is not None and message.log_offset is not None:
            log = log_path(self.paths.agent_dir(message.agent))
            output = output_since(log, message.log_inode, message.log_offset)
        return judge_echo(output, message.text)


def configure_logging(paths: StatePaths) -> None:
    """Log to the state dir's controller.log, rotated so it cannot fill the disk."""
    handler = logging.handlers.RotatingFileHandler(
        paths.log, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # one line per callback otherwise
