"""A fake interactive coding agent CLI for orch's tests (python3 stdlib only).

Run it in a pty (a tmux pane): it puts the terminal in raw mode, enables bracketed paste, prints
`FAKE AGENT READY <name>` and a `› ` prompt, and reads keys like a TUI agent does. A bracketed
paste (ESC[200~ ... ESC[201~) and typed characters build one input; Enter (CR) submits it. Each
submitted message is appended byte-exact to the --record file as a JSON line {"message": ...}
(orch pastes with `paste-buffer -r`, so the LFs inside a paste arrive as LF and are kept as they
are) and echoed as `received: <first 60 chars>`.

A submitted message that is one of these commands changes behaviour:
  crash [CODE]       exit with CODE (default 1)
  hang               stop reading and printing (the screen freezes)
  spin               show a spinner with an elapsed timer every 100 ms until the next message
  limit [TEXT]       print a usage-limit line
  ask                print `Do you want to proceed? [y/N]` and wait for a y/n answer line
  dialog             the same on a cleared screen (a TUI drawing its dialog in place)
  daemon             fork a detached grandchild (double fork + setsid) that sleeps forever
  write PATH TEXT    write TEXT to PATH (relative to the working directory)
  say TEXT           print TEXT
  run COMMAND        run COMMAND with /bin/sh (as a CLI's shell tool does) and print its output
Keys: C-c clears the input (and stops a spinner), Escape interrupts a spinner, C-d on an empty
input exits 0. SIGTERM and SIGHUP restore the terminal and exit 128+signal.

Signals, as the real CLIs send them: with `--settings FILE` (Claude Code's flag; orch passes it
for `profile: claude`) the FILE's `hooks` run like Claude Code's, the JSON payload on stdin:
SessionStart at start, UserPromptSubmit on Enter, PermissionRequest at `ask`, Stop when the
reply is done (not while spinning, hanging or after an interrupt). With AIDER_NOTIFICATIONS and
AIDER_NOTIFICATIONS_COMMAND in the environment (orch sets them for `profile: aider`) the command
runs, with no payload, each time the agent waits for the user after a reply, as aider's does.
Misbehaviours of real CLIs, by flag: --draw-delay S draws the `› ` input S seconds after the
banner and throws away whatever was typed or pasted before (as Gemini CLI does while it starts);
--ignore-enter never submits (an agent that does not take a message).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
import uuid
from collections.abc import Iterator
from types import FrameType

PROMPT = "› "
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPIN_INTERVAL = 0.1
DEFAULT_LIMIT = "You've hit your usage limit · resets 3pm"
PREVIEW_CHARS = 60


class Exit(Exception):
    """Leave the main loop with an exit code (the terminal is restored on the way out)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Agent:
    """The screen, the input line and the behaviour switches of one fake agent."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name or os.environ.get("ORCH_AGENT_NAME", "agent")
        record = args.record or os.environ.get("FAKE_AGENT_RECORD")
        self.record_path = os.path.abspath(record) if record else None
        self.deadline, self.deadline_code = _deadline(args)
        self.pending = bytearray()  # bytes read but not parsed yet
        self.line = bytearray()  # the input being composed: typed and pasted bytes
        self.in_paste = False
        self.asking = False
        self.spin_start: float | None = None
        self.next_tick = 0.0
        self.draw_delay: float = args.draw_delay
        self.ignore_enter: bool = args.ignore_enter
        self.session_id = str(uuid.uuid4())
        self.hooks = _load_hooks(args.settings)
        self.notify_command = (
            os.environ.get("AIDER_NOTIFICATIONS_COMMAND")
            if os.environ.get("AIDER_NOTIFICATIONS") == "true"
            else None
        )

    # -- signals --------------------------------------------------------------------------------

    def hook(self, event: str, **fields: str) -> None:
        """Run the hooks for `event` as Claude Code does: one shell command each, JSON on stdin."""
        payload = {"session_id": self.session_id, "hook_event_name": event, **fields}
        for command in self.hooks.get(event, ()):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    command,
                    shell=True,
                    input=json.dumps(payload).encode(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )

    def waiting_for_user(self) -> None:
        """The reply is done: Claude's Stop hook, aider's notifications command."""
        self.hook("Stop")
        if self.notify_command:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    self.notify_command,
                    shell=True,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )

    # -- output ---------------------------------------------------------------------------------

    def out(self, text: str) -> None:
        """Write to the terminal; raw mode has no output processing, so LF becomes CRLF."""
        os.write(1, text.replace("\n", "\r\n").encode())

    def prompt(self) -> None:
        self.out(PROMPT)

    # -- main loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Read and react to keys until a command, a timer, EOF or a signal ends the agent."""
        self.out(f"FAKE AGENT READY {self.name}\n")
        if self.draw_delay:
            time.sleep(self.draw_delay)
            with contextlib.suppress(termios.error):
                termios.tcflush(0, termios.TCIFLUSH)  # input before the prompt is lost
        self.hook("SessionStart", source="startup")
        self.prompt()
        while True:
            ready, _, _ = select.select([0], [], [], self._timeout())
            self._check_deadline()
            if self.spin_start is not None and time.monotonic() >= self.next_tick:
                self._draw_spinner(self.spin_start)
            if ready:
                data = os.read(0, 65536)
                if not data:
                    raise Exit(0)
                self.feed(data)

    def _timeout(self) -> float | None:
        """Seconds until the next spinner frame or exit deadline; None to block."""
        wakeups = [t for t in (self.deadline, self._spin_wakeup()) if t is not None]
        return max(0.0, min(wakeups) - time.monotonic()) if wakeups else None

    def _spin_wakeup(self) -> float | None:
        return self.next_tick if self.spin_start is not None else None

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise Exit(self.deadline_code)

    # -- input ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse input bytes: paste brackets, escape sequences and single keys."""
        self.pending += data
        while self.pending:
            if self.in_paste:
                if not self._take_paste():
                    return
            elif self.pending[0] == 0x1B:
                if not self._take_escape():
                    return
            else:
                key = self.pending[0]
                del self.pending[0]
                self.key(key)

    def _take_paste(self) -> bool:
        """Move pasted bytes into the input; False while the paste is still incomplete."""
        end = self.pending.find(PASTE_END)
        if end < 0:
            keep = _partial_suffix(self.pending, PASTE_END)
            self.line += self.pending[: len(self.pending) - keep]
            del self.pending[: len(self.pending) - keep]
            return False
        self.line += self.pending[:end]
        del self.pending[: end + len(PASTE_END)]
        self.in_paste = False
        if self.spin_start is None:
            self.out("[pasted text]")
        return True

    def _take_escape(self) -> bool:
        """Consume one escape sequence; False when it is cut off and more bytes are needed."""
        buf = self.pending
        if buf.startswith(PASTE_START):
            del buf[: len(PASTE_START)]
            self.in_paste = True
            return True
        if len(buf) == 1:
            del buf[:1]
            self.escape()
            return True
        if buf[1:2] == b"[":
            final = next((i for i in range(2, len(buf)) if 0x40 <= buf[i] <= 0x7E), None)
            if final is None:
                return False
            del buf[: final + 1]
        else:
            del buf[: 3 if buf[1:2] == b"O" else 2]
        return True

    def key(self, byte: int) -> None:
        """One typed byte."""
        if byte == 0x0D:
            if not self.ignore_enter:
                self.submit()
        elif byte in (0x7F, 0x08):
            self._backspace()
        elif byte == 0x03:
            self.cancel()
        elif byte == 0x04 and not self.line:
            raise Exit(0)
        else:
            self.line.append(byte)
            if self.spin_start is None and (byte >= 0x20 or byte == 0x09):
                os.write(1, bytes([byte]))

    def _backspace(self) -> None:
        """Delete the last character (all bytes of a UTF-8 sequence)."""
        if not self.line:
            return
        while len(self.line) > 1 and self.line[-1] & 0xC0 == 0x80:
            del self.line[-1]
        del self.line[-1]
        self.out("\b \b")

    def escape(self) -> None:
        """The Escape key: interrupt a spinner, like agents do."""
        if self.spin_start is not None:
            self.spin_start = None
            self.out("\nInterrupted\n")
            self.prompt()

    def cancel(self) -> None:
        """C-c: drop the input and any spinner, start a fresh prompt."""
        self.line.clear()
        self.spin_start = None
        self.asking = False
        self.out("^C\n")
        self.prompt()

    # -- messages -------------------------------------------------------------------------------

    def submit(self) -> None:
        """Enter: record the input as one message, echo it and act on it (empty input: nothing)."""
        if not self.line and not self.asking:
            return
        message = bytes(self.line).decode("utf-8", "surrogateescape")
        self.line.clear()
        self._record(message)
        if not self.asking:
            self.hook("UserPromptSubmit")
        self.out("\n")
        self.spin_start = None
        if self.asking:
            self.asking = False
            answer = "yes" if message.strip().lower() in ("y", "yes") else "no"
            self.out(f"answered: {answer}\n")
        else:
            preview = message[:PREVIEW_CHARS].replace("\r", "\\r").replace("\n", "\\n")
            self.out(f"received: {preview}\n")
            if self.command(message.strip()):
                return
        self.waiting_for_user()
        self.prompt()

    def _record(self, message: str) -> None:
        if self.record_path is not None:
            with open(self.record_path, "a", encoding="ascii") as f:
                f.write(json.dumps({"message": message}) + "\n")

    def command(self, text: str) -> bool:
        """Act on a command message; True when it already printed what comes next."""
        verb, _, rest = text.partition(" ")
        rest = rest.strip()
        if verb == "crash":
            raise Exit(int(rest) if rest else 1)
        if verb == "hang":
            self.hang()
        elif verb == "spin":
            self.spin_start = self.next_tick = time.monotonic()
            return True
        elif verb == "limit":
            self.out(f"{rest or DEFAULT_LIMIT}\n")
        elif verb in ("ask", "dialog"):
            if verb == "dialog":
                self.out("\x1b[2J\x1b[H")
            self.asking = True
            self.out("Do you want to proceed? [y/N] ")
            self.hook("PermissionRequest", tool_name="Bash")
            return True
        elif verb == "daemon":
            self.out(f"daemon started {_spawn_daemon()}\n")
        elif verb == "write":
            path, _, content = rest.partition(" ")
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            self.out(f"wrote {path}\n")
        elif verb == "say":
            self.out(f"{rest}\n")
        elif verb == "run":
            done = subprocess.run(rest, shell=True, capture_output=True, text=True, check=False)
            self.out(f"ran (exit {done.returncode}): {(done.stdout + done.stderr).strip()}\n")
        return False

    def hang(self) -> None:
        """Freeze: read nothing, print nothing; only an exit timer or a signal ends it."""
        while True:
            self._check_deadline()
            timeout = self._timeout()
            time.sleep(3600 if timeout is None else timeout)

    def _draw_spinner(self, start: float) -> None:
        now = time.monotonic()
        frame = SPINNER[int((now - start) / SPIN_INTERVAL) % len(SPINNER)]
        self.out(f"\r{frame} Working… ({now - start:.1f}s · esc to interrupt)")
        self.next_tick = now + SPIN_INTERVAL


def _deadline(args: argparse.Namespace) -> tuple[float | None, int]:
    """The earliest timed exit (--crash-after, --exit-after) and its exit code."""
    timers = []
    if args.crash_after is not None:
        timers.append((args.crash_after, 1))
    if args.exit_after is not None:
        timers.append((args.exit_after, args.exit_code))
    if not timers:
        return None, 0
    after, code = min(timers)
    return time.monotonic() + after, code


def _load_hooks(path: str | None) -> dict[str, list[str]]:
    """The hook commands per event of a Claude Code settings file (none without one)."""
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        settings = json.load(f)
    return {
        event: [hook["command"] for group in groups for hook in group.get("hooks", ())]
        for event, groups in settings.get("hooks", {}).items()
    }


def _partial_suffix(buf: bytearray, marker: bytes) -> int:
    """Length of the longest tail of `buf` that could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(buf)), 0, -1):
        if buf.endswith(marker[:size]):
            return size
    return 0


def _spawn_daemon() -> int:
    """Double fork + setsid: a grandchild reparented to init that sleeps forever; its pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() == 0:
                _daemon_body(write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        return int(pipe.read() or 0)


def _daemon_body(report_fd: int) -> None:
    """Detach from the terminal, report the pid, then sleep forever."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.chdir("/")
    os.write(report_fd, str(os.getpid()).encode())
    os.close(report_fd)
    while True:
        time.sleep(3600)


@contextlib.contextmanager
def raw_terminal() -> Iterator[None]:
    """Raw mode and bracketed paste while inside; the terminal restored on the way out."""
    saved = termios.tcgetattr(0) if os.isatty(0) else None
    if saved is not None:
        tty.setraw(0)
    _write_quietly(b"\x1b[?2004h")
    try:
        yield
    finally:
        _write_quietly(b"\x1b[?2004l")
        if saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _write_quietly(data: bytes) -> None:
    """Write to stdout unless the terminal is gone (after SIGHUP it is)."""
    with contextlib.suppress(OSError):
        os.write(1, data)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Exit(128 + signum)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A fake interactive agent CLI for tests.")
    parser.add_argument("--name", help="name in the banner (default: $ORCH_AGENT_NAME)")
    parser.add_argument("--record", help="append submitted messages here (or $FAKE_AGENT_RECORD)")
    parser.add_argument("--crash-after", type=float, help="exit 1 after SECONDS")
    parser.add_argument("--exit-after", type=float, help="exit with --exit-code after SECONDS")
    parser.add_argument("--exit-code", type=int, default=0, help="code for --exit-after")
    parser.add_argument("--pid-file", help="write our pid here at start")
    parser.add_argument("--slow-start", type=float, default=0.0, help="wait before READY")
    parser.add_argument("--settings", help="a Claude Code settings file: run its hooks")
    parser.add_argument(
        "--draw-delay", type=float, default=0.0, help="draw the input late, losing earlier input"
    )
    parser.add_argument("--ignore-enter", action="store_true", help="never submit the input")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        if args.pid_file:
            with open(args.pid_file, "w", encoding="ascii") as f:
                f.write(f"{os.getpid()}\n")
        agent = Agent(args)
        with raw_terminal():
            time.sleep(args.slow_start)
            agent.run()
    except Exit as done:
        return done.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
