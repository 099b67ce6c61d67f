"""Where an installation keeps its files inside the state dir, in one place.

Every CLI command builds a StatePaths; only the controller makes an installation id, so `uuid`
and the atomic writer (tempfile, shutil: about 10 ms of a command's start-up) are imported there.
"""

from __future__ import annotations

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

    @property
    def failpoint(self) -> Path:
        """The fault-injection tests' one-shot hook: the next controller to start takes (and
        removes) the point named here and kills itself there (controller.loop.failpoint)."""
        return self.root / "failpoint"

    def agent_dir(self, agent: str) -> Path:
        """Per-agent files: exit codes, logs, backups."""
        return self.root / "agents" / agent

    def backups(self, agent: str) -> list[Path]:
        """An agent's guard backups, oldest first."""
        folder = self.agent_dir(agent) / "backups"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def exit_file(self, agent: str, launch_id: str) -> Path:
        """Where the pane's wrapper writes the agent's exit code for one launch."""
        return self.agent_dir(agent) / f"exit-{launch_id}"


def installation_id(paths: StatePaths) -> str:
    """The id of the installation in this state dir, made on first use.

    Stamped on the panes it starts (their launch file's name), so a controller adopts only its own
    sessions, never another installation's that shares the tmux socket or a stranger's session
    that happens to carry an agent's name.
    """
    try:
        known: str | None = paths.installation.read_text().strip()
    except FileNotFoundError:
        known = None
    if known is not None and _is_uuid(known):
        return known
    import uuid

    from reconciler.adapters.atomic import write_atomic

    # None yet, or a torn one (written by an orch that crashed mid-write, before writes were
    # atomic): an empty id would match every unstamped session, so it is never used.
    made = f"{uuid.uuid4()}\n".encode()
    write_atomic(paths.installation, made, exclusive=known is None)
    return paths.installation.read_text().strip()


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
