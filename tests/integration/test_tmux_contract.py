"""Our raw tmux adapter held against libtmux, an independent reading of the same server.

The adapter parses one hand-written `list-panes -a` format on the hot path (see adapters/tmux.py
for why it is not libtmux). libtmux reads the same server through its own object model, so the two
agreeing on names, panes, pids, creation times, launch stamps and screens is a check on our format
and parser that does not share their code.
"""

from __future__ import annotations

from pathlib import Path

import libtmux
import pytest

from reconciler.adapters.tmux import Tmux
from tests.helpers import wait_until
from tests.integration.test_tmux_adapter import agent_script, start_agent


@pytest.mark.tmux
def test_observe_agrees_with_libtmux(tmux: Tmux, tmp_path: Path) -> None:
    for name in ("alpha", "beta-2"):
        start_agent(tmux, name, tmp_path)
    tmux.start("gamma", agent_script("--name", "gamma"), str(tmp_path), {}, launch_id="L-7")

    server = libtmux.Server(socket_name=tmux.socket_name)
    observed = tmux.observe()

    assert sorted(observed) == sorted(s.session_name or "" for s in server.sessions)
    for session in server.sessions:
        pane = session.active_window.active_pane
        assert pane is not None
        seen = observed[session.session_name or ""]
        assert (seen.pane_id, seen.pid, seen.created) == (
            pane.pane_id,
            int(pane.pane_pid or 0),
            int(session.session_created or 0),
        )
        assert seen.launch_id == (session.show_option("@orch_launch") or "")


@pytest.mark.tmux
def test_capture_agrees_with_libtmux(tmux: Tmux, tmp_path: Path) -> None:
    start_agent(tmux, "alpha", tmp_path)
    pane = libtmux.Server(socket_name=tmux.socket_name).sessions[0].active_window.active_pane
    assert pane is not None

    def same_screen() -> bool:
        ours = tmux.capture_many(["alpha"])["alpha"].rstrip("\n").splitlines()
        return [line.rstrip() for line in ours] == [line.rstrip() for line in pane.capture_pane()]

    wait_until(same_screen, what="the same screen through both readings")


@pytest.mark.tmux
def test_cursor_row_agrees_with_libtmux(tmux: Tmux, tmp_path: Path) -> None:
    start_agent(tmux, "alpha", tmp_path)
    pane = libtmux.Server(socket_name=tmux.socket_name).sessions[0].active_window.active_pane
    assert pane is not None

    def same_cursor() -> bool:
        pane.refresh()
        return tmux.observe()["alpha"].cursor_y == int(pane.cursor_y or -1)

    wait_until(same_cursor, what="the same cursor row through both readings")
