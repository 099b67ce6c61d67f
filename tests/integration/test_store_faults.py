"""Files under faults: a write killed or refused half-way never leaves a torn file that is later
trusted; a read-only state dir still answers reads and refuses writes in one line; a full disk
is one line at the CLI and a controller that keeps supervising and catches up once there is room.

The full disk is a real one (a 2 MiB tmpfs) and the read-only state dir a real read-only bind
mount, so these tests run as root (CI does) and are skipped where mounting is not allowed.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.adapters.atomic import write_atomic
from reconciler.adapters.paths import StatePaths, installation_id
from reconciler.adapters.signal_files import write_private
from reconciler.adapters.tmux import Tmux
from tests.conftest import REPO, Orch
from tests.helpers import wait_until
from tests.integration.test_core import agent_doc, pane_pid, running, write_manifest
from tests.integration.test_faults import controller_pid

pytestmark = pytest.mark.tmux


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at `path` for the block: a disk that really fills up."""
    path.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() != 0 or not _mount(
        "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(path)
    ):
        pytest.skip("needs root and mount (a tmpfs) to fill a disk for real")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte; the file that did it (remove it to make room)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError as err:
                assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for the block: a read-only bind mount over itself as root (whose
    permissions would not stop it), its write bits removed otherwise."""
    if os.geteuid() == 0:
        if not _mount("--bind", str(folder), str(folder)):
            pytest.skip("needs mount --bind to make a folder read-only as root")
        try:
            assert _mount("-o", "remount,bind,ro", str(folder), str(folder))
            yield
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(mode)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("orch: error")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]


# -- torn files ---------------------------------------------------------------------------------


def test_a_write_killed_half_way_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "controller.pid"
    target.write_text("4242\n")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from reconciler.adapters import atomic\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die with the bytes written\n"
        f"atomic.write_atomic(Path({str(target)!r}), b'1234567\\n' * 100000)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "4242\n"
    assert [p.name for p in tmp_path.iterdir() if p.name != "controller.pid"] != []  # the tmp
    write_atomic(target, b"77\n")
    assert target.read_text() == "77\n"


def test_a_full_disk_never_leaves_a_torn_installation_id(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        paths = StatePaths(disk)
        filler = fill(disk)
        with pytest.raises(OSError):
            installation_id(paths)
        assert not paths.installation.exists(), "a torn (empty) id would be trusted later"
        filler.unlink()
        made = installation_id(paths)
        assert str(uuid.UUID(made)) == made
        assert installation_id(paths) == made


@pytest.mark.parametrize("torn", ["", "6f1c2a", "6f1c2a0e-88"])
def test_a_torn_installation_id_left_by_an_older_orch_is_replaced(
    tmp_path: Path, torn: str
) -> None:
    paths = StatePaths(tmp_path)
    paths.installation.write_text(torn)
    made = installation_id(paths)
    assert str(uuid.UUID(made)) == made, "an empty id matches every unstamped session"
    assert installation_id(paths) == made


def test_settings_files_on_a_full_disk_keep_the_old_and_leave_nothing_half_written(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        settings = disk / "claude-settings.json"
        settings.write_text('{"old": true}')
        fill(disk)
        with pytest.raises(OSError):
            write_private({str(settings): '{"hooks": "' + "x" * 100_000 + '"}'})
        assert settings.read_text() == '{"old": true}'
        assert sorted(p.name for p in disk.iterdir()) == ["claude-settings.json", "filler"]


def test_an_env_file_that_cannot_be_written_is_not_left_behind(tmp_path: Path, tmux: Tmux) -> None:
    with small_disk(tmp_path / "disk") as disk:
        fill(disk)
        with pytest.raises(OSError):
            tmux.start("a", "sleep 100000", str(tmp_path), {"TOKEN": "s" * 100_000}, env_dir=disk)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
        assert not tmux.session_exists("a")


# -- a read-only state dir ----------------------------------------------------------------------


def test_a_read_only_state_dir_answers_reads_and_refuses_writes_in_one_line(orch: Orch) -> None:
    path = write_manifest(orch, agent_doc("a"))
    orch.run("apply", "-f", str(path), "--wait")
    pid, controller = pane_pid(orch, "a"), controller_pid(orch)
    with read_only(orch.state_dir):
        assert "a " in orch.run("get", "agents").stdout
        assert orch.run("describe", "agent", "a").returncode == 0
        path.write_text(agent_doc("a", command="sleep 99999"))
        one_line_error(orch.run("apply", "-f", str(path), check=False), 3, "orch.db")
        one_line_error(orch.run("send", "a", "hello", check=False), 3, "orch.db")
        one_line_error(orch.run("controller", check=False), 3, "read-only")
    assert pane_pid(orch, "a") == pid and controller_pid(orch) == controller
    assert "created" not in orch.run("apply", "-f", str(path)).stdout  # writes work again


# -- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_store(orch: Orch) -> None:
    with small_disk(orch.state_dir):
        fill(orch.state_dir)
        path = write_manifest(orch, agent_doc("a"))
        one_line_error(
            orch.run("apply", "-f", str(path), check=False), 3, "orch.db", "the disk is full"
        )
        assert orch.tmux("has-session", "-t", "=a").returncode != 0, "nothing half-applied"


def test_a_controller_on_a_full_disk_keeps_supervising_and_catches_up(orch: Orch) -> None:
    with small_disk(orch.state_dir):
        path = write_manifest(orch, agent_doc("a"), agent_doc("b"))
        orch.run("apply", "-f", str(path), "--wait")
        healthy, controller = pane_pid(orch, "a"), controller_pid(orch)
        filler = fill(orch.state_dir)
        crashed = pane_pid(orch, "b")
        orch.tmux("kill-session", "-t", "=b")
        # b cannot be relaunched without writing its environment file: it waits, failing
        # with a reason, and leaves no half-written file; nothing else changes meanwhile.
        agent_dir = orch.state_dir / "agents" / "b"
        wait_until(
            lambda: (
                "No space left" in (orch.state_dir / "controller.log").read_text()
                or any(
                    "No space left" in e["message"]
                    for e in orch.json("events", "--for", "agent/b")["items"]
                )
            ),
            timeout=30,
            what="the relaunch failing for want of space",
        )
        assert not list(agent_dir.glob("env-*")), "a half-written env file was left"
        assert pane_pid(orch, "a") == healthy and controller_pid(orch) == controller
        filler.unlink()
        wait_until(  # after b's backoff, which grew while the disk was full
            lambda: pane_pid(orch, "b") not in (None, crashed), timeout=90, what="b relaunched"
        )
        wait_until(lambda: running(orch, "a", "b"), what="both Running")
        assert pane_pid(orch, "a") == healthy and controller_pid(orch) == controller

        def reasons() -> list[str]:
            return [e["reason"] for e in orch.json("events", "--for", "agent/b")["items"]]

        # What happened while the store refused writes is committed when it takes them again:
        # the stored record may still say Running from before the crash until then.
        wait_until(
            lambda: {"ActionFailed", "Restarted"} <= set(reasons()),
            what="the failed and the good relaunch of b on record",
        )
        orch.run("delete", "-f", str(path))
