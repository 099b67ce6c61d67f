"""The tmux adapter: the only module that talks to tmux.

Every method is one `tmux -L SOCKET -f /dev/null ...` client process (a few only in rare cases,
noted on the method), built as an argument list (never a shell), with a timeout; related commands
are chained into that one call with ";" as their own argv item. `observe` and `start` go over
the control client (adapters/tmux_control) when one runs: the once-a-second listing and the
launch on a restart's path then start no process. Why this shape (figures from
reference/tmux-measurements.md, tmux 3.3a):

- Plain subprocess, not libtmux. libtmux's object walk (server.sessions -> windows -> panes) costs
  1 + 2N tmux processes, ≈ 830 ms for 100 sessions, and even `server.panes` asks for ~100 format
  fields per pane (≈ 10x a raw listing). Its `cmd()` could carry our formats, but it cannot feed
  stdin (`load-buffer -`), take a timeout or hand back raw bytes, and it runs `tmux -V` first.
- `observe()` is ONE `list-panes -a` call for all agents: ≈ 3-4 ms for 100 panes against ≈ 3 ms
  per agent for a has-session or capture per session. `capture_many()` chains captures for the
  same reason (≈ 0.25 ms per extra pane instead of ≈ 3 ms).
- Deaths are seen by polling `#{pane_dead}`, not by the `pane-died` hook: on this tmux build the
  hook misses 40-90 % of deaths (a SIGCHLD race in libutempter). With `remain-on-exit off` a pane
  whose process ends destroys its session on EOF alone, reliably, so "session gone" is the signal;
  `#{pane_dead_status}` is unreliable too, so exit codes are recorded by the caller's script.
- `paste()` keeps LF as LF (`paste-buffer -r`): the agent receives exactly the message's bytes
  between the paste brackets, and its newlines stay distinguishable from the Enter (CR) sent after
  it. Without -r tmux turns every LF into CR, which is Enter to an agent that has not enabled
  bracketed paste. The text is not interpreted here: callers strip ESC and other control bytes
  first (tmux 3.3a lets `ESC[201~` end a bracketed paste early).

Nothing a caller passes is interpreted by tmux (see `_argv`): every argument that ends in ";"
is escaped so it cannot end its command, `#` is doubled in the two arguments tmux expands as
formats (`new-session -c` and the `pipe-pane` command, where `#(...)` would run a shell command),
key names are checked against tmux's key table (reconciler.api.keys) so no key can smuggle a
command, and the agent's environment goes to the pane through a 0600 file its shell sources and
empties before anything else runs, never through `-e KEY=VALUE`: the tmux server keeps the argv of
the client that started it in /proc/PID/cmdline for every local user to read. The agent's command
is in a 0600 launch file too, so the pane's own command line (world-readable as well) holds only
paths. The shell empties the env file with a redirection (no process: an `rm` there cost every
launch a fork and exec, ≈ 2.3 ms of a restart); the emptied file is removed by the adapter's next
`observe` or `start`.

Session names are DNS labels and targets are exact matches (`=NAME`), so no name is ever taken as
a prefix or pattern. "No server running" is not an error for reads that can answer without one
(`observe`, `session_exists`, kills); a command aimed at a session then raises NotFound. A server
with no sessions answers every target, even `list-panes -a`, with "no current target": that means
no sessions too. Unavailable is for a tmux that cannot be run, reached, started or does not answer
in time; any other refusal is a TmuxError.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.tmux_control import ControlClient, client_env, is_control_session
from reconciler.adapters.tmuxbinary import INSTALL_HINT
from reconciler.adapters.tmuxserver import find_server, is_server_of, remake_socket, socket_path
from reconciler.api.errors import InvalidInput, NotFound, OrchError, Unavailable
from reconciler.api.keys import check_key
from reconciler.api.observation import PaneObservation


def _fields(*names: str) -> str:
    """A tmux format of these fields, tab-separated."""
    return "\t".join("#{" + name + "}" for name in names)


#: A pane's stamp: which installation started it, for which launch, as `INSTALL.LAUNCH.`. orch
#: names each launch file `launch-INSTALL.LAUNCH.RANDOM` (see `start`), and tmux reports the
#: file's name in the pane's start command, which no one can change once the pane runs. A pane
#: of an orch that stamped its session with the options `@orch_install` and `@orch_launch`
#: instead (before 2026-12) is read from those, with every byte but a stamp's own removed: an
#: option's value is anyone's to set, and a tab or a line break in it would split the listing.
#: Setting two options cost every launch ≈ 1 ms at 100 agents (tmux revisits every session).
_STAMP_FORMAT = (
    "#{?#{m:launch-*.*.*,#{b:pane_start_command}},#{b:pane_start_command},"
    "#{s/[^-A-Za-z0-9_]//:@orch_install}.#{s/[^-A-Za-z0-9_]//:@orch_launch}.}"
)
#: The fields of a PaneObservation, in order, tab-separated. None holds a raw tab or line break:
#: names are DNS labels, tmux escapes a start command's, and the rest are numbers or the stamp.
PANE_FORMAT = "\t".join(
    (
        _fields(
            "session_name",
            "pane_id",
            "pane_pid",
            "pane_dead",
            "window_activity",
            "session_created",
            "session_attached",
        ),
        _STAMP_FORMAT,
        _fields("cursor_y"),
    )
)

#: What `observe` and `start` ask of each pane: its fields, then its server's pid.
LISTING_FORMAT = PANE_FORMAT + "\t#{pid}"
#: What `observe` asks first over the control client: fields that change whenever any of the
#: listing's do (a new session has a new pane id, and its creation time and stamp come with
#: it; the server is the control client's own). When they match the last answer, so does the
#: listing: an idle pass costs the server less than half of a whole listing.
CHANGE_FORMAT = _fields(
    "session_name",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "window_activity",
    "session_attached",
    "cursor_y",
)

#: How long after a control client could not be started (or broke) another is tried.
CONTROL_RETRY_SECONDS = 10.0
#: The first line of every env file: a file that holds anything has not been read yet.
ENV_FILE_HEADER = "# orch: this launch's environment; its shell empties this file once read\n"
#: One `send-keys` client call carries at most ≈ 16 KB; stay well under it.
LITERAL_CHUNK_BYTES = 8192
#: The most argument bytes one chained call carries (tmux's limit is ≈ 16 KB per command line).
CHAIN_BYTES = 8192

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LAUNCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A stamp as PANE_FORMAT reports it: from the launch file's name, or `INSTALL.LAUNCH.` from the
#: options of an older orch.
_STAMP = re.compile(r"(?:launch-)?([A-Za-z0-9_-]{0,64})\.([A-Za-z0-9_-]{0,64})\.")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_SERVER = ("no server running", "(No such file or directory)", "(Connection refused)")
_EXITING = ("server exited", "lost server")
_UNREACHABLE = (
    "error connecting to",
    "protocol version mismatch",
    "couldn't create directory",
    "socket path",
    "failed to connect",
    *_EXITING,
    *_NO_SERVER,
)
#: A server without sessions answers every target (even `list-panes -a`) with this.
_NO_SESSIONS = ("no current target",)
_MISSING = ("can't find session", "can't find window", "can't find pane", *_NO_SESSIONS)
#: One tmux command of a chained call: its name and arguments, none of them interpreted.
_Command = Sequence[str]
#: The server's settings every agent session relies on: an empty server stays, a pane whose
#: process ended goes with its session, and 10,000 lines of scrollback (taken at the pane's
#: creation, so set before it). A client process sends them with every launch (it may start the
#: server); over the control client they are sent once per connection, as each set-option makes
#: tmux revisit every session: at 100 agents that had made a launch 2-3 ms slower than at 20.
SERVER_SETUP: tuple[_Command, ...] = (
    ("start-server",),
    ("set-option", "-s", "exit-empty", "off"),
    ("set-option", "-g", "remain-on-exit", "off"),
    ("set-option", "-g", "history-limit", "10000"),
)


class TmuxError(OrchError):
    """tmux refused a command for a reason other than a missing session or server."""


class TmuxUnavailable(Unavailable):
    """tmux cannot be run, reached or started, or did not answer in time."""


class SessionExists(TmuxError):
    """A session of that name already runs."""


@dataclass(frozen=True, slots=True)
class _Result:
    """A finished tmux client call: exit status, raw stdout, first line of stderr."""

    ok: bool
    out: bytes
    err: str


class Tmux:
    """One tmux server, addressed by its socket name (`tmux -L`).

    With `control` (an id, for the controller's long-lived adapter) `observe` asks over one
    persistent control-mode client while a server runs (see tmux_control), not a process per
    call; `close` ends that client."""

    def __init__(
        self, socket_name: str, tmux_bin: str = "tmux", timeout: float = 10.0, control: str = ""
    ) -> None:
        self.socket_name = socket_name
        self.tmux_bin = tmux_bin
        self.timeout = timeout
        self._socket_file = str(socket_path(socket_name))  # looked at before every call
        self._server_pid: int | None = None  # the server last seen answering
        self._searched = False  # the process table was searched for a server without socket
        self._notices: list[str] = []
        self._control = ControlClient(socket_name, control, tmux_bin, timeout) if control else None
        self._control_retry_at = 0.0
        self._server_set_up = False  # SERVER_SETUP done over the control client now connected
        self._env_files: list[Path] = []  # written by `start`, removed once their shell read them
        self._folder: Path | None = None  # launch and env files when the caller names no folder
        self._last_listing: tuple[bytes, dict[str, PaneObservation]] = (b"", {})
        self._last_changes: bytes | None = None  # CHANGE_FORMAT's answer before that listing

    def observe(self) -> dict[str, PaneObservation]:
        """Every session's first pane, from one `list-panes -a`; {} when no server runs.
        Control clients' own sessions are left out: they are never agents."""
        ask = ("list-panes", "-a", "-F", LISTING_FORMAT)
        self._remove_read_env_files()
        self._keep_socket()  # the control client still reaches a server whose socket was deleted
        out = None
        if self._control is not None:
            changes = self._control.run(("list-panes", "-a", "-F", CHANGE_FORMAT))
            if changes is not None and changes == self._last_changes and self._last_listing[0]:
                return dict(self._last_listing[1])  # the usual idle pass: nothing moved
            self._last_changes = changes
            out = self._control.run(ask)
        if out is None:
            self._last_changes = None
            result = self._run(ask)
            if not result.ok:
                if _has(result.err, _NO_SERVER + _NO_SESSIONS):
                    return {}
                raise self._error(result.err)
            out = result.out
            self._connect()  # a server runs: the next observation needs no process
        if out == self._last_listing[0]:  # nothing moved, nothing to parse
            return dict(self._last_listing[1])
        panes: dict[str, PaneObservation] = {}
        for line in out.decode(errors="replace").splitlines():
            pane = self._parse_listing(line)
            if not is_control_session(pane.session):
                panes.setdefault(pane.session, pane)
        self._last_listing = (out, panes)
        return dict(panes)

    def take_notices(self) -> list[str]:
        """What the adapter repaired on its own since the last call (a remade socket)."""
        notices, self._notices = self._notices, []
        return notices

    def close(self) -> None:
        """End the control client, if one runs, and its session. The session is killed by a
        client process: a `kill-session` sent over the control client itself was now and then
        dropped by tmux along with the departing client."""
        self._remove_read_env_files()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._control is None:
            return
        session = self._control.session
        self._control.close()
        if session:
            with contextlib.suppress(Unavailable):
                self._call(("kill-session", "-t", f"={session}"))

    def _connect(self) -> None:
        """Start the control client, at most once per CONTROL_RETRY_SECONDS."""
        if self._control is None or time.monotonic() < self._control_retry_at:
            return
        self._control_retry_at = time.monotonic() + CONTROL_RETRY_SECONDS
        self._server_set_up = False
        if self._control.open():
            replies = self._control.run_lists([SERVER_SETUP]) or []
            self._server_set_up = bool(replies) and all(reply.ok for reply in replies)

    def _remove_read_env_files(self) -> None:
        """Remove the env files `start` wrote whose shell has read and emptied them (or that
        are gone); one not read yet stays for its shell."""
        left = []
        for path in self._env_files:
            try:
                if path.stat().st_size == 0:
                    path.unlink()
                else:
                    left.append(path)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(path)
        self._env_files = left

    def start(
        self,
        name: str,
        script: str,
        workdir: str,
        env: Mapping[str, str],
        width: int = 200,
        height: int = 50,
        launch_id: str = "",
        pipe_command: str = "",
        env_dir: Path | None = None,
        replace: bool = False,
        installation: str = "",
    ) -> PaneObservation:
        """Create detached session NAME running SCRIPT under `/bin/sh` with `env`; its pane.

        SCRIPT goes to a private launch file (`launch-*`), `env` to a private env file
        (`env-*`), both in `env_dir` (a private folder of this adapter's when None); the pane
        runs `/bin/sh LAUNCH-FILE`, whose first lines source the env file and empty it. So the
        command line tmux and the pane show holds two paths: neither the agent's command nor
        its secrets, and nothing that cannot go over the control client. Launch files stay for
        the shell that reads them; the caller removes them with the agent's other launch files.

        `installation` and `launch_id` are stamped on the pane through the launch file's name
        (see _STAMP_FORMAT) and reported by `observe`: no command beyond the start is needed.
        `pipe_command` receives the pane's output from its first byte: it is attached in the same
        tmux command, before the new process can print anything worth missing. With `replace`, a
        session NAME that still exists is killed first: a restart needs no look at tmux first,
        whether or not tmux has removed the dead session yet.
        """
        target = _session_target(name)
        if not os.path.isdir(workdir):
            raise NotFound(f"workdir {workdir} does not exist")
        stamp = f"launch-{_stamp_part(installation)}.{_stamp_part(launch_id)}."
        self._remove_read_env_files()
        folder = env_dir if env_dir is not None else self._own_folder()
        env_file = _write_private(folder, "env-", _env_lines(env))
        self._env_files.append(env_file)
        try:
            launch_file = _write_private(folder, stamp, _sourcing(env_file) + script)
        except BaseException:
            env_file.unlink(missing_ok=True)
            raise
        commands: list[_Command] = [
            (
                *("new-session", "-d", "-s", name, "-P", "-F", LISTING_FORMAT),
                *("-c", _format_literal(workdir), "-x", str(width), "-y", str(height)),
                # The launch id (orch's own token, no secret) also in the shell's initial
                # environment, where a stop finds the shell itself, not just its children.
                *(("-e", f"ORCH_LAUNCH_ID={launch_id}") if launch_id else ()),
                *("--", "/bin/sh", str(launch_file)),
            ),
            # The target named: a control client's current session is its own.
            *(
                [("pipe-pane", "-t", f"{target}:", "-o", _format_literal(pipe_command))]
                if pipe_command
                else []
            ),
        ]
        try:
            result = self._start_call(name, commands, replace)
        except OrchError:
            env_file.unlink(missing_ok=True)
            launch_file.unlink(missing_ok=True)
            raise
        if not result.ok:
            env_file.unlink(missing_ok=True)
            launch_file.unlink(missing_ok=True)
            if result.err.startswith("duplicate session"):
                raise SessionExists(f"tmux session {name} already exists")
            raise self._error(result.err)
        return self._parse_listing(result.out.decode(errors="replace").strip("\n"))

    def _start_call(self, name: str, commands: Sequence[_Command], replace: bool) -> _Result:
        """The launch commands over the control client when one runs (no tmux process to start:
        ≈ 3 ms off every launch), else in one client process. With `replace`, the old session
        is killed first: over the control client by a command list of its own, sent with the
        launch (a kill that finds nothing just fails); in a client process inside the same
        call, guarded by a format, as a plain kill-session of a missing session would end the
        chain."""
        target = _session_target(name)
        control = self._control if self._control is not None and self._control.connected else None
        if control is not None:
            self._keep_socket()
            kill_first: list[Sequence[_Command]] = (
                [[("kill-session", "-t", target)]] if replace else []
            )
            setup = () if self._server_set_up else SERVER_SETUP
            replies = control.run_lists([*kill_first, [*setup, *commands]])
            if replies is not None:
                reply = replies[-1]
                if not reply.answered:
                    raise TmuxUnavailable(
                        f"tmux (socket {self.socket_name}) did not answer a launch in {target}"
                    )
                return _Result(ok=reply.ok, out=reply.out, err=_first_line(reply.error))
        # `#{S:...}` loops over the sessions: "1" when one is named NAME (a DNS label, so it is
        # safe inside the format).
        exists = f"#{{S:#{{?#{{==:#{{session_name}},{name}}},1,}}}}"
        kill = [("if-shell", "-F", exists, f"kill-session -t {target}")] if replace else []
        return self._run(*SERVER_SETUP, *kill, *commands)

    def _own_folder(self) -> Path:
        """A private folder for launch and env files when the caller names none (made once;
        removed by `close`)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="orch-launch-"))
        return self._folder

    def attach(self, name: str) -> None:
        """Replace this process with a tmux client attached to session NAME (for a person)."""
        os.execvp(
            self.tmux_bin,
            [self.tmux_bin, "-L", self.socket_name, "attach-session", "-t", _session_target(name)],
        )

    def attach_and_wait(self, name: str) -> None:
        """Attach this terminal to session NAME until the person detaches (for `orch top`)."""
        subprocess.run(
            [self.tmux_bin, "-L", self.socket_name, "attach-session", "-t", _session_target(name)],
            check=False,
        )

    def kill_session(self, name: str) -> None:
        """Kill session NAME; a session (or server) that is already gone is fine."""
        result = self._run(("kill-session", "-t", _session_target(name)))
        if not result.ok and not _has(result.err, _NO_SERVER + _MISSING):
            raise self._error(result.err)

    def version(self) -> str | None:
        """The tmux version (`3.3a`), or None when tmux cannot be run."""
        try:
            out = self._call(("-V",)).out.decode(errors="replace").strip()
        except Unavailable:
            return None
        return out.removeprefix("tmux ").strip() or None

    def kill_server_if_empty(self) -> bool:
        """Stop the server when it holds no sessions (`exit-empty off` keeps an empty one alive);
        True when one was stopped."""
        if self.observe():
            return False
        return self._run(("kill-server",)).ok

    def session_exists(self, name: str) -> bool:
        """Whether session NAME exists (False when no server runs)."""
        result = self._run(("has-session", "-t", _session_target(name)))
        if not result.ok and not _has(result.err, _NO_SERVER + _MISSING):
            raise self._error(result.err)
        return result.ok

    def capture_many(self, names: Iterable[str]) -> dict[str, str]:
        """Screens of many sessions in few chained calls; sessions that are gone are left out.

        A chain stays under CHAIN_BYTES of arguments (tmux refuses a command line longer than
        its message size, ≈ 16 KB), so a team of any size takes ⌈size / chain⌉ calls. tmux stops
        a chain at its first failing command, so each missing session costs one more call for
        the names after it.
        """
        screens: dict[str, str] = {}
        pending = list(names)
        while pending:
            separator = f"~~orch-capture-{uuid.uuid4().hex}~~"
            batch = _batch(pending, separator)
            result = self._run(*_chained_captures(batch, separator))
            sections = result.out.decode(errors="replace").split(separator + "\n")[1:]
            if not result.ok:
                if _has(result.err, _NO_SERVER + _NO_SESSIONS):
                    return screens
                if not _has(result.err, _MISSING):
                    raise self._error(result.err)
                # The chain stopped at the first missing session: drop its empty section.
                sections = sections[:-1]
            screens.update(zip(batch, sections, strict=False))
            pending = pending[len(sections) + (0 if result.ok else 1) :]
        return screens

    def paste(self, name: str, text: str) -> None:
        """Deliver `text` to NAME's pane as one bracketed paste, byte for byte, LF kept as LF."""
        if not text:
            return
        buffer = f"orch-{uuid.uuid4().hex}"
        target = _session_target(name)
        try:
            self._checked(
                name,
                ("has-session", "-t", target),
                ("load-buffer", "-b", buffer, "-"),
                ("paste-buffer", "-p", "-r", "-d", "-b", buffer, "-t", target + ":"),
                stdin=text.encode(errors="surrogateescape"),
            )
        except OrchError:
            self._run(("delete-buffer", "-b", buffer))
            raise

    def send_keys(self, name: str, keys: Sequence[str]) -> None:
        """Send tmux key names (Enter, Escape, C-c, ...) to NAME's pane; other names are refused."""
        for key in keys:
            try:
                check_key(key)
            except ValueError as error:
                raise InvalidInput(str(error)) from None
        if keys:
            self._checked(name, ("send-keys", "-t", _pane_target(name), *keys))

    def send_literal(self, name: str, text: str) -> None:
        """Type `text` into NAME's pane as literal keys (one call per ≈ 8 KB)."""
        for chunk in _utf8_chunks(text, LITERAL_CHUNK_BYTES):
            self._checked(name, ("send-keys", "-l", "-t", _pane_target(name), "--", chunk))

    def _checked(self, name: str, *commands: _Command, stdin: bytes = b"") -> _Result:
        """Run commands aimed at session NAME; raise NotFound when it (or the server) is gone."""
        result = self._run(*commands, stdin=stdin)
        if result.ok:
            return result
        if _has(result.err, _NO_SERVER + _MISSING):
            raise NotFound(f"tmux session {name} not found")
        raise self._error(result.err)

    def _run(self, *commands: _Command, stdin: bytes = b"") -> _Result:
        """One tmux client call to our server (whose socket is made again if it was deleted)."""
        self._keep_socket()
        return self._call(*commands, stdin=stdin)

    def _keep_socket(self) -> None:
        """Before a call: if the socket file is gone while our server runs, have the server make
        it again (see tmuxserver), so no call starts a second server beside an unreachable one."""
        if os.path.exists(self._socket_file):
            return
        path = Path(self._socket_file)
        pid = self._server_pid
        if pid is not None and not is_server_of(pid, self.socket_name):
            pid = self._server_pid = None
        if pid is None and not self._searched:
            self._searched = True
            pid = find_server(self.socket_name)
        if pid is None:
            return
        if not remake_socket(pid, path):
            raise TmuxUnavailable(
                f"tmux server (pid {pid}) lost its socket {path} and did not make it again"
            )
        self._server_pid = pid
        self._notices.append(
            f"the socket {path} of tmux server (pid {pid}) had been deleted; "
            "made it again (SIGUSR1), nothing restarted"
        )

    def _parse_listing(self, line: str) -> PaneObservation:
        """One LISTING_FORMAT line; notes the server's pid."""
        fields, _, server = line.rpartition("\t")
        if server.isdigit():
            self._server_pid = int(server)
        return _parse_pane(fields)

    def _call(self, *commands: _Command, stdin: bytes = b"") -> _Result:
        """One tmux client call on our socket, with our timeout and a clean client environment."""
        argv = [self.tmux_bin, "-L", self.socket_name, "-f", "/dev/null", *_argv(commands)]
        try:
            proc = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                timeout=self.timeout,
                env=client_env(),
                check=False,
            )
        except FileNotFoundError:
            raise TmuxUnavailable(INSTALL_HINT) from None
        except subprocess.TimeoutExpired:
            raise TmuxUnavailable(
                f"tmux (socket {self.socket_name}) did not answer within {self.timeout:g}s"
            ) from None
        return _Result(ok=proc.returncode == 0, out=proc.stdout, err=_first_line(proc.stderr))

    def _error(self, err: str) -> OrchError:
        """The error for a failed call: Unavailable when the server is out of reach."""
        if _has(err, _UNREACHABLE):
            return TmuxUnavailable(f"tmux (socket {self.socket_name}): {err}")
        return TmuxError(f"tmux (socket {self.socket_name}): {err or 'command failed'}")


def _argv(commands: Iterable[_Command]) -> list[str]:
    """Commands chained with ";" items, each argument taken literally by tmux's parser.

    tmux splits an argument that ends in ";" into the argument and the end of its command;
    a "\\;" at the end stands for a literal ";". So a backslash goes before every final ";".
    """
    argv: list[str] = []
    for command in commands:
        if argv:
            argv.append(";")
        argv += [arg[:-1] + "\\;" if arg.endswith(";") else arg for arg in command]
    return argv


def _first_line(message: bytes) -> str:
    """The first line of what tmux said of an error ("" for nothing)."""
    return next(iter(message.decode(errors="replace").strip().splitlines()), "")


def _format_literal(text: str) -> str:
    """`text` for an argument that tmux expands as a format: `#` doubled, so no `#(...)`
    runs a command and no `#{...}` is replaced."""
    return text.replace("#", "##")


def _env_lines(env: Mapping[str, str]) -> str:
    """`env` as `export KEY='value'` lines, after a header line: never empty, as an empty env
    file is one its shell has read (see `_remove_read_env_files`)."""
    for key in env:
        if not _ENV_NAME.fullmatch(key):
            raise InvalidInput(f"invalid environment variable name {key!r}")
    return ENV_FILE_HEADER + "".join(
        f"export {key}={shlex.quote(value)}\n" for key, value in env.items()
    )


def _write_private(folder: Path, prefix: str, text: str) -> Path:
    """`text` in a new private (0600) file in `folder`; its path."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as file:
            file.write(text)
    except BaseException:  # a full disk: no half-written secrets left behind
        os.unlink(path)
        raise
    return Path(path)


def _sourcing(env_file: Path) -> str:
    """The script lines that load `env_file` into the pane's shell and empty it (a redirection,
    so no process is started for it)."""
    quoted = shlex.quote(str(env_file))
    return f". {quoted}\n: > {quoted}\n"


def _has(err: str, markers: Iterable[str]) -> bool:
    """Whether tmux's error line contains one of `markers`."""
    return any(marker in err for marker in markers)


def _session_target(name: str) -> str:
    """`=NAME`: an exact-match session target; the name must be a DNS label."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid tmux session name {name!r}: must be a DNS label")
    return f"={name}"


def _pane_target(name: str) -> str:
    """`=NAME:`: the current pane of session NAME (exact match)."""
    return _session_target(name) + ":"


def _stamp_part(value: str) -> str:
    """`value` (an installation or launch id) as it goes into a launch file's name."""
    if value and not _LAUNCH_ID.fullmatch(value):
        raise InvalidInput(f"invalid launch stamp {value!r}: letters, digits, - and _ only")
    return value


def _parse_pane(line: str) -> PaneObservation:
    """One PANE_FORMAT line."""
    session, pane_id, pid, dead, activity, created, attached, stamp, cursor_y = line.split("\t")
    stamped = _STAMP.match(stamp)
    installation, launch_id = stamped.groups() if stamped else ("", "")
    return PaneObservation(
        session=session,
        pane_id=pane_id,
        pid=int(pid),
        dead=dead == "1",
        activity=int(activity),
        created=int(created),
        launch_id=launch_id,
        attached=attached not in ("", "0"),
        installation=installation,
        cursor_y=int(cursor_y) if cursor_y.isdigit() else None,
    )


def _capture_args(name: str) -> _Command:
    """`capture-pane` of NAME's visible screen."""
    return ["capture-pane", "-p", "-t", _pane_target(name)]


def _batch(names: Sequence[str], separator: str) -> list[str]:
    """The first names whose chained captures stay under CHAIN_BYTES (at least one)."""
    size = 0
    for count, name in enumerate(names):
        commands = _chained_captures([name], separator)
        size += sum(len(arg) + 1 for command in commands for arg in command) + 4
        if size > CHAIN_BYTES and count:
            return list(names[:count])
    return list(names)


def _chained_captures(names: Sequence[str], separator: str) -> list[_Command]:
    """`display SEP ; capture A ; display SEP ; capture B ...` as commands."""
    commands: list[_Command] = []
    for name in names:
        commands += [("display-message", "-p", separator), _capture_args(name)]
    return commands


def _utf8_chunks(text: str, limit: int) -> Iterator[str]:
    """Split `text` into pieces of at most `limit` UTF-8 bytes, never inside a character."""
    data = text.encode(errors="surrogateescape")
    while data:
        cut = min(len(data), limit)
        while cut < len(data) and data[cut] & 0xC0 == 0x80:
            cut -= 1
        yield data[:cut].decode(errors="surrogateescape")
        data = data[cut:]
