"""Our raw tmux adapter held against libtmux, an independent reading of the same server; and the
in-memory tmux of the wiring tests (tests/fakes/fake_tmux.py) held to the real adapter's contract.

The adapter parses one hand-written `list-panes -a` format on the hot path (see adapters/tmux.py
for why it is not libtmux). libtmux reads the same server through its own object model, so the two
agreeing on names, panes, pids, creation times, launch stamps and screens is a check on our format
and parser that does not share their code.
"""

from __future__ import annotations

import re
from pathlib import Path

import libtmux
import pytest

from reconciler.adapters.tmux import SessionExists, Tmux
from reconciler.api.errors import InvalidInput, NotFound
from tests.fakes.fake_tmux import FakeTmux
from tests.helpers import wait_until
from tests.integration.test_tmux_adapter import agent_script, start_agent


@pytest.mark.tmux
def test_observe_agrees_with_libtmux(tmux: Tmux, tmp_path: Path) -> None:
    for name in ("alpha", "beta-2"):
        start_agent(tmux, name, tmp_path)
    tmux.start(
        "gamma",
        agent_script("--name", "gamma"),
        str(tmp_path),
        {},
        launch_id="L-7",
        installation="i-1",
    )

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
        stamp = re.search(r"/launch-([^./]*)\.([^./]*)\.", pane.pane_start_command or "")
        assert stamp is not None
        assert (seen.installation, seen.launch_id) == stamp.groups()
    assert (observed["gamma"].installation, observed["gamma"].launch_id) == ("i-1", "L-7")


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


@pytest.fixture(params=["real", "fake"])
def either_tmux(request: pytest.FixtureRequest) -> Tmux:
    """The real adapter on a private server, or the fake the wiring tests use."""
    if request.param == "fake":
        return FakeTmux()
    real: Tmux = request.getfixturevalue("tmux")
    return real


@pytest.mark.tmux
def test_fake_tmux_keeps_the_adapters_contract(either_tmux: Tmux, tmp_path: Path) -> None:
    tmux = either_tmux
    assert tmux.observe() == {}
    assert tmux.capture_many(["alpha"]) == {}
    started = tmux.start("alpha", "sleep 300", str(tmp_path), {}, launch_id="L-1", installation="i")
    seen = tmux.observe()["alpha"]
    assert (seen.pane_id, seen.pid, seen.dead) == (started.pane_id, started.pid, False)
    assert (seen.launch_id, seen.installation) == ("L-1", "i")
    assert tmux.session_exists("alpha") and not tmux.session_exists("beta")
    with pytest.raises(SessionExists):
        tmux.start("alpha", "sleep 300", str(tmp_path), {})
    tmux.start("alpha", "sleep 300", str(tmp_path), {}, launch_id="L-2", replace=True)
    assert tmux.observe()["alpha"].launch_id == "L-2"
    with pytest.raises(NotFound):
        tmux.start("beta", "sleep 300", str(tmp_path / "missing"), {})
    assert set(tmux.capture_many(["alpha", "beta"])) == {"alpha"}
    tmux.paste("alpha", "hello")
    tmux.send_keys("alpha", ["Enter"])
    with pytest.raises(InvalidInput):
        tmux.send_keys("alpha", ["Enter;kill-server"])
    with pytest.raises(NotFound):
        tmux.paste("beta", "x")
    with pytest.raises(NotFound):
        tmux.send_keys("beta", ["Enter"])
    assert not tmux.kill_server_if_empty()
    tmux.kill_session("alpha")
    tmux.kill_session("alpha")  # already gone is fine
    assert tmux.observe() == {}
