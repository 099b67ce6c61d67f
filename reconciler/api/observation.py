"""What the supervisor sees of one agent's tmux pane in one observation pass.

Pure data: the tmux adapter builds these from a single `list-panes -a` call and the planner reads
them. Nothing here talks to tmux, so the pure core can import it freely.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PaneObservation:
    """One pane as tmux reported it.

    `activity` is `#{window_activity}`: epoch seconds of the pane's last output byte (1 s
    resolution; one pane per window makes it per pane). `created` is `#{session_created}`, which
    tells a restarted session from the one observed before it under the same name. `launch_id`
    is the launch the pane was started for (in its start command: the launch file's name), so a
    controller that died between starting a session and recording it still knows whose it is.
    `attached`: a client (a person, through `orch attach`) is attached to the session.
    `cursor_y` is the cursor's row on the visible screen (`#{cursor_y}`; None when unknown): a
    program that asks on its cursor's line waits on that row's question, not on older ones.
    """

    session: str
    pane_id: str
    pid: int
    dead: bool
    activity: int
    created: int
    launch_id: str = ""
    attached: bool = False
    installation: str = ""  # the installation that started it (the launch file's name too)
    cursor_y: int | None = None
