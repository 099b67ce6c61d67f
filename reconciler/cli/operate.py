"""Operating verbs: stop, start and restart an agent, answer its prompt, attach to it; run or stop
the controller, or install it as a systemd service.

Each verb records an intent in the store and wakes the controller, which carries it out and
writes the agent's status (one writer per fact); the verb then waits until the controller says it
is done, so its exit code tells the truth.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from reconciler.adapters.deadline import wait_until
from reconciler.api.errors import InvalidInput, NotFound, OrchError, Unavailable
from reconciler.api.status import AgentState
from reconciler.cli.completion import complete_agent_kind, complete_agents
from reconciler.cli.installation import POLL_SECONDS, Installation, who
from reconciler.cli.options import F, installation, installation_options
from reconciler.core.sanitize import check_size, sanitize

if TYPE_CHECKING:
    from reconciler.api.intents import AnswerOutcome

#: How long a verb waits for the controller to carry it out.
SERVE_SECONDS = 30.0
#: tmux key names `orch answer --keys` accepts (Enter, Down, C-c, M-x, F1, y, ...).
KEY_NAME = re.compile(r"^[A-Za-z0-9_+-]{1,20}$")


def agent_name(kind_or_ref: str, name: str | None) -> str:
    """`agent NAME` or `agent/NAME`: the agent's name."""
    kind, slash, rest = kind_or_ref.partition("/")
    if slash:
        if name is not None:
            raise InvalidInput(f"give {kind_or_ref} or {kind} NAME, not both")
        name = rest
    if kind.lower() not in ("agent", "agents", "ag") or not name:
        raise InvalidInput(f"expected `agent NAME` or `agent/NAME`, got {kind_or_ref!r}")
    return name


def agent_ref(command: F) -> F:
    """The `agent NAME` or `agent/NAME` arguments of stop, start and restart."""
    command = click.argument("name", required=False, shell_complete=complete_agents)(command)
    return click.argument("kind", metavar="agent", shell_complete=complete_agent_kind)(command)


def _existing_agent(inst: Installation, name: str) -> None:
    if inst.reader.object("Agent", name) is None:
        raise NotFound(f'agent "{name}" not found')


def _serve(inst: Installation, done: Callable[[], bool], what: str) -> None:
    """Wake the controller and wait until `done()` holds."""
    inst.start_controller()
    wait_until(
        done,
        SERVE_SECONDS,
        interval=POLL_SECONDS,
        failure=lambda: OrchError(f"the controller did not {what} within {SERVE_SECONDS:g}s"),
    )


@click.command()
@installation_options
@agent_ref
def stop(kind: str, name: str | None) -> None:
    """Stop an agent and keep it Stopped (across controller restarts and applies) until `start`."""
    inst = installation()
    name = agent_name(kind, name)
    _existing_agent(inst, name)
    inst.store.hold_agent(name, who("orch stop"))

    def stopped() -> bool:
        record = inst.store.agent_record(name)
        return record is not None and record.state is AgentState.STOPPED and record.pid is None

    _serve(inst, stopped, f"stop agent/{name}")
    click.echo(f"agent/{name} stopped")


def _request_start(verb: str, kind: str, name: str | None) -> None:
    inst = installation()
    name = agent_name(kind, name)
    _existing_agent(inst, name)
    seq = inst.store.request_start(name, verb, who(f"orch {verb}"))

    def served() -> bool:
        record = inst.store.agent_record(name)
        return record is not None and record.request_seen >= seq

    _serve(inst, served, f"{verb} agent/{name}")
    click.echo(f"agent/{name} {verb}ed")


@click.command()
@installation_options
@agent_ref
def start(kind: str, name: str | None) -> None:
    """Start an agent that `orch stop` stopped (or that exited under its restartPolicy)."""
    _request_start("start", kind, name)


@click.command()
@installation_options
@agent_ref
def restart(kind: str, name: str | None) -> None:
    """Stop and start an agent now: a manual restart, not a crash (the backoff is reset)."""
    _request_start("restart", kind, name)


@click.command()
@installation_options
@click.argument("agent", shell_complete=complete_agents)
@click.argument("words", nargs=-1, required=True)
@click.option("--keys", "as_keys", is_flag=True, help="WORDS are tmux key names (Enter, Down, C-c)")
@click.option("--no-enter", is_flag=True, help="type the text without pressing Enter")
def answer(agent: str, words: tuple[str, ...], as_keys: bool, no_enter: bool) -> None:
    """Answer the prompt AGENT waits on now: TEXT then Enter, or --keys K [K...]."""
    inst = installation()
    _existing_agent(inst, agent)
    record = inst.store.agent_record(agent)
    state = record.state if record else AgentState.STARTING
    if state is not AgentState.AWAITING_HUMAN:
        raise InvalidInput(f'agent "{agent}" has no prompt waiting for an answer (it is {state})')
    if as_keys:
        bad = [k for k in words if not KEY_NAME.match(k)]
        if bad:
            raise InvalidInput(f"--keys: {bad[0]!r} is not a tmux key name")
        text, keys = "", words
    else:
        text = " ".join(words)
        check_size(text)
        text, keys = sanitize(text).text, ()
    answer_id = inst.store.add_answer(agent, text, keys, not no_enter, who("orch answer"))
    outcome: list[AnswerOutcome] = []

    def served() -> bool:
        found = inst.store.answer_outcome(answer_id)
        if found is not None:
            outcome.append(found)
        return found is not None

    _serve(inst, served, f"answer agent/{agent}")
    if not outcome[0].answered:
        raise InvalidInput(f"agent/{agent}: {outcome[0].detail}")
    click.echo(f"agent/{agent} {outcome[0].detail}")


@click.group(invoke_without_command=True)
@installation_options
@click.option(
    "--take-over",
    is_flag=True,
    help="stop a controller already running for the state dir and take its place",
)
@click.pass_context
def controller(ctx: click.Context, take_over: bool) -> None:
    """Run the control loop in the foreground (what the systemd unit starts); see also
    `controller status` and `controller stop`."""
    if ctx.invoked_subcommand is not None:
        return
    from reconciler.adapters.environment import use_controller_environment
    from reconciler.adapters.statedir import ensure_state_dir, read_only_folder
    from reconciler.adapters.tmuxbinary import require_tmux
    from reconciler.controller.loop import Controller, configure_logging

    inst = installation()
    require_tmux()
    ensure_state_dir(inst.state_dir)
    if read_only_folder(inst.state_dir):
        raise Unavailable(
            f"the state dir {inst.state_dir} is read-only: a controller writes its store, "
            "log and pid file there"
        )
    use_controller_environment(inst.state_dir, inst.socket)
    configure_logging(inst.paths)
    Controller(inst.state_dir, inst.socket).run(take_over=take_over)


@controller.command("status")
@installation_options
def controller_status() -> None:
    """Exit 0 and print the pid when a controller runs for this state dir, exit 3 otherwise."""
    from reconciler.controller.daemon import controller_running, read_pid

    inst = installation()
    if not controller_running(inst.paths):
        raise Unavailable(f"no controller runs for {inst.state_dir}")
    click.echo(f"controller running (pid {read_pid(inst.paths)}) for {inst.state_dir}")
    click.echo(f"log: {inst.paths.log}")


@controller.command("stop")
@installation_options
def controller_stop() -> None:
    """Stop this state dir's controller; the agents keep running in tmux."""
    from reconciler.adapters.logwriter import stop_writer
    from reconciler.adapters.tmux import Tmux
    from reconciler.controller.daemon import controller_running, read_pid

    inst = installation()
    if controller_running(inst.paths):
        pid = read_pid(inst.paths)
        if pid is None:
            raise Unavailable(f"the controller of {inst.state_dir} wrote no pid; cannot stop it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait_until(
            lambda: not controller_running(inst.paths),
            SERVE_SECONDS,
            interval=POLL_SECONDS,
            failure=lambda: Unavailable(f"the controller (pid {pid}) did not stop"),
        )
        click.echo(f"controller stopped (pid {pid}); agents keep running")
    else:
        click.echo(f"no controller runs for {inst.state_dir}")
    tmux = Tmux(inst.socket)
    if tmux.version() is not None and tmux.kill_server_if_empty():
        click.echo(f"tmux server (socket {inst.socket}) had no sessions: stopped it")
    if tmux.version() is None or not tmux.observe():  # no pane left to log
        writer = stop_writer(inst.state_dir)
        if writer is not None:
            click.echo(f"log writer stopped (pid {writer})")


@click.command()
@installation_options
@click.argument("agent", shell_complete=complete_agents)
def attach(agent: str) -> None:
    """Attach this terminal to the agent's tmux session (detach with C-b d)."""
    from reconciler.adapters.tmux import Tmux
    from reconciler.adapters.tmuxbinary import require_tmux

    inst = installation()
    require_tmux()
    tmux = Tmux(inst.socket)
    if not tmux.session_exists(agent):
        raise NotFound(f'agent "{agent}" has no running session')
    tmux.attach(agent)


@click.group()
def service() -> None:
    """The systemd user unit that keeps this installation's controller running."""


@service.command("install")
@installation_options
def service_install() -> None:
    """Write the unit (KillMode=process: restarting the controller never kills the agents)."""
    from reconciler.adapters.systemd import install as install_unit

    inst = installation()
    path, commands = install_unit(
        inst.state_dir,
        inst.socket,
        [sys.executable, "-m", "reconciler"],
        # The user manager's PATH is minimal: the controller needs the one that finds tmux.
        environment={"PATH": os.environ["PATH"]} if os.environ.get("PATH") else None,
    )
    click.echo(f"wrote {path}")
    from reconciler.controller.daemon import controller_pid

    running = controller_pid(inst.paths) if inst.paths.lock.exists() else None
    if running:
        click.echo(f"a controller runs now (pid {running}); the unit takes over when started")
    click.echo("to start it now and at every boot, run:")
    for command in commands:
        click.echo(f"  {command}")


@service.command("uninstall")
@installation_options
def service_uninstall() -> None:
    """Remove the unit written by `orch service install`."""
    from reconciler.adapters.systemd import uninstall as uninstall_unit

    inst = installation()
    path, commands = uninstall_unit(inst.state_dir)
    if path is None:
        raise NotFound(f"no orch service is installed for {inst.state_dir}")
    click.echo(f"removed {path}")
    for command in commands:
        click.echo(f"  {command}")


COMMANDS = (stop, start, restart, answer, attach, controller, service)
