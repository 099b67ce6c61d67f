"""The control loop: observe everything once, plan every agent, act, persist; then wait.

Level-triggered: a pass re-reads the desired state, the recorded state and what tmux shows, so it
never matters what woke it. Wake-ups come from a pidfd per agent process (a death is known within
a millisecond), the CLI's wake FIFO, manifest files changing on disk (watchdog), and a plain pass
every second as the safety net. A pidfd death is handled first on its own (`run_exits`: only the
agents that died are planned, with what the last pass knew of guards and screens), so the time to
a replacement does not grow with the team; the full pass follows 50 ms later (sooner when woken),
so the new process does not start beside a pass over every agent. One controller per state dir,
guarded by a lock file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import logging.handlers
import os
import select
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path
from types import FrameType

from filelock import FileLock, Timeout

from reconciler.adapters.agentlog import log_path
from reconciler.adapters.atomic import write_atomic
from reconciler.adapters.logmark import log_mark, output_since
from reconciler.adapters.logwriter import LogWriterKeeper
from reconciler.adapters.paths import StatePaths, installation_id
from reconciler.adapters.processes import ask_to_stop
from reconciler.adapters.statedir import ensure_state_dir
from reconciler.adapters.store import Store, StoredObject, StoreUnavailable
from reconciler.adapters.tmux import Tmux, TmuxUnavailable
from reconciler.adapters.wake import WakeChannel
from reconciler.adapters.watchers import ManifestWatcher
from reconciler.api.actions import Action, Launch, Paste, PressEnter, SendKeys, Stop
from reconciler.api.errors import InvalidInput, OrchError, Unavailable
from reconciler.api.history import Event, EventType
from reconciler.api.intents import NO_INTENT, AgentIntent
from reconciler.api.localtime import local_datetime
from reconciler.api.messages import Phase, QueuedMessage
from reconciler.api.observation import PaneObservation
from reconciler.api.status import AgentRecord, set_condition
from reconciler.controller.apply import agent_from, apply_files
from reconciler.controller.cli_logs import CliLogReader
from reconciler.controller.daemon import controller_pid
from reconciler.controller.executor import Executor, all_done, first_error, target_gone
from reconciler.controller.guardkeeper import GuardKeeper
from reconciler.controller.isolation import (
    ErrorBoundary,
    describe_error,
    error_condition,
    recovered_condition,
)
from reconciler.controller.notifications import NotificationWorker
from reconciler.controller.passbatch import PassBatch
from reconciler.controller.quietpass import PassInputs, QuietPass
from reconciler.controller.recovery import recover
from reconciler.controller.runner import PlaybookRunner
from reconciler.controller.stopper import Stopper
from reconciler.controller.storereads import StoreReads
from reconciler.controller.tmuxbreaker import TmuxBreaker
from reconciler.controller.usage import UsageCollector
from reconciler.core.agent_plan import (
    AgentObservation,
    AgentPlan,
    DesiredAgent,
    GuardReport,
    PlanContext,
)
from reconciler.core.delivery import EVIDENCE_GRACE_SECONDS, Evidence, judge_echo, settle
from reconciler.core.health import settle_keys
from reconciler.core.plan_memo import PlanInputs, PlanMemo
from reconciler.core.planner import plan_agent
from reconciler.core.screen import ScreenVerdict, classify
from reconciler.core.signals import AgentSignal

log = logging.getLogger(__name__)

#: The safety-net pass interval: the longest the loop sleeps without looking.
RESYNC_SECONDS = 1.0
#: Actions that type into an agent: written ahead, so none is sent twice.
KEYSTROKES = (Paste, PressEnter, SendKeys)
#: How long the controller waits for a write lock another process holds before it goes on
#: from memory (a CLI write holds it for milliseconds).
STORE_BUSY_SECONDS = 0.5
#: Actions whose effect tmux itself records (the session's launch id, its absence): with the
#: store refusing writes they go ahead without an intent, and the next start settles them.
SELF_EVIDENT = (Launch, Stop)
#: The longest a tmux call of the controller may take before it counts as failed.
TMUX_TIMEOUT_SECONDS = 3.0
#: How long a controller taking over waits for the one it replaces to stop.
TAKE_OVER_SECONDS = 15.0
#: After a death's relaunch the full pass waits this long (another death or a wake-up ends the
#: wait): the new process starts beside an idle controller, not beside a pass over every agent.
AFTER_RELAUNCH_SECONDS = 0.05
#: A pass longer than this is logged: nothing slow belongs on the loop.
SLOW_PASS_SECONDS = 0.1
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
    duration: float = 0.0  # seconds the pass took


class Controller:
    """The reconcile loop of one installation."""

    def __init__(
        self,
        state_dir: Path,
        socket: str,
        tmux: Tmux | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`tmux` and `clock` are injected by the wiring tests (an in-memory tmux, a clock they
        move by hand); a real controller makes its own and reads the wall clock."""
        self.paths = StatePaths(ensure_state_dir(state_dir))
        self.socket = socket
        self.clock = clock
        self.store = Store(state_dir, busy_timeout=STORE_BUSY_SECONDS)
        self.stopper = Stopper(self.wake)
        self.installation = installation_id(self.paths)
        self.tmux = tmux or Tmux(socket, timeout=TMUX_TIMEOUT_SECONDS, control=self.installation)
        self.executor = Executor(self.tmux, self.paths, socket, self.stopper, self.installation)
        self.log_writer = LogWriterKeeper(self.paths.root, self.paths.log)
        self.boundary = ErrorBoundary()
        self.breaker = TmuxBreaker(socket)
        self.runner = PlaybookRunner(self.store, self.wake, self.boundary)
        self.guards = GuardKeeper(self.store, self.paths, self.wake)
        self.usage = UsageCollector(self.store)
        self.cli_logs = CliLogReader(self.paths)
        self._stopping = False
        self._pidfds: dict[int, int] = {}
        self._poller = select.poll()  # what `_wait` waits on: the pidfds and the wake-ups
        self._polled: set[int] = set()
        self._parsed: dict[tuple[str, int], DesiredAgent | str] = {}  # str: why it is unreadable
        self._unsaved = PassBatch()
        self._edits_seen: dict[str, bytes] = {}
        self._rejected: set[str] = set()  # files whose last live edit was refused
        self._screens: dict[str, CachedScreen] = {}
        self._guard_reports: dict[str, GuardReport] = {}
        self._reads = StoreReads(self.store)  # read again only once the store changed
        self._memo = PlanMemo()  # agents whose unchanged inputs plan nothing: not planned again
        self._quiet = QuietPass()  # the last pass that changed nothing, while it holds
        self._signal_cursor = 0  # agents' signals below this id were planned and committed
        self._failpoint = ""  # where the fault-injection tests want this controller to die
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, take_over: bool = False) -> None:
        """Run passes until SIGTERM or SIGINT; agents keep running when the controller stops.

        With `take_over` (what the systemd unit does), a controller already running for this
        state dir is asked to stop (SIGTERM) and this one takes its place once it has.
        """
        lock = FileLock(self.paths.lock)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = controller_pid(self.paths)
            if not take_over or holder is None or holder <= 0 or holder == os.getpid():
                raise Unavailable(
                    f"a controller already runs for {self.paths.root} (pid {holder})"
                ) from None
            log.info("taking over from the controller with pid %d", holder)
            ask_to_stop(holder)
            try:
                lock.acquire(timeout=TAKE_OVER_SECONDS)
            except Timeout:
                raise Unavailable(
                    f"the controller with pid {holder} did not hand over within "
                    f"{TAKE_OVER_SECONDS:g}s"
                ) from None
        try:
            self._failpoint = take_failpoint(self.paths)  # before the pid tells tests it runs
            write_atomic(self.paths.pid, f"{os.getpid()}\n".encode())
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
        self._recover()
        try:
            for path in self._reads.sources():  # edits saved while no controller ran
                self._reapply(path)
        except OrchError:
            log.exception("re-reading the applied files failed; live edits resume from here")
        last_prune = 0.0
        told = (-1, -1)  # the store's state when the notification worker was last woken
        try:
            while not self._stopping:
                changed, settle_wait = watcher.settled()
                try:
                    for path in changed:
                        self._reapply(path)
                    result = self.run_pass()
                    if (mark := self._reads.mark()) != told:  # no commit since: no new event
                        told = mark
                        notifications.wake()
                    watcher.watch(self._reads.sources())
                    if time.monotonic() - last_prune > PRUNE_SECONDS:
                        self.store.prune_history()
                        last_prune = time.monotonic()
                except TmuxUnavailable as err:  # not hammered: see tmuxbreaker
                    self._tmux_failed(err)
                    result = PassResult(requeue_after=self.breaker.wait())
                except Exception:  # transient until proven otherwise (kopf)
                    # A pass that fails (tmux restarting, the disk full a moment) is logged with
                    # its traceback and tried again; the next pass re-reads everything anyway.
                    log.exception("pass failed; trying again in %.0fs", RESYNC_SECONDS)
                    result = PassResult()
                timeout = result.requeue_after
                if settle_wait is not None:
                    timeout = min(timeout, settle_wait)
                exited = self._wait(result.pids, channel, timeout)
                while exited and not self._stopping:
                    try:
                        self.run_exits({result.pids[pid]: pid for pid in exited})
                    except Exception:  # the full pass that follows handles them anyway
                        log.exception("relaunch of %s failed", sorted(exited))
                    watched = {pid: name for pid, name in result.pids.items() if pid not in exited}
                    exited = self._wait(watched, channel, AFTER_RELAUNCH_SECONDS)
        finally:
            notifications.close()
            self.runner.close()
            self.guards.close()
            self.stopper.close()
            watcher.stop()
            channel.close()
            for fd in self._pidfds.values():
                os.close(fd)
            self.tmux.close()
            log.info("controller stopped")

    def _recover(self) -> None:
        """Settle what a killed predecessor left half done (see `recovery`), until it works."""
        while not self._stopping:
            try:
                recover(self.store, self.tmux.observe())
                return
            except TmuxUnavailable as err:
                self._tmux_failed(err)
                self._pause(self.breaker.wait())
            except (OrchError, OSError):
                log.exception("recovering open intents failed; trying again")
                self._pause(RESYNC_SECONDS)

    def _tmux_failed(self, error: TmuxUnavailable) -> None:
        """tmux did not answer: open the breaker, and say so once (the store permitting)."""
        event = self.breaker.failed(error)
        if event is not None:
            with contextlib.suppress(StoreUnavailable):
                self.store.record_event(event)

    def _tmux_news(self) -> list[Event]:
        """After tmux answered a pass: whether that closed the breaker, and what the adapter
        repaired on its own (a deleted socket made again)."""
        answered = self.breaker.answered()
        repaired = [
            Event("controller", EventType.WARNING, "TmuxSocketRemade", notice)
            for notice in self.tmux.take_notices()
        ]
        return [*([answered] if answered else []), *repaired]

    def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until woken (a signal to stop wakes it too)."""
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if poller.poll(seconds * 1000):
            self._drain_wake()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

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
            except ProcessLookupError:
                timeout = 0  # already gone: look again at once
            except OSError:  # out of descriptors: the safety-net pass watches this one
                log.debug("agent pid %d not watched by a pidfd", pid)
        # poll, not select: a team of a thousand agents has descriptors past select's 1024.
        # One poller kept between waits, told only what changed: an idle controller waits once a
        # second, and registering every descriptor again each time was a tenth of its CPU.
        wanted = {channel.fd, self._wake_r, *self._pidfds.values()}
        for fd in self._polled - wanted:
            self._poller.unregister(fd)
        for fd in wanted - self._polled:
            self._poller.register(fd, select.POLLIN)
        self._polled = wanted
        ready = {fd for fd, _ in self._poller.poll(max(timeout, 0.0) * 1000)}
        exited = {pid for pid, fd in self._pidfds.items() if fd in ready}
        if channel.fd in ready:
            channel.drain()
        if self._wake_r in ready:
            self._drain_wake()
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
        except InvalidInput as err:  # does not parse or validate, or conflicts with another file
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
        """Observe every agent once, plan and act on each inside its own error boundary, and
        persist what happened in one transaction."""
        started = time.monotonic()
        if not self.breaker.allows():  # tmux does not answer: plan nothing until it does
            return PassResult(requeue_after=self.breaker.wait())
        now = self.clock()
        self._reads.begin_pass()
        store_mark = self._reads.mark()
        log_events = self._keep_logging()  # before any launch: output waits in FIFOs meanwhile
        desired, broken = self._desired()
        records, unreadable = self._reads.agent_records_checked()
        records = self._unsaved.overlay_records(records)
        broken.update(unreadable)
        # First: the prompts runs queue go out this pass. Runs whose agent cannot be read wait.
        self.runner.run_pass(desired, now, held=set(broken))
        self._guard_reports = self.guards.check(desired)
        usage_events, budget_cooldowns = self.usage.collect(desired, now)
        log_limits = self.cli_logs.read(desired, {n: r.launch_id for n, r in records.items()}, now)
        panes = self.tmux.observe()
        screens = self._capture(panes, desired)
        batch = PassBatch(
            events=[*usage_events, *log_events, *self._tmux_news()],
            cooldowns=dict(budget_cooldowns),
        )
        live = {name: pane for name, pane in panes.items() if not pane.dead}

        def observe(name: str, recorded: AgentRecord | None) -> AgentObservation:
            seen = self._observe(name, panes, screens, recorded)
            limit = log_limits.get(name)
            return replace(seen, log_limit=limit) if limit is not None else seen

        names = set(desired) | set(records) | set(broken)
        inputs = PassInputs(
            store_mark,
            desired,
            broken,
            panes,
            screens,
            log_limits,
            self._guard_reports,
            batch.cooldowns,
            datetime.now().astimezone().tzinfo,
        )
        steady = batch.empty and self._unsaved.empty and self.boundary.next_retry() is None
        steady = steady and not broken and self._reads.mark() == store_mark
        quiet = self._quiet.holds(inputs, now) if steady else None
        if quiet is not None:  # planning would change nothing (controller.quietpass)
            pids, until = quiet
            result = PassResult(pids, requeue_after=min(RESYNC_SECONDS, until - now))
        else:
            result = self._reconcile(now, desired, records, broken, names, observe, live, batch)
            steady = steady and batch.empty and self._reads.mark() == store_mark
            self._quiet.keep(inputs, self._memo.until(names) if steady else None, result.pids)
        self.boundary.forget({f"agent/{n}" for n in names} | self.runner.keys())
        self._memo.keep_only(names)
        retry = self.boundary.next_retry()
        if retry is not None:
            result.requeue_after = min(result.requeue_after, max(retry, 0.05))
        self._commit(batch)
        result.duration = time.monotonic() - started
        if result.duration > SLOW_PASS_SECONDS:
            log.warning("slow pass: %.0f ms", result.duration * 1000)
        return result

    def run_exits(self, exited: Mapping[str, int]) -> PassResult:
        """The fast path of a death: plan and act for just the agents whose process `exited`
        (agent -> pid, from its pidfd), before the full pass.

        The kernel's word is the observation: the pane whose process that was is dead, whether
        or not tmux has noticed yet, so tmux is not asked. Only these agents' rows are read, so
        the cost does not grow with the team; guard reports are the last pass's, and the full
        pass right after re-reads everything.
        """
        if self.breaker.open:  # no launch into a tmux that does not answer: the pass probes
            return PassResult()
        now = self.clock()
        self._reads.begin_pass()
        desired: dict[str, DesiredAgent] = {}
        records: dict[str, AgentRecord] = {}
        observations: dict[str, AgentObservation] = {}
        for name, pid in exited.items():
            recorded = self._unsaved.overlay_records(
                {name: r} if (r := self.store.agent_record(name)) is not None else {}
            ).get(name)
            if recorded is None or recorded.pid != pid:
                continue  # not the launch we watched: the full pass sorts it out
            stored = self.store.object("Agent", name)
            if stored is not None:
                parsed = self._parsed_agent(stored)
                if isinstance(parsed, str):
                    continue  # unreadable: the full pass isolates it
                desired[name] = parsed
            records[name] = recorded
            pane = PaneObservation(name, "", pid, True, 0, 0, recorded.launch_id)
            code = self.executor.exit_code(name, recorded.launch_id)
            observations[name] = AgentObservation(pane, code)

        def observe(name: str, recorded: AgentRecord | None) -> AgentObservation:
            return observations[name]

        batch = PassBatch()
        result = self._reconcile(now, desired, records, {}, set(observations), observe, {}, batch)
        self._commit(batch)
        return result

    def _reconcile(
        self,
        now: float,
        desired: Mapping[str, DesiredAgent],
        records: Mapping[str, AgentRecord],
        broken: Mapping[str, str],
        names: set[str],
        observe: Callable[[str, AgentRecord | None], AgentObservation],
        live: Mapping[str, PaneObservation],
        batch: PassBatch,
    ) -> PassResult:
        """Plan and act for each named agent inside its own error boundary, into `batch`.

        `live` are the live panes (watched even while an agent's handling fails); the fast
        path passes none: its agents' processes just ended."""
        pending = self._unsaved.overlay_messages(self._reads.pending_messages())
        cooldowns: dict[str, float | None] = {
            **self._reads.cooldowns(),
            **self._unsaved.cooldowns,
            **batch.cooldowns,
        }
        timezone = datetime.now().astimezone().tzinfo
        shared = _SharedFacts(now, timezone, cooldowns, self.installation)
        intents = self._reads.intents()
        signals = self._new_signals()
        result = PassResult()
        for name in sorted(names):
            recorded = records.get(name)
            pane = live.get(name)
            if recorded is not None and recorded.pid and pane is not None:
                result.pids[recorded.pid] = name  # watched even while its handling fails
            key = f"agent/{name}"
            if not self.boundary.due(key):
                continue
            if name in broken:
                self._isolate(name, recorded, broken[name], None, batch, now)
                continue
            try:
                observation = observe(name, recorded)
                if (guard := self._guard_reports.get(name)) is not None:
                    observation = replace(observation, guard=guard)
                message = self._message_for(name, desired.get(name), pending.get(name))
                inputs = PlanInputs(
                    desired.get(name),
                    recorded,
                    observation,
                    message,
                    tuple(signals.get(name, ())),
                    intents.get(name, NO_INTENT),
                    shared.cooldowns,
                    timezone,
                    self.installation,
                )
                if (quiet := self._memo.due(name, inputs, now)) is not None:
                    result.requeue_after = min(result.requeue_after, quiet - now)
                    if recorded is not None and recorded.pid is not None and observation.alive:
                        result.pids[recorded.pid] = name
                    continue  # planning it would change nothing (core.plan_memo)
                ctx = shared.context(
                    message, self._evidence(message, now), inputs.signals, inputs.intent
                )
                plan = plan_agent(name, desired.get(name), observation, recorded, ctx)
                if plan.answer is not None:
                    self.store.finish_answers([plan.answer])  # before typing: never twice
                record = self._act(name, desired.get(name), plan, recorded, batch)
                shared.cooldowns.update(batch.cooldowns)  # later agents see new cooldowns at once
            except Exception as err:  # noqa: BLE001 - the agent's error boundary
                self._memo.forget(name)
                self._isolate(name, recorded, describe_error(err), err, batch, now)
                continue
            if record is not None and self.boundary.succeeded(key):
                record = replace(
                    record,
                    conditions=set_condition(record.conditions, recovered_condition(now)),
                )
            self._memo.remember(name, inputs, plan, record, now)
            if record is not recorded and record != recorded:  # `is`: idle passes, cheaply
                batch.records[name] = record
            if plan.requeue_after is not None:
                result.requeue_after = min(result.requeue_after, plan.requeue_after)
            if record is not None and record.pid is not None and observation.alive:
                result.pids[record.pid] = name
        for agent_signals in signals.values():
            self._signal_cursor = max(self._signal_cursor, agent_signals[-1].id)
        return result

    def _keep_logging(self) -> list[Event]:
        """Keep the installation's one log writer running; when the one this controller started
        had died (a full disk, a kill), a Warning on every agent with a live pane says its log
        has a gap, so pane logs never stop for good or silently."""
        if not self.log_writer.ensure():
            return []
        return [
            Event(
                f"agent/{pane.session}",
                EventType.WARNING,
                "LogWriterRestarted",
                "the pane log writer had stopped; restarted it (output meanwhile is not logged)",
            )
            for pane in self.tmux.observe().values()
            if not pane.dead and pane.installation == self.installation
        ]

    def _message_for(
        self, name: str, desired: DesiredAgent | None, head: QueuedMessage | None
    ) -> QueuedMessage | None:
        """The agent's next message, unless it was queued for an earlier agent of this name:
        those are dropped (with an event), never delivered to the new one."""
        if head is None or desired is None or not head.agent_uid or head.agent_uid == desired.uid:
            return head
        dropped = self.store.drop_messages(
            name,
            desired.uid,
            Event(
                f"agent/{name}",
                EventType.WARNING,
                "MessagesDropped",
                "dropped messages queued for an earlier agent of this name",
            ),
        )
        log.info("agent %s: dropped %d messages queued for a deleted agent", name, dropped)
        return None

    def _act(
        self,
        name: str,
        desired: DesiredAgent | None,
        plan: AgentPlan,
        recorded: AgentRecord | None,
        batch: PassBatch,
    ) -> AgentRecord | None:
        """Carry out a plan with write-ahead: intend, act, then keep the plan only if every
        action happened. A failed action leaves the recorded state as it was (with the error
        published) and backs the agent off; the next try plans afresh."""
        if not plan.actions:
            batch.add_plan(plan)
            return plan.record
        if any(isinstance(action, KEYSTROKES) for action in plan.actions):
            return self._type(name, plan, batch)
        uid = desired.uid if desired else (recorded.uid if recorded else "")
        try:
            intent: int | None = self.store.intend(
                f"agent/{name}", uid, plan.actions, plan.record, plan.message
            )
        except StoreUnavailable:
            # The store refuses writes: supervise from memory where tmux keeps the evidence
            # (a relaunch of a crashed agent); hold keys and pastes until it can record them.
            if not all(isinstance(action, SELF_EVIDENT) for action in plan.actions):
                raise
            intent = None
        for launch in (a for a in plan.actions if isinstance(a, Launch)):
            why = "; ".join(event.message for event in plan.events) or "no event"
            log.info("launching %s as %s (%s)", name, launch.launch_id, why)
        failpoint(self._failpoint, "after-intent", plan.actions)
        outcomes = self.executor.execute(plan.actions)
        failpoint(self._failpoint, "after-act", plan.actions)
        error = first_error(outcomes)
        batch.events.extend(event for outcome in outcomes for event in outcome.events)
        if all_done(outcomes):
            if intent is not None:
                batch.settled[intent] = ("done", "")
            batch.add_plan(plan)
            record = plan.record
            launched = next((o for o in outcomes if o.pid is not None), None)
            if record is None or launched is None:
                return record
            return replace(record, pid=launched.pid, signals=launched.signals)
        if intent is not None:
            batch.settled[intent] = ("failed", error)
        batch.events.append(Event(f"agent/{name}", EventType.WARNING, "ActionFailed", error))
        if target_gone(outcomes):  # the session died meanwhile: the next pass sees why, at once
            return recorded
        self.boundary.failed(f"agent/{name}", error)
        base = recorded or (plan.record and AgentRecord.new(name, plan.record.since))
        if base is None:
            return None
        return replace(
            base, conditions=set_condition(base.conditions, error_condition(error, self.clock()))
        )

    def _type(self, name: str, plan: AgentPlan, batch: PassBatch) -> AgentRecord | None:
        """Carry out a plan that types (pastes, Enters, keys), written ahead by delivery's own
        scheme rather than an intent: the plan's record and message are committed before the
        keystroke and settled right after it. A controller that dies in between leaves the
        message's phase (resolved from the pane log) or the record's `keys_sent_at` for the
        next one, so no keystroke is sent twice or lost without a trace."""
        message = plan.message
        if message is not None and message.phase is Phase.PASTING:
            message = self._mark_log(message)
        self.store.write_ahead(name, plan.record, message)  # refused: nothing is typed
        failpoint(self._failpoint, "after-intent", plan.actions)
        outcomes = self.executor.execute(plan.actions)
        failpoint(self._failpoint, "after-act", plan.actions)
        batch.events.extend(event for outcome in outcomes for event in outcome.events)
        failed = [outcome for outcome in outcomes if not outcome.done]
        record = plan.record
        if record is not None:
            record = settle_keys(record, bool(failed))
        if message is not None:
            definite = all(outcome.definite for outcome in failed)
            message = settle(message, bool(failed), definite, self.clock())
        if failed:
            batch.events.append(
                Event(f"agent/{name}", EventType.WARNING, "ActionFailed", first_error(outcomes))
            )
        self.store.write_ahead(name, record, message)
        batch.add_plan(replace(plan, message=message))
        return record

    def _isolate(
        self,
        name: str,
        recorded: AgentRecord | None,
        message: str,
        error: BaseException | None,
        batch: PassBatch,
        now: float,
    ) -> None:
        """An agent that could not be handled: back it off, publish why, leave the rest alone."""
        news = self.boundary.failed(f"agent/{name}", message, error)
        if news:
            batch.events.append(
                Event(f"agent/{name}", EventType.WARNING, "ReconcileError", message)
            )
        if recorded is not None:
            conditions = set_condition(recorded.conditions, error_condition(message, now))
            if conditions != recorded.conditions:
                batch.records[name] = replace(recorded, conditions=conditions)

    def _commit(self, batch: PassBatch) -> None:
        """Persist the pass; if the store refuses (locked, disk full), keep it in memory, go on
        supervising from it, and try again with the next pass."""
        pending = self._unsaved.merged(batch)
        try:
            pending.commit(self.store)
        except StoreUnavailable as err:
            if not self._unsaved.records and not self._unsaved.settled:
                log.warning("%s; supervising from memory and retrying", err)
            self._unsaved = pending
            return
        self._unsaved = PassBatch()

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
            captured_at = self.clock()
            for name, text in self.tmux.capture_many(stale).items():
                pane = live[name]
                self._screens[name] = CachedScreen(pane.pane_id, pane.activity, captured_at, text)
        for name in set(self._screens) - set(live):
            del self._screens[name]
        local_now = None  # read only for a screen to classify: most passes have none
        for name, cached in self._screens.items():
            agent, cursor = desired[name], live[name].cursor_y
            seen_for = (cached.generation, cached.cursor_y)
            if cached.verdict is None or seen_for != (agent.generation, cursor):
                local_now = local_now or local_datetime(self.clock())
                verdict = classify(cached.text, agent.agent.spec, local_now, cursor)
                self._screens[name] = replace(
                    cached, verdict=verdict, generation=agent.generation, cursor_y=cursor
                )
        return dict(self._screens)

    def _desired(self) -> tuple[dict[str, DesiredAgent], dict[str, str]]:
        """Desired agents, parsed once per object (uid) and generation; and why each agent whose
        stored spec does not validate (written by another orch version) could not be read.
        Worked out again only once the store changed."""
        desired, broken = self._reads.kept("desired", self._read_desired)
        return dict(desired), dict(broken)

    def _read_desired(self) -> tuple[dict[str, DesiredAgent], dict[str, str]]:
        desired: dict[str, DesiredAgent] = {}
        broken: dict[str, str] = {}
        in_use: set[tuple[str, int]] = set()
        for name, uid, generation in self._reads.agent_versions():
            parsed = self._parsed.get((uid, generation))
            if parsed is None:  # new or changed: read its document (only then)
                stored = self.store.object("Agent", name)
                if stored is None:
                    continue  # deleted meanwhile
                parsed = self._parsed_agent(stored)
                uid, generation = stored.uid, stored.generation
            if isinstance(parsed, str):
                broken[name] = parsed
            else:
                desired[name] = parsed
            in_use.add((uid, generation))
        for key in set(self._parsed) - in_use:
            del self._parsed[key]
        return desired, broken

    def _parsed_agent(self, stored: StoredObject) -> DesiredAgent | str:
        """The agent of a stored object, parsed once per uid and generation (a str: why its
        stored spec cannot be read)."""
        key = (stored.uid, stored.generation)
        if key not in self._parsed:
            self.boundary.retry_now(f"agent/{stored.name}")  # the change may be the fix
            try:
                agent = agent_from(stored.document, self.paths)
            except Exception as err:  # noqa: BLE001 - one unreadable spec marks one agent
                self._parsed[key] = f"stored spec unreadable: {describe_error(err)}"
            else:
                self._parsed[key] = DesiredAgent(agent, stored.generation, stored.uid)
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
            return AgentObservation(
                None,
                self.executor.exit_code(name, launch_id),
                stopping_until=self.stopper.kill_at(launch_id) if launch_id else None,
            )
        cached = screens.get(name)
        if cached is None:
            return AgentObservation(pane)
        return AgentObservation(pane, screen=cached.text, verdict=cached.verdict)

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


@dataclass(frozen=True)
class _SharedFacts:
    """Facts of the moment shared by every agent's plan in a pass."""

    now: float
    timezone: tzinfo | None
    cooldowns: dict[str, float | None]
    installation: str

    def context(
        self,
        message: QueuedMessage | None,
        evidence: Evidence | None,
        signals: tuple[AgentSignal, ...],
        intent: AgentIntent,
    ) -> PlanContext:
        active = {a: until for a, until in self.cooldowns.items() if until is not None}
        return PlanContext(
            self.now,
            self.timezone,
            active,
            message,
            evidence=evidence,
            signals=signals,
            intent=intent,
            installation=self.installation,
        )


#: The longest failpoint name read from the state dir.
FAILPOINT_MAX_BYTES = 64


def take_failpoint(paths: StatePaths) -> str:
    """The point the fault-injection tests armed in the state dir for this controller (read
    and removed, so the controller after it runs normally); "" when none is armed."""
    try:
        with paths.failpoint.open("rb") as armed:
            wanted = armed.read(FAILPOINT_MAX_BYTES).decode("ascii", "replace").strip()
        paths.failpoint.unlink(missing_ok=True)
    except OSError:
        return ""
    return wanted


def failpoint(wanted: str, name: str, actions: tuple[Action, ...]) -> None:
    """Die here at once (SIGKILL) when `wanted` names this point (`after-act`) or this point
    for one kind of action (`after-act:Launch`): how the fault-injection tests stop a controller
    right before or after a side effect. Never armed in production."""
    if wanted and wanted in (name, *(f"{name}:{type(a).__name__}" for a in actions)):
        os.kill(os.getpid(), signal.SIGKILL)


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
