"""A persistent tmux control-mode client: tmux commands without a client process per call.

Every `tmux ...` client process costs ≈ 3 ms of CPU (its start-up) plus the fork in the caller;
the controller's once-a-second `list-panes -a` alone made most of its idle CPU. Over one control
client (`tmux -C`) the same command costs the server ≈ 0.2 ms and the caller a pipe write and
read (reference/tmux-measurements.md §8: 1.19 % -> 0.43 % of a core polling 50 panes at 2 Hz).

A control client must be attached to a session, or tmux ends it after its first command; and
attaching to an agent's session would count as a person attached to it (`session_attached`, the
hands-off rule). So the client attaches to a session of the installation's own,
`CONTROL_PREFIX<installation id>` (not a DNS label, so never an agent's name), making it when it is
missing; its program waits silently forever. `Tmux.close` kills it when the controller stops.
It outlives a controller that is killed, and the successor's client attaches to it again (and
ends any client the dead one left there: see `_end_predecessors`). That is on purpose: tmux
before 3.7 crashes (SIGSEGV in `control_write`, taking every agent with it) when a session is
made or ended while a control client is still introducing itself to the server (tmux issue
#4980). A session per controller process ended with its process, a second or so after a SIGKILL:
just when the successor's client connected. Not `destroy-unattached` either: it crashes tmux
3.3a when such a client is killed while another disconnects (tmux PR #5497).

Only commands whose answer is orch's own formats go through it (the answer is framed by
`%begin`/`%end` lines that a pane's text could imitate; a screen capture never goes this way).
A reply must end with the `%end` of its own `%begin` (same time, number and flags). On any
trouble (no server, EOF, a timeout, a reply out of frame) the client is closed and the call
returns None: the caller falls back to a client process, and `open` may be tried again later.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

#: Sessions of control clients start with this, then the installation's id.
CONTROL_PREFIX = "_orch-control-"
#: What the control session runs: nothing, silently, until the session is killed.
_IDLE_PROGRAM = "exec sleep infinity"
#: The most a reply may hold before it counts as out of frame (list-panes of 10,000 panes).
MAX_REPLY_BYTES = 8 * 1024 * 1024
#: Variables that would make the client think it runs inside another tmux.
_CLIENT_ENV_DROP = ("TMUX", "TMUX_PANE")


def is_control_session(name: str) -> bool:
    """Whether a session is a control client's own (never an agent)."""
    return name.startswith(CONTROL_PREFIX)


@dataclass(frozen=True)
class ChainReply:
    """What tmux answered to a command list sent over a control client."""

    answered: bool  # False: the client broke before every answer came (what ran is unknown)
    ok: bool  # every command succeeded
    out: bytes  # the outputs of the commands that ran, in order
    error: bytes = b""  # the failing command's message
    skipped: int = 0  # commands after the failing one, which tmux does not run


class ControlClient:
    """One `tmux -C` client on a socket (made by the tmux adapter), one call at a time."""

    def __init__(self, socket_name: str, installation: str, tmux_bin: str, timeout: float) -> None:
        self.socket_name = socket_name
        self.installation = installation
        self.session = ""  # named by `open`: a client never opened has no session to end
        self.tmux_bin = tmux_bin
        self.timeout = timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = b""  # bytes read past the last complete line

    @property
    def connected(self) -> bool:
        """Whether a client runs (it may still turn out dead at the next call)."""
        return self._proc is not None and self._proc.poll() is None

    def open(self) -> bool:
        """Start the client, attached to the installation's session (made when missing); True
        when it answers. Starting it starts a tmux server too: call it only when one runs."""
        with self._lock:
            self._close_locked()
            self.session = f"{CONTROL_PREFIX}{self.installation}"
            argv = [
                *(self.tmux_bin, "-L", self.socket_name, "-f", "/dev/null", "-C"),
                *("new-session", "-A", "-s", self.session, "-x", "10", "-y", "2", _IDLE_PROGRAM),
                *(";", "refresh-client", "-f", "no-output,ignore-size,read-only"),
            ]
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=client_env(),
                    start_new_session=True,  # a Ctrl-C meant for the controller is not for it
                )
            except OSError:
                self._proc = None
                return False
            self._pending = b""
            if not self._synchronized(f"orch-ready-{uuid.uuid4().hex}"):
                self._close_locked()
                return False
            own = self._proc.pid
        self._end_predecessors(own)
        return True

    def _end_predecessors(self, own: int) -> None:
        """End the clients that killed controllers left attached to the session.

        A controller killed while tmux still had output for its client leaves that client
        behind for good: tmux (3.3a) waits to deliver the output to a reader that is gone, and
        until the client ends, `kill-server` cannot finish either. Only orch's own clients
        attach to the installation's control session, so every other one listed is such a
        leftover (or a predecessor on its way out)."""
        listed = self.run(("list-clients", "-t", f"={self.session}", "-F", "#{client_pid}"))
        for word in (listed or b"").split():
            if word.isdigit() and int(word) != own:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(word), signal.SIGKILL)

    def run(self, command: Sequence[str]) -> bytes | None:
        """The output of one tmux command, or None when it failed, cannot be sent this way
        (see `_quote`) or the client is unusable (then closed)."""
        replies = self.run_lists([[command]])
        if replies is None or not (replies[0].answered and replies[0].ok):
            return None
        return replies[0].out

    def run_lists(self, lists: Sequence[Sequence[Sequence[str]]]) -> list[ChainReply] | None:
        """Run each command list as a `tmux a ; b ; c` client would (tmux stops a list at its
        first failing command, and goes on with the next list), all sent at once; a reply per
        list. None when they could not be sent (see `_quote`; no client): nothing ran. A reply
        that is not `answered` (EOF, timeout, out of frame; the client is then closed) leaves
        open what ran of that list and the ones after it."""
        quoted = [[[_quote(arg) for arg in command] for command in commands] for commands in lists]
        words = [word for commands in quoted for command in commands for word in command]
        if not lists or not all(lists) or None in words:
            return None
        text = "".join(
            " ; ".join(" ".join(w for w in command if w is not None) for command in commands) + "\n"
            for commands in quoted
        )
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                return None
            deadline = time.monotonic() + self.timeout
            replies: list[ChainReply] = []
            try:
                proc.stdin.write(text.encode())
                proc.stdin.flush()
                for commands in lists:
                    reply = self._list_reply(proc.stdout.fileno(), len(commands), deadline)
                    if not reply.answered:
                        break
                    replies.append(reply)
            except (OSError, ValueError):
                pass
            if len(replies) < len(lists):
                self._close_locked()
                lost = ChainReply(answered=False, ok=False, out=b"")
                return [*replies, *[lost] * (len(lists) - len(replies))]
            # tmux runs nothing of a list after its failed command; should it ever answer more,
            # read past it now rather than take it for the next call's answer.
            cut_short = any(reply.skipped for reply in replies)
            if cut_short and not self._synchronized(f"orch-sync-{uuid.uuid4().hex}"):
                self._close_locked()
            return replies

    def _list_reply(self, fd: int, commands: int, deadline: float) -> ChainReply:
        """The blocks of one command list: one per command, up to the first that failed."""
        outs: list[bytes] = []
        for _ in range(commands):
            reply = self._reply(fd, deadline)
            if reply is None:
                return ChainReply(answered=False, ok=False, out=b"".join(outs))
            ok, out = reply
            if not ok:
                skipped = commands - len(outs) - 1
                return ChainReply(True, False, b"".join(outs), error=out, skipped=skipped)
            outs.append(out)
        return ChainReply(answered=True, ok=True, out=b"".join(outs))

    def close(self) -> None:
        """End the client. Its session stays until the tmux adapter kills it (`Tmux.close`)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        """End the client (EOF); its session stays for the next `open`."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _synchronized(self, marker: str) -> bool:
        """Skip the replies to the start-up commands: read until the one that prints `marker`."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return False
        deadline = time.monotonic() + self.timeout
        try:
            proc.stdin.write(f"display-message -p '{marker}'\n".encode())
            proc.stdin.flush()
            while (reply := self._reply(proc.stdout.fileno(), deadline)) is not None:
                if reply == (True, marker.encode() + b"\n"):
                    return True
        except (OSError, ValueError):
            pass
        return False

    def _reply(self, fd: int, deadline: float) -> tuple[bool, bytes] | None:
        """Read up to the end of the next block of a command this client sent: (succeeded,
        output), or None (EOF, timeout, or a block that does not close as it opened).
        Notifications are skipped, and so are blocks with flags 0: tmux runs commands of its own
        on the client's behalf (seen right after start-up), whose empty answer is not ours."""
        begin: bytes | None = None
        out: list[bytes] = []
        size = 0
        while True:
            line = self._line(fd, deadline)
            if line is None:
                return None
            if begin is None:
                if line.startswith(b"%begin "):
                    begin = line.removeprefix(b"%begin ")
                continue  # a notification (%sessions-changed, %window-add ...)
            if line in (b"%end " + begin, b"%error " + begin):
                if not begin.endswith(b" 1"):  # not sent by this client
                    begin, out, size = None, [], 0
                    continue
                return line.startswith(b"%end"), b"".join(out)
            size += len(line) + 1
            if size > MAX_REPLY_BYTES:
                return None
            out.append(line + b"\n")

    def _line(self, fd: int, deadline: float) -> bytes | None:
        """The next line without its newline; None on EOF or when the deadline passes."""
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or len(self._pending) > MAX_REPLY_BYTES:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line


def client_env() -> dict[str, str]:
    """This process's environment without what would make a tmux client think it runs inside
    another tmux (for every client orch starts)."""
    return {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV_DROP}


def _quote(arg: str) -> str | None:
    """`arg` as one single-quoted word of a control-mode command line, which tmux's parser takes
    literally; None for an argument that cannot be one (a single quote, or a line break: a
    control command is one line). Such commands go to a client process instead."""
    if "'" in arg or "\n" in arg or "\r" in arg:
        return None
    return f"'{arg}'"
