"""Carries out the planner's actions: the only code that starts and stops agents.

`execute` reports an `Outcome` per action: done (with what only doing it learns, such as a new
pid) or failed (with the error). Once an action fails the ones after it are not attempted. The
loop commits a plan only when every action of it was done; otherwise it keeps the recorded state,
publishes the error and retries with backoff (see docs/architecture.md, "Write-ahead").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.agentlog import fifo_path, make_fifo, pipe_command
from reconciler.adapters.baseline import remove_guard_files
from reconciler.adapters.git import remove_worktree_if_clean
from reconciler.adapters.logwriter import notify_new_fifo
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.secrets import read_secret
from reconciler.adapters.signal_files import root_only, start_logs_afresh, write_private
from reconciler.adapters.tmux import Tmux
from reconciler.api.actions import Action, Forget, Launch, Paste, PressEnter, SendKeys, Stop
from reconciler.api.errors import NotFound, OrchError, Unavailable
from reconciler.api.history import Event, EventType
from reconciler.controller.stopper import Stopper
from reconciler.core.sanitize import clean_message
from reconciler.core.signal_wiring import Wiring, wire

log = logging.getLogger(__name__)

#: The pane runs the user's command through /bin/sh and records how it ended, because tmux 3.3a
#: can lose `#{pane_dead_status}` to a SIGCHLD race with libutempter.
WRAPPER = '{command}\nprintf \'%s\' "$?" > "$ORCH_EXIT_FILE"'
#: The files of one launch in its agent's folder: the exit code the wrapper wrote (StatePaths
#: `exit_file`), and the launch and env files of Tmux.start.
LAUNCH_FILE_PREFIXES = ("exit-", "launch-", "env-")


@dataclass(frozen=True)
class Outcome:
    """What happened to one action: done, or failed with `error` (`pid`: a launch's new pid)."""

    action: Action
    done: bool
    error: str = ""
    pid: int | None = None
    signals: str = ""  # a launch's signal wiring (`hooks` or `screen`)
    events: tuple[Event, ...] = ()  # what doing it found out (e.g. a worktree kept)
    gone: bool = False  # failed because its target no longer exists: the next pass sees why
    # A failure that surely did nothing (tmux refused it), as opposed to a timeout or a lost
    # server, after which it may or may not have happened.
    definite: bool = True


def _remove(paths: list[str]) -> None:
    """Remove leftover launch files; one that cannot go now is found again at the next launch
    or deletion (never an error: at a launch this runs after the new process started)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def all_done(outcomes: list[Outcome]) -> bool:
    """Every action happened: the plan they belong to may be committed."""
    return all(outcome.done for outcome in outcomes)


def target_gone(outcomes: list[Outcome]) -> bool:
    """The first failure was only that the agent's session had gone (it died meanwhile)."""
    failed = next((o for o in outcomes if not o.done), None)
    return failed is not None and failed.gone


def first_error(outcomes: list[Outcome]) -> str:
    """The failed action and its error, as one line ("" when all were done)."""
    failed = next((o for o in outcomes if not o.done), None)
    if failed is None:
        return ""
    return f"{type(failed.action).__name__.lower()} failed: {failed.error}"


@dataclass(frozen=True)
class Executor:
    """Executes actions for one installation (state dir + tmux socket)."""

    tmux: Tmux
    paths: StatePaths
    socket: str
    stopper: Stopper
    installation: str

    def execute(self, actions: tuple[Action, ...]) -> list[Outcome]:
        """Run one agent's `actions` in order; an Outcome for each (after a failure, the rest are
        failed as not attempted). Errors other than OrchError/OSError are bugs and propagate."""
        outcomes: list[Outcome] = []
        for action in actions:
            if outcomes and not outcomes[-1].done:
                outcomes.append(Outcome(action, False, "not attempted: an earlier action failed"))
                continue
            try:
                outcomes.append(self._run(action))
            except (OrchError, OSError) as err:
                log.warning("action %s failed: %s", action, err)
                error = str(err) or type(err).__name__
                outcomes.append(
                    Outcome(
                        action,
                        False,
                        error,
                        gone=isinstance(err, NotFound),
                        definite=not isinstance(err, Unavailable),
                    )
                )
        return outcomes

    def _run(self, action: Action) -> Outcome:
        """Do `action`; its (done) Outcome, or OrchError/OSError when it failed."""
        if isinstance(action, Launch):
            pid, signals = self._launch(action)
            return Outcome(action, True, pid=pid, signals=signals)
        if isinstance(action, Stop):
            if action.kill_session:
                self.tmux.kill_session(action.agent)
            self.stopper.stop(action.agent, action.launch_id)  # the rest off the loop
        elif isinstance(action, Forget):
            _remove(self._launch_files(action.agent))
            remove_guard_files(self.paths.agent_dir(action.agent))
            return Outcome(action, True, events=self._remove_worktree(action.agent))
        elif isinstance(action, Paste):
            self.tmux.paste(action.agent, clean_message(action.text))
        elif isinstance(action, PressEnter):
            self.tmux.send_keys(action.agent, ["Enter"])
        elif isinstance(action, SendKeys):
            if action.literal:
                self.tmux.send_literal(action.agent, clean_message(action.literal))
            if action.keys:
                self.tmux.send_keys(action.agent, list(action.keys))
        return Outcome(action, True)

    def _launch(self, action: Launch) -> tuple[int, str]:
        """Start the agent's session; its pid and where its activity is read (hooks/screen)."""
        workdir = Path(action.workdir)
        if not workdir.is_dir():
            if action.replace_session:
                self.tmux.kill_session(action.agent)  # the old session goes either way
            raise OrchError(f"workdir {workdir} does not exist")
        agent_dir = self.paths.agent_dir(action.agent)
        agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        leftovers = self._launch_files(action.agent)
        fifo = fifo_path(agent_dir)
        make_fifo(fifo)
        wiring = self._wiring(action, agent_dir)
        write_private(wiring.files)
        start_logs_afresh(wiring.logs)
        pane = self.tmux.start(
            action.agent,
            WRAPPER.format(command=wiring.command(action.command)),
            str(workdir),
            {**self._environment(action), **wiring.env},
            launch_id=action.launch_id,
            pipe_command=pipe_command(fifo),
            env_dir=agent_dir,
            replace=action.replace_session,
            installation=self.installation,
        )
        # The log writer opens the new FIFO only now: waking it (a context switch on a busy
        # machine) is not on the way to the new process, whose output waits in the FIFO.
        notify_new_fifo(self.paths.root)
        _remove(leftovers)  # after the start: unlinking them is not on the way to the new process
        # Leftovers of the previous launch (children, daemons) go after the new process runs,
        # and off the loop, so a restart is not delayed by a slow-dying tree.
        self.stopper.stop(action.agent, action.previous_launch)
        return pane.pid, wiring.mode

    def _wiring(self, action: Launch, agent_dir: Path) -> Wiring:
        """The CLI's own signals wired to `orch signal` (this very orch, this state dir)."""
        if not action.signals:
            return Wiring()
        return wire(
            action.profile,
            action.agent,
            (sys.executable, "-m", "reconciler"),
            str(self.paths.root),
            str(agent_dir),
            system_settings_ok=action.profile == "gemini" and root_only(agent_dir),
        )

    def _environment(self, action: Launch) -> Mapping[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        path = os.environ.get("PATH", "")
        return {
            **action.env,
            **{name: read_secret(file) for name, file in action.secret_files.items()},
            "ORCH_AGENT_NAME": action.agent,
            "ORCH_STATE_DIR": str(self.paths.root),
            "ORCH_TMUX_SOCKET": self.socket,
            "ORCH_LAUNCH_ID": action.launch_id,
            "ORCH_EXIT_FILE": str(self.paths.exit_file(action.agent, action.launch_id)),
            # The agent can run `orch send` itself: the orch that launched it comes first on PATH.
            "PATH": action.env.get("PATH", f"{bin_dir}:{path}" if path else bin_dir),
        }

    def _remove_worktree(self, agent: str) -> tuple[Event, ...]:
        """A deleted agent's clean worktree goes; a dirty one stays, and a Warning says where."""
        path = self.paths.worktree(agent)
        dirty = remove_worktree_if_clean(path)
        if not dirty:
            return ()
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        return (
            Event(
                f"agent/{agent}",
                EventType.WARNING,
                "WorktreeKept",
                f"worktree {path} kept: uncommitted changes in {shown}",
            ),
        )

    def _launch_files(self, agent: str) -> list[str]:
        """Earlier launches' exit and launch files, and env files an earlier controller process
        left: their shells have ended, or end with the session this launch replaces."""
        try:
            with os.scandir(self.paths.agent_dir(agent)) as entries:
                return [e.path for e in entries if e.name.startswith(LAUNCH_FILE_PREFIXES)]
        except FileNotFoundError:
            return []

    def exit_code(self, agent: str, launch_id: str) -> int | None:
        """The exit code the wrapper recorded for a launch, if its process has ended."""
        if not launch_id:
            return None
        try:
            text = self.paths.exit_file(agent, launch_id).read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None
