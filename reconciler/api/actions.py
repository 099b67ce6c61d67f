"""What the planner asks the executor to do. Pure data; only the executor touches tmux."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Launch:
    """Start the agent's session; first end `previous_launch` (its session and leftovers)."""

    agent: str
    command: str
    workdir: str
    env: Mapping[str, str] = field(repr=False)
    """Values may be secrets: kept out of repr, and so out of logs."""
    launch_id: str
    previous_launch: str = ""
    replace_session: bool = False
    secret_files: Mapping[str, str] = field(default_factory=dict)
    """Variables whose value the executor reads from a file at launch (`valueFrom.file`)."""
    profile: str = "generic"
    signals: bool = False  # wire the profile's own signals (spec.signals: auto)


@dataclass(frozen=True)
class Stop:
    """End the agent's session and every process of that launch, children and daemons included."""

    agent: str
    launch_id: str
    pid: int | None = None
    kill_session: bool = True


@dataclass(frozen=True)
class Forget:
    """Drop a deleted agent's record once nothing of it runs any more."""

    agent: str


@dataclass(frozen=True)
class SendKeys:
    """Type `literal` (if any), then press `keys` (tmux key names): answers to prompts."""

    agent: str
    literal: str = ""
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Paste:
    """Paste `text` into the agent as one bracketed paste (no Enter)."""

    agent: str
    text: str


@dataclass(frozen=True)
class PressEnter:
    """Submit what the agent's input holds."""

    agent: str


Action = Launch | Stop | Forget | SendKeys | Paste | PressEnter
