"""Where an installation keeps its files inside the state dir, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StatePaths:
    """The files of one orch installation (one state dir)."""

    root: Path

    @property
    def lock(self) -> Path:
        """Held by the one controller of this state dir."""
        return self.root / "controller.lock"

    @property
    def pid(self) -> Path:
        """The running controller's pid, for `orch` and for tests to find it."""
        return self.root / "controller.pid"

    @property
    def log(self) -> Path:
        """The controller's own log, with tracebacks users never see on the console."""
        return self.root / "controller.log"

    @property
    def wake(self) -> Path:
        """A FIFO: a byte written here wakes the controller for an early pass."""
        return self.root / "controller.wake"

    def worktree(self, agent: str) -> Path:
        """The agent's git worktree, when its spec asks for one."""
        return self.root / "worktrees" / agent

    @property
    def installation(self) -> Path:
        """This installation's id, stamped on every tmux session it starts."""
        return self.root / "installation-id"

    def agent_dir(self, agent: str) -> Path:
        """Per-agent files: exit codes, logs, backups."""
        return self.root / "agents" / agent

    def backups(self, agent: str) -> list[Path]:
        """An agent's guard backups, oldest first."""
        folder = self.agent_dir(agent) / "backups"
        return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def exit_file(self, agent: str, launch_id: str) -> Path:
        """Where the pane's wrapper writes the agent's exit code for one launch."""
        return self.agent_dir(agent) / f"exit-{launch_id}"


def installation_id(paths: StatePaths) -> str:
    """The id of the installation in this state dir, made on first use.

    Stamped on the sessions it starts (`@orch_install`), so a controller adopts only its own
    sessions, never another installation's that shares the tmux socket or a stranger's session
    that happens to carry an agent's name.
    """
    try:
        return paths.installation.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        fd = os.open(paths.installation, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return paths.installation.read_text().strip()
    with os.fdopen(fd, "w") as file:
        import uuid  # only the first use of a state dir makes an id

        file.write(f"{uuid.uuid4()}\n")
    return paths.installation.read_text().strip()
