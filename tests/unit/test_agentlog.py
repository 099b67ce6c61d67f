"""The pane log without tmux: rotation through the writer, display rendering, tail and follow."""

from __future__ import annotations

import contextlib
import os
import random
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.adapters import agentlog
from reconciler.adapters.agentlog import (
    LOG_NAME,
    RotatingLog,
    copy_available,
    fifo_path,
    follow,
    log_path,
    make_fifo,
    pipe_command,
    read_log,
    render_line,
    rotate,
    rotated_path,
)
from tests.helpers import wait_until

STOP = "-- stop following --"


def log_files(log: Path) -> list[Path]:
    """The log's files oldest first: the rotated ones by falling index, then the current one."""
    rotated = sorted(log.parent.glob(f"{LOG_NAME}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, log] if log.exists() else rotated


def logged_bytes(log: Path) -> bytes:
    return b"".join(path.read_bytes() for path in log_files(log))


def numbered_lines(start: int, count: int) -> list[str]:
    return [f"line {i:04d}" for i in range(start, start + count)]


def copy_through_pipe(data: bytes, log: Path, max_bytes: int, keep: int, chunk: int) -> None:
    """Feed `data` through a real pipe into `copy_available`, as the FIFOs feed the writer."""
    read_fd, write_fd = os.pipe()
    out = RotatingLog(log, max_bytes, keep)
    writer = threading.Thread(target=copy_available, args=(read_fd, out, chunk))
    writer.start()
    try:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    finally:
        writer.join(timeout=10)
        os.close(read_fd)
        out.close()
    assert not writer.is_alive()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return log_path(tmp_path / "agents" / "alpha")


# -- writing and rotation -------------------------------------------------------------------------


def test_rotation_keeps_every_byte_in_order(log: Path) -> None:
    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(3 * 1000))

    copy_through_pipe(data, log, max_bytes=1000, keep=10, chunk=97)

    assert logged_bytes(log) == data
    assert len(log_files(log)) >= 3
    assert all(path.stat().st_size <= 1000 for path in log_files(log))


def test_read_log_returns_every_line_across_rotated_files(log: Path) -> None:
    lines = numbered_lines(0, 300)
    data = "".join(f"{line}\r\n" for line in lines).encode()

    copy_through_pipe(data, log, max_bytes=len(data) // 3, keep=10, chunk=33)

    assert len(log_files(log)) >= 3
    assert read_log(log) == lines


def test_keep_bounds_the_number_of_files(log: Path) -> None:
    data = b"".join(f"{i:09d}\n".encode() for i in range(1000))

    copy_through_pipe(data, log, max_bytes=1000, keep=2, chunk=100)

    assert log_files(log) == [rotated_path(log, 2), rotated_path(log, 1), log]
    kept = logged_bytes(log)
    assert data.endswith(kept)
    assert len(kept) > 2 * 1000


def test_files_end_at_a_line_end_when_one_fits(log: Path) -> None:
    with contextlib.closing(RotatingLog(log, max_bytes=10, keep=5)) as out:
        out.write(b"small\n")
        out.write(b"two\nlines\n")
        out.write(b"a line of more than ten bytes\n")

    assert [path.read_bytes() for path in log_files(log)] == [
        b"small\ntwo\n",
        b"lines\n",
        b"a line of ",
        b"more than ",
        b"ten bytes\n",
    ]


def test_log_files_are_private(log: Path) -> None:
    copy_through_pipe(b"x" * 50, log, max_bytes=20, keep=5, chunk=10)

    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert [stat.S_IMODE(path.stat().st_mode) for path in log_files(log)] == [0o600] * 3


def test_rotate_shifts_files_and_drops_the_oldest(log: Path) -> None:
    log.parent.mkdir(parents=True)
    for path, text in [(rotated_path(log, 2), "two"), (rotated_path(log, 1), "one"), (log, "cur")]:
        path.write_text(text)

    rotate(log, keep=2)

    assert not log.exists()
    assert rotated_path(log, 1).read_text() == "cur"
    assert rotated_path(log, 2).read_text() == "one"
    assert not rotated_path(log, 3).exists()


def test_writer_follows_the_path_when_the_file_is_moved_or_deleted(log: Path) -> None:
    with (
        contextlib.closing(RotatingLog(log, max_bytes=100, keep=3)) as first,
        contextlib.closing(RotatingLog(log, max_bytes=100, keep=3)) as second,
    ):
        first.write(b"a" * 60)
        second.write(b"b" * 60)  # rotates: the 60 a's become pane.log.1
        first.write(b"c" * 10)  # must land in the new pane.log, not in pane.log.1
        log.unlink()
        second.write(b"d" * 10)

    assert rotated_path(log, 1).read_bytes() == b"a" * 60
    assert log.read_bytes() == b"d" * 10


@pytest.mark.parametrize(("max_bytes", "keep"), [(0, 1), (1, 0), (-5, 3)])
def test_limits_must_be_positive(log: Path, max_bytes: int, keep: int) -> None:
    with pytest.raises(ValueError):
        RotatingLog(log, max_bytes, keep)


def test_pipe_command_copies_into_the_fifo_with_a_hostile_path(tmp_path: Path) -> None:
    agent_dir = tmp_path / "it's an agent; $(touch pwned) `touch pwned2`"
    agent_dir.mkdir()
    fifo = fifo_path(agent_dir)
    make_fifo(fifo)
    data = b"".join(f"{line}\r\n".encode() for line in numbered_lines(0, 100))
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # holds what cat writes after it exits
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", pipe_command(fifo)],
            input=data,
            capture_output=True,
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
        assert (proc.returncode, proc.stderr) == (0, b"")
        assert os.read(reader, len(data) + 1) == data
    finally:
        os.close(reader)
    assert not list(tmp_path.glob("pwned*"))


def test_pipe_command_does_not_wait_for_a_reader(tmp_path: Path) -> None:
    """With no log writer running, cat still takes the output (the FIFO keeps it) and ends."""
    fifo = fifo_path(tmp_path)
    make_fifo(fifo)

    subprocess.run(["/bin/sh", "-c", pipe_command(fifo)], input=b"x\n", timeout=30, check=True)


def test_pipe_command_uses_the_systems_cat_and_an_absolute_path() -> None:
    command = pipe_command(Path("relative/pane.fifo"))

    assert command == f"exec {agentlog.CAT} 1<>{Path.cwd() / 'relative' / 'pane.fifo'}"
    assert Path(agentlog.CAT).is_absolute()


def test_make_fifo_keeps_a_fifo_and_replaces_anything_else(tmp_path: Path) -> None:
    fifo = fifo_path(tmp_path)
    fifo.write_text("a regular file")
    make_fifo(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert stat.S_IMODE(fifo.lstat().st_mode) == 0o600
    inode = fifo.lstat().st_ino
    make_fifo(fifo)
    assert fifo.lstat().st_ino == inode


# -- rendering for display ------------------------------------------------------------------------

RENDERED = [
    pytest.param("\x1b[1;31merror\x1b[0m: boom", "error: boom", id="sgr-colors"),
    pytest.param("\x1b[38;5;208morange\x1b[m \x1b[48;2;1;2;3mrgb", "orange rgb", id="sgr-extended"),
    pytest.param("\x1b[2K\x1b[1G\x1b[3Adone\x1b[K", "done", id="erase-and-cursor-moves"),
    pytest.param("\x1b[?25lhidden\x1b[?25h \x1b[?2004h", "hidden ", id="private-modes"),
    pytest.param("\x1b]0;my title\x07prompt$ ", "prompt$ ", id="osc-title-bel"),
    pytest.param("\x1b]8;;https://x.y\x1b\\link\x1b]8;;\x1b\\", "link", id="osc-hyperlink-st"),
    pytest.param("\x1b]52;c;aGVsbG8=\x07copied", "copied", id="osc52"),
    pytest.param("\x1bP1$r0m\x1b\\dcs", "dcs", id="dcs"),
    pytest.param("\x1b(Bplain\x1b)0 \x1b#8", "plain ", id="charset-and-nf"),
    pytest.param("\x1b7saved\x1b8\x1b=\x1b>\x1bM", "saved", id="single-char-escapes"),
    pytest.param("⠋ working\r⠙ working\r✔ done", "✔ done", id="cr-spinner"),
    pytest.param("progress 10%\rprogress 100%\r", "progress 100%", id="cr-progress-then-crlf"),
    pytest.param("\x1b[2K\r\x1b[32m✔\x1b[0m built", "✔ built", id="cr-with-erase"),
    pytest.param("bell\x07 nul\x00", "bell nul", id="other-controls"),
    pytest.param("tab\tkept", "tab\tkept", id="tab"),
    pytest.param("dangling escape \x1b", "dangling escape ", id="lone-esc"),
    pytest.param("unterminated \x1b]0;title", "unterminated 0;title", id="unterminated-osc"),
    pytest.param("8-bit \x9b31m csi", "8-bit 31m csi", id="c1"),
    pytest.param("漢字 🚀 e\u0301", "漢字 🚀 e\u0301", id="unicode-unchanged"),
    pytest.param(
        "Unable\x1b[1Cto\x1b[1Cconnect\x1b[1Cto\x1b[1CAnthropic\x1b[1Cservices",
        "Unable to connect to Anthropic services",
        id="cursor-forward-is-a-space",
    ),
    pytest.param("\x1b[31mtab\x1b[0m\x1b[3Cstop", "tab   stop", id="cursor-forward-after-color"),
    pytest.param("name\x1b[10Gvalue", "name     value", id="cursor-to-column"),
    pytest.param("typo\x08\x08po", "typo", id="backspace-overwrites"),
    pytest.param("\x1b[1;5Hplaced", "    placed", id="cursor-position"),
    pytest.param("wide 漢字\x1b[1Cnext", "wide 漢字 next", id="wide-chars-emulated"),
]


@pytest.mark.parametrize(("raw", "shown"), RENDERED)
def test_render_line(raw: str, shown: str) -> None:
    assert render_line(raw) == shown


ESCAPE_PARTS = st.sampled_from(
    ["\x1b[", "\x1b]", "\x1b", "\x08", "\r", "\x9b", "1C", "99999C", "5;5H", "?25l", "m", "漢"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ESCAPE_PARTS, st.text(max_size=20)), max_size=60).map("".join))
@example("\x1b[²\x1b[\x08")  # pyte reads "²" as a parameter digit, then int() fails
@example("\x08\x1b[?H")  # pyte calls cursor_position(private=True)
def test_render_line_never_raises_and_leaves_no_escape(raw: str) -> None:
    shown = render_line(raw)
    assert "\x1b" not in shown


# -- reading --------------------------------------------------------------------------------------


def write_rotated(log: Path, *contents: bytes) -> None:
    """Write `contents` oldest first as log.N … log.1, log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    paths = [rotated_path(log, i) for i in range(len(contents) - 1, 0, -1)] + [log]
    for path, content in zip(paths, contents, strict=True):
        path.write_bytes(content)


def test_read_log_orders_files_oldest_first_and_joins_split_lines(log: Path) -> None:
    write_rotated(log, b"one\r\ntw", b"o\r\n\x1b[1mthree\x1b[0m\r\n", b"four\r\nfive (no newline)")

    assert read_log(log) == ["one", "two", "three", "four", "five (no newline)"]


def test_read_log_joins_characters_split_across_files(log: Path) -> None:
    snowman = "☃".encode()
    write_rotated(log, b"a" + snowman[:1], snowman[1:] + b"b\n")

    assert read_log(log) == ["a☃b"]


def test_read_log_ignores_other_files_in_the_agent_dir(log: Path) -> None:
    write_rotated(log, b"old\n", b"new\n")
    (log.parent / f"{LOG_NAME}.bak").write_bytes(b"not a log\n")
    (log.parent / "exit-123").write_bytes(b"0")

    assert read_log(log) == ["old", "new"]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [(None, ["a", "b", "c"]), (2, ["b", "c"]), (10, ["a", "b", "c"]), (0, [])],
)
def test_read_log_tail(log: Path, tail: int | None, expected: list[str]) -> None:
    write_rotated(log, b"a\n", b"b\nc\n")

    assert read_log(log, tail=tail) == expected


def test_read_log_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert read_log(log_path(tmp_path / "never-started")) == []


def test_read_log_replaces_invalid_utf8(log: Path) -> None:
    write_rotated(log, b"bad \xff\xfe byte\n")

    assert read_log(log) == ["bad \ufffd\ufffd byte"]


def test_read_log_of_only_rotated_files(log: Path) -> None:
    write_rotated(log, b"older\n", b"old\n", b"")
    log.unlink()

    assert read_log(log) == ["older", "old"]


def test_read_log_during_a_rotation_shows_each_file_once(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rotated(log, b"one\n", b"two\n", b"three\n")
    open_current = agentlog._open_current

    def open_then_rotate(path: Path) -> BinaryIO | None:
        current = open_current(path)
        rotate(path, keep=5)  # the file just opened is now pane.log.1 as well
        path.write_bytes(b"four\n")
        return current

    monkeypatch.setattr(agentlog, "_open_current", open_then_rotate)

    assert read_log(log) == ["one", "two", "three"]


# -- following ------------------------------------------------------------------------------------


class Follower:
    """Runs `follow` in a thread, collecting lines until it sees STOP."""

    def __init__(self, log: Path, from_end_lines: int | None) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(log, from_end_lines))
        self._thread.start()

    def _run(self, log: Path, from_end_lines: int | None) -> None:
        with contextlib.closing(follow(log, from_end_lines, poll=0.01)) as lines:
            for line in lines:
                if line == STOP:
                    return
                self.lines.append(line)

    def wait_for(self, expected: list[str]) -> None:
        wait_until(lambda: self.lines == expected, what=f"{expected[-1:]} followed")

    def stop(self, out: RotatingLog) -> None:
        out.write(f"{STOP}\r\n".encode())
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


@pytest.fixture
def writer(log: Path) -> Iterator[RotatingLog]:
    with contextlib.closing(RotatingLog(log, max_bytes=100, keep=3)) as out:
        yield out


def write_lines(out: RotatingLog, lines: list[str]) -> None:
    for line in lines:
        out.write(f"\x1b[32m{line}\x1b[0m\r\n".encode())


def test_follow_yields_new_lines_across_rotations(log: Path, writer: RotatingLog) -> None:
    write_lines(writer, numbered_lines(0, 3))
    follower = Follower(log, from_end_lines=None)
    follower.wait_for(numbered_lines(0, 3))

    # Each batch (≈ 60 bytes) fills at most one file of 100: one rotation between two polls.
    for batch in range(1, 12):
        write_lines(writer, numbered_lines(3 * batch, 3))
        follower.wait_for(numbered_lines(0, 3 * batch + 3))
    follower.stop(writer)

    assert len(log_files(log)) == 4  # it rotated, and old files were dropped meanwhile
    assert follower.lines == numbered_lines(0, 36)


def test_follow_starts_with_the_last_lines_of_all_files(log: Path, writer: RotatingLog) -> None:
    write_lines(writer, numbered_lines(0, 20))
    assert rotated_path(log, 2).exists()

    follower = Follower(log, from_end_lines=12)
    follower.wait_for(numbered_lines(8, 12))
    write_lines(writer, numbered_lines(20, 2))
    follower.wait_for(numbered_lines(8, 14))
    follower.stop(writer)


def test_follow_from_the_end_yields_only_new_lines(log: Path, writer: RotatingLog) -> None:
    write_lines(writer, numbered_lines(0, 5))
    follower = Follower(log, from_end_lines=0)

    def ping() -> list[str]:
        write_lines(writer, ["ping"])
        return follower.lines

    # Until a ping comes through, the follower may not have opened the log yet.
    wait_until(ping, what="a ping followed")

    writer.write(b"half a ")  # a partial line is held back until its end is written
    writer.write(b"line\r\n")

    wait_until(lambda: follower.lines[-1:] == ["half a line"], what="the completed line")
    assert set(follower.lines[:-1]) == {"ping"}
    follower.stop(writer)


def test_follow_reads_what_was_appended_just_before_a_rotation(
    log: Path, writer: RotatingLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(writer, ["before"])
    lines = follow(log, None, poll=0.01)
    assert next(lines) == "before"
    find_replacement = agentlog._replacement

    def rotate_first(log: Path, current: BinaryIO | None) -> BinaryIO | None:
        # The writer appends and rotates right after the follower found nothing more to read.
        monkeypatch.setattr(agentlog, "_replacement", find_replacement)
        write_lines(writer, ["appended to the old file", "x" * 60])
        assert rotated_path(log, 1).exists()
        return find_replacement(log, current)

    monkeypatch.setattr(agentlog, "_replacement", rotate_first)
    with contextlib.closing(lines):
        assert [next(lines), next(lines)] == ["appended to the old file", "x" * 60]


def test_follow_waits_for_a_log_that_does_not_exist_yet(log: Path) -> None:
    follower = Follower(log, from_end_lines=None)
    with contextlib.closing(RotatingLog(log, max_bytes=1000, keep=1)) as out:
        write_lines(out, ["first"])
        follower.wait_for(["first"])
        follower.stop(out)


def test_follow_rereads_a_truncated_log(log: Path, writer: RotatingLog) -> None:
    write_lines(writer, numbered_lines(0, 3))
    follower = Follower(log, from_end_lines=None)
    follower.wait_for(numbered_lines(0, 3))

    os.truncate(log, 0)
    write_lines(writer, ["after truncation"])

    follower.wait_for([*numbered_lines(0, 3), "after truncation"])
    follower.stop(writer)
