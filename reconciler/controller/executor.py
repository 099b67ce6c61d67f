"""Carries out the planner's actions: the only code that starts and stops agents.

Each action is attempted on its own; a failure becomes a Warning event and is reported with the
outcome (`Outcome.failures`), so the caller records only what happened; the next pass (which
re-observes everything) decides again.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.adapters.agentlog import fifo_path, make_fifo, pipe_command
from reconciler.adapters.git import remove_worktree_if_clean
from reconciler.adapters.logwriter import notify_new_fifo
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.processes import stop_launch
from reconciler.adapters.secrets import read_secret
from reconciler.adapters.signal_files import root_only, write_private
from reconciler.adapters.tmux import Tmux
from reconciler.api.actions import Action, Forget, Launch, Paste, PressEnter, SendKeys, Stop
from reconciler.api.errors import OrchError, Unavailable
from reconciler.api.status import AgentRecord, Event, EventType
from reconciler.core.sanitize import clean_message
from reconciler.core.signal_wiring import Wiring, wire

log = logging.getLogger(__name__)

#: The pane runs the user's command through /bin/sh and records how it ended, because tmux 3.3a
#: can lose `#{pane_dead_status}` to a SIGCHLD race with libutempter.
WRAPPER = '{command}\nprintf \'%s\' "$?" > "$ORCH_EXIT_FILE"'


@dataclass(frozen=True)
class Failure:
    """An action that failed; `definite`: it surely did nothing (tmux refused it), as opposed to
    a timeout or a lost server, after which it may or may not have happened."""

    action: Action
    error: str
    definite: bool


@dataclass
class Outcome:
    """What executing one agent's actions changed beyond the plan: the new pid, failures."""

    record: AgentRecord | None
    events: list[Event] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class Executor:
    """Executes actions for one installation (state dir + tmux socket)."""

    tmux: Tmux
    paths: StatePaths
    socket: str

    def execute(self, record: AgentRecord | None, actions: tuple[Action, ...]) -> Outcome:
        """Run `actions` for one agent; return its record with what only execution learns."""
        outcome = Outcome(record)
        for action in actions:
            try:
                self._run(action, outcome)
            except (OrchError, OSError) as err:
                log.warning("action %s failed: %s", action, err, exc_info=True)
                definite = not isinstance(err, Unavailable)
                outcome.failures.append(Failure(action, str(err), definite))
                outcome.events.append(
                    Event(
                        f"agent/{action.agent}",
                        EventType.WARNING,
                        "ActionFailed",
                        f"{type(action).__name__.lower()} failed: {err}",
                    )
                )
        return outcome

    def _run(self, action: Action, outcome: Outcome) -> None:
        if isinstance(action, Launch):
            pid, signals = self._launch(action)
            if outcome.record is not None:
                outcome.record = replace(outcome.record, pid=pid, signals=signals)
        elif isinstance(action, Stop):
            if action.kill_session:
                self.tmux.kill_session(action.agent)
            if action.launch_id:
                stop_launch(action.launch_id, ())
        elif isinstance(action, Forget):
            self._remove_exit_files(action.agent)
            self._remove_worktree(action.agent, outcome)
        elif isinstance(action, Paste):
            self.tmux.paste(action.agent, clean_message(action.text))
        elif isinstance(action, PressEnter):
            self.tmux.send_keys(action.agent, ["Enter"])
        elif isinstance(action, SendKeys):
            if action.literal:
                self.tmux.send_literal(action.agent, clean_message(action.literal))
            if action.keys:
                self.tmux.send_keys(action.agent, list(action.keys))

    def _launch(self, action: Launch) -> tuple[int, str]:
        """Start the agent's session; its pid and where its activity is read (hooks/screen)."""
        workdir = Path(action.workdir)
        if not workdir.is_dir():
            if action.replace_session:
                self.tmux.kill_session(action.agent)  # the old session goes either way
            raise OrchError(f"workdir {workdir} does not exist")
        agent_dir = self.paths.agent_dir(action.agent)
        agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._remove_exit_files(action.agent)
        fifo = fifo_path(agent_dir)
        make_fifo(fifo)
        notify_new_fifo(self.paths.root)
        wiring = self._wiring(action, agent_dir)
        write_private(wiring.files)
        pane = self.tmux.start(
            action.agent,
            WRAPPER.format(command=wiring.command(action.command)),
            str(workdir),
            {**self._environment(action), **wiring.env},
            launch_id=action.launch_id,
            pipe_command=pipe_command(fifo),
            env_dir=agent_dir,
            replace=action.replace_session,
        )
        if action.previous_launch:
            # Leftovers of the previous launch (children, daemons) go after the new process runs,
            # so a restart is not delayed by a slow-dying tree.
            stop_launch(action.previous_launch, ())
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

    def _remove_worktree(self, agent: str, outcome: Outcome) -> None:
        """A deleted agent's clean worktree goes; a dirty one stays, and a Warning says where."""
        path = self.paths.worktree(agent)
        dirty = remove_worktree_if_clean(path)
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            outcome.events.append(
                Event(
                    f"agent/{agent}",
                    EventType.WARNING,
                    "WorktreeKept",
                    f"worktree {path} kept: uncommitted changes in {shown}",
                )
            )

    def _remove_exit_files(self, agent: str) -> None:
        agent_dir = self.paths.agent_dir(agent)
        if agent_dir.is_dir():
            for exit_file in agent_dir.glob("exit-*"):
                exit_file.unlink(missing_ok=True)

    def exit_code(self, agent: str, launch_id: str) -> int | None:
        """The exit code the wrapper recorded for a launch, if its process has ended."""
        if not launch_id:
            return None
        try:
            text = self.paths.exit_file(agent, launch_id).read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None
