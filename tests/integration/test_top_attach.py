"""`orch top`'s attach key against real tmux on a private socket: the terminal is handed to
`tmux attach-session` on the selected agent's session (the pilot runs headless, so the hand-over
itself is recorded rather than performed)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.paths import StatePaths
from reconciler.adapters.tmux import Tmux
from reconciler.cli.top import TopApp
from tests.unit.test_top import store_with_waiting_agent

pytestmark = pytest.mark.tmux


def test_t_hands_the_terminal_to_tmux_attach_on_the_agents_session(
    tmp_path: Path, tmux: Tmux, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_with_waiting_agent(tmp_path)
    app = TopApp(store, StatePaths(tmp_path), tmux.socket_name, "t", lambda: None, lambda: True)
    handed: list[tuple[list[str], bool]] = []
    suspended = False

    @contextlib.contextmanager
    def suspend() -> Iterator[None]:  # the headless driver cannot give its terminal away
        nonlocal suspended
        suspended = True
        yield
        suspended = False

    real_run = subprocess.run

    def run(argv: list[str], **kwargs: Any) -> Any:
        if "attach-session" not in argv:
            return real_run(argv, **kwargs)  # the adapter's other tmux calls go to the server
        handed.append((argv, suspended))
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(app, "suspend", suspend)
    monkeypatch.setattr(subprocess, "run", run)  # the adapter calls subprocess.run

    async def drive() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press("t")  # no session yet: said, nothing run
            await pilot.pause()
            assert handed == []
            tmux.start("worker", "sleep 60", str(tmp_path), {})
            await pilot.press("t")
            await pilot.pause()
            await pilot.press("q")

    asyncio.run(drive())
    argv, while_suspended = handed[0]
    assert argv == [tmux.tmux_bin, "-L", tmux.socket_name, "attach-session", "-t", "=worker"]
    assert while_suspended, "tmux attach runs with the app's terminal handed over"
