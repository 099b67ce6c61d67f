"""What an agent is doing right now: busy with a turn, idle at its input, or waiting on a human.

Pure data. The screen gives one verdict (reconciler.core.screen); the agent's own signals will
give another (see `reconciler.core.activity.current_activity`, the one place they are combined).
"""

from __future__ import annotations

from enum import StrEnum


class Activity(StrEnum):
    """`status.activity`: a turn in progress, the empty input, a question, or cannot tell."""

    BUSY = "Busy"
    IDLE = "Idle"
    WAITING = "Waiting"
    UNKNOWN = "Unknown"
