"""The `orch` command: kubectl-like verbs over one installation (a state dir and a tmux socket).

The CLI writes desired objects and reads records; it never edits status behind the controller's
back. `main` is the single error boundary: an `OrchError` is one line on stderr with its exit code,
anything else is an internal error, never a traceback on the console.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

# Only what the read paths and `send` need is imported here; every other command imports its own
# dependencies (pydantic models, YAML loader, tmux, watchdog, the controller) when it runs.
from reconciler.adapters.deadline import wait_until
from reconciler.adapters.environment import use_controller_environment
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Change, Store, StoredObject, StoredRun
from reconciler.adapters.wake import notify
from reconciler.api.duration import parse_duration
from reconciler.api.errors import InvalidInput, NotFound, OrchError
from reconciler.api.status import AgentState
from reconciler.cli.output import list_document, table, to_json, to_yaml
from reconciler.cli.render import (
    AGENT_COLUMNS,
    AGENT_WIDE_COLUMNS,
    RUN_COLUMNS,
    agent_item,
    agent_row,
    describe_agent,
    describe_run,
    event_item,
    event_table,
    run_item,
    run_row,
    usage_table,
)
from reconciler.core.sanitize import check_size, sanitize

if TYPE_CHECKING:
    from reconciler.adapters.git import WorktreeStatus

F = TypeVar("F", bound=Callable[..., Any])

SOCKET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: How often `-w` and `--wait` look at the store again.
POLL_SECONDS = 0.1


@dataclass
class Installation:
    """The state dir and tmux socket every command works on."""

    state_dir: Path
    socket: str

    @cached_property
    def store(self) -> Store:
        """The store, opened on first use (creating the state dir 0700)."""
        return Store(self.state_dir)

    @property
    def paths(self) -> StatePaths:
        """Files of this installation."""
        return StatePaths(self.state_dir)

    def start_controller(self) -> None:
        """Wake the controller, starting one in the background if none runs."""
        from reconciler.adapters.tmux import require_tmux
        from reconciler.controller.daemon import ensure_controller

        require_tmux()
        ensure_controller(self.state_dir, self.socket)
        notify(self.paths.wake)


def _set_state_dir(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["state_dir"] = value


def _set_socket(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["socket"] = value


def installation_options(command: F) -> F:
    """`--state-dir` and `--socket`, accepted before or after the command name."""
    command = click.option(
        "--state-dir",
        metavar="DIR",
        expose_value=False,
        callback=_set_state_dir,
        help="state dir (env ORCH_STATE_DIR, default ./state)",
    )(command)
    return click.option(
        "--socket",
        metavar="NAME",
        expose_value=False,
        callback=_set_socket,
        help="tmux socket name (env ORCH_TMUX_SOCKET, default orch)",
    )(command)


def installation() -> Installation:
    """The installation chosen by flags, then environment, then defaults."""
    options = click.get_current_context().find_root().ensure_object(dict)
    state_dir = options.get("state_dir") or os.environ.get("ORCH_STATE_DIR") or "./state"
    socket = options.get("socket") or os.environ.get("ORCH_TMUX_SOCKET") or "orch"
    if not SOCKET_NAME.match(socket):
        raise InvalidInput(
            f"--socket: invalid tmux socket name {socket!r} (use letters, digits, _.-)"
        )
    return Installation(Path(state_dir).expanduser().resolve(), socket)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@installation_options
@click.option(
    "--debug", is_flag=True, expose_value=False, help="print the traceback of an internal error"
)
@click.version_option(package_name="orch", prog_name="orch")
def cli() -> None:
    """orch: keeps a team of CLI coding agents running in tmux, declared in YAML manifests."""


# -- apply, diff, delete -------------------------------------------------------------------------


def _print_changes(changes: Sequence[Change], suffix: str = "") -> None:
    for change in changes:
        click.echo(f"{change.kind.lower()}/{change.name} {change.verb}{suffix}")


@cli.command()
@installation_options
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    metavar="FILE",
    help="manifest file (repeatable)",
)
@click.option("--wait", is_flag=True, help="return when every agent of the files is Running")
@click.option("--timeout", default="120s", show_default=True, help="how long --wait waits")
@click.option(
    "--force-conflicts", is_flag=True, help="take over objects another applied file declares"
)
def apply(files: tuple[str, ...], wait: bool, timeout: str, force_conflicts: bool) -> None:
    """Record FILE's objects as the desired state; remove those it no longer declares."""
    from reconciler.adapters.tmux import require_tmux
    from reconciler.controller.apply import apply_files

    inst = installation()
    limit = _duration_option("--timeout", timeout)
    require_tmux()
    changes = apply_files(inst.store, files, force_conflicts)
    _print_changes(changes)
    inst.start_controller()
    if wait:
        names = [c.name for c in changes if c.kind == "Agent" and c.verb != "deleted"]
        _wait_running(inst, names, limit)


def _wait_running(inst: Installation, names: list[str], limit: float) -> None:

    def pending() -> dict[str, str]:
        records = inst.store.agent_records()
        states = {n: records[n].state if n in records else "Pending" for n in names}
        return {n: s for n, s in states.items() if s != AgentState.RUNNING}

    def failure() -> OrchError:
        detail = ", ".join(f"{n} ({s})" for n, s in sorted(pending().items()))
        return OrchError(f"timed out after {limit:g}s waiting for Running: {detail}")

    wait_until(lambda: not pending(), limit, interval=POLL_SECONDS, failure=failure)


@cli.command()
@installation_options
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE")
def diff(files: tuple[str, ...]) -> None:
    """Show what `apply` would change; change nothing."""
    import difflib

    from reconciler.controller.apply import declarations

    inst = installation()
    declared, sources = declarations(files)
    changes = inst.store.plan_apply(declared, sources)
    for change in changes:
        if change.verb == "unchanged":
            continue
        click.echo(f"{change.kind.lower()}/{change.name} {change.verb}")
        old = to_yaml(change.old).splitlines() if change.old else []
        new = to_yaml(change.new).splitlines() if change.new else []
        for line in difflib.unified_diff(old, new, "live", "manifest", lineterm="", n=2):
            click.echo(f"  {line}")


@cli.command()
@installation_options
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    metavar="FILE",
    help="delete every object the file declares",
)
def delete(kind: str | None, name: str | None, files: tuple[str, ...]) -> None:
    """Stop and forget an agent, cancel a run (`delete run NAME`), or remove a file's objects."""
    inst = installation()
    targets: list[tuple[str, str]] = []
    if files:
        if kind or name:
            raise InvalidInput("delete: give either KIND NAME or -f FILE, not both")
        from reconciler.controller.apply import declarations

        declared, _ = declarations(files)
        for decl in declared:
            stored = inst.store.object(decl.kind, decl.name)
            if stored is not None and stored.source != decl.source:
                click.echo(
                    f"{decl.kind.lower()}/{decl.name} is managed by {stored.source}: not deleted",
                    err=True,
                )
            else:
                targets.append((decl.kind, decl.name))
    elif kind and name and _kind(kind) == "Run":
        _delete_run(inst, name)
        return
    elif kind and name:
        targets = [(_kind(kind), name)]
    else:
        raise InvalidInput("delete: give KIND NAME (e.g. `orch delete agent executor`) or -f FILE")
    deleted = [t for t in targets if inst.store.delete_object(*t)]
    if not files and not deleted:
        raise NotFound(f'{targets[0][0].lower()} "{targets[0][1]}" not found')
    if deleted:
        inst.start_controller()
        _wait_forgotten(inst, [n for k, n in deleted if k == "Agent"])
    for kind_, name_ in deleted:
        click.echo(f"{kind_.lower()}/{name_} deleted")


def _wait_forgotten(inst: Installation, names: list[str], limit: float = 30.0) -> None:
    _wait_for(
        lambda: all(inst.store.agent_record(n) is None for n in names),
        limit,
        f"the controller did not stop {', '.join(names)}",
    )


def _delete_run(inst: Installation, name: str) -> None:
    """Cancel a run: the controller drops its queued prompts and forgets it."""
    if not inst.store.cancel_run(name):
        raise NotFound(f'run "{name}" not found')
    inst.start_controller()
    _wait_for(lambda: inst.store.run(name) is None, 30.0, f"the controller did not cancel {name}")
    click.echo(f"run/{name} deleted")


def _wait_for(done: Callable[[], bool], limit: float, failure: str) -> None:
    """Poll the store until `done`; an OrchError naming `failure` at the deadline."""
    wait_until(
        done,
        limit,
        interval=POLL_SECONDS,
        failure=lambda: OrchError(f"{failure} within {limit:g}s"),
    )


# -- get, describe, events ---------------------------------------------------------------------

KINDS = {
    "agent": "Agent",
    "agents": "Agent",
    "ag": "Agent",
    "playbook": "Playbook",
    "playbooks": "Playbook",
    "pb": "Playbook",
    "run": "Run",
    "runs": "Run",
}


def _kind(word: str) -> str:
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise InvalidInput(f'unknown kind "{word}" (use agents, playbooks or runs)') from None


def _objects(inst: Installation, kind: str, name: str | None) -> list[StoredObject]:
    if name is None:
        return inst.store.objects(kind)
    stored = inst.store.object(kind, name)
    if stored is None:
        raise NotFound(f'{kind.lower()} "{name}" not found')
    return [stored]


OUTPUTS = click.Choice(["wide", "json", "yaml", "name"])


@cli.command()
@installation_options
@click.argument("kind")
@click.argument("name", required=False)
@click.option("-o", "--output", type=OUTPUTS, help="wide | json | yaml | name")
@click.option("-w", "--watch", is_flag=True, help="after the listing, print rows as they change")
def get(kind: str, name: str | None, output: str | None, watch: bool) -> None:
    """List agents, playbooks or runs (`get agents`, `get agent NAME -o json`, `get runs`)."""
    inst = installation()
    kind = _kind(kind)
    renderers: dict[str, Callable[[Installation, Any, str | None, bool], str]] = {
        "Agent": _render_agents,
        "Playbook": _render_playbooks,
        "Run": _render_runs,
    }
    render = renderers[kind]
    first = render(inst, _listed(inst, kind, name), output, True)
    click.echo(first)
    if not watch:
        return
    shown = set(first.splitlines())
    while True:
        time.sleep(POLL_SECONDS * 5)
        text = render(inst, _listed(inst, kind, name), output, False)
        for line in text.splitlines():
            if line not in shown:
                click.echo(line)
        shown = set(text.splitlines()) | shown


def _listed(inst: Installation, kind: str, name: str | None) -> Any:
    """What `get KIND [NAME]` lists: desired objects, or playbook runs."""
    if kind != "Run":
        return _objects(inst, kind, name)
    if name is None:
        return inst.store.runs()
    return [_run(inst, name)]


def _run(inst: Installation, name: str) -> StoredRun:
    run = inst.store.run(name)
    if run is None:
        raise NotFound(f'run "{name}" not found')
    return run


def _render_runs(
    inst: Installation, runs: list[StoredRun], output: str | None, header: bool
) -> str:
    if output in ("json", "yaml"):
        document = list_document([run_item(r) for r in runs])
        return to_json(document) if output == "json" else to_yaml(document).rstrip("\n")
    if output == "name":
        return "\n".join(f"run/{r.name}" for r in runs)
    if not runs:
        return "No runs found." if header else ""
    text = table(RUN_COLUMNS, [run_row(r) for r in runs])
    return text if header else "\n".join(text.splitlines()[1:])


def _render_agents(
    inst: Installation, objects: list[StoredObject], output: str | None, header: bool
) -> str:
    records = inst.store.agent_records()
    usage = inst.store.usage_totals("agent")
    if output in ("json", "yaml"):
        document = list_document(
            [agent_item(o, records.get(o.name), usage.get(o.name)) for o in objects]
        )
        return to_json(document) if output == "json" else to_yaml(document).rstrip("\n")
    if output == "name":
        return "\n".join(f"agent/{o.name}" for o in objects)
    wide = output == "wide"
    headers = AGENT_COLUMNS + (AGENT_WIDE_COLUMNS if wide else ())
    rows = [agent_row(o, records.get(o.name), wide, usage.get(o.name)) for o in objects]
    if not rows:
        return "No agents found." if header else ""
    text = table(headers, rows)
    return text if header else "\n".join(text.splitlines()[1:])


def _render_playbooks(
    inst: Installation, objects: list[StoredObject], output: str | None, header: bool
) -> str:
    items = [
        {
            **o.document,
            "metadata": {**o.document["metadata"], "uid": o.uid, "generation": o.generation},
        }
        for o in objects
    ]
    if output in ("json", "yaml"):
        document = list_document(items)
        return to_json(document) if output == "json" else to_yaml(document).rstrip("\n")
    if output == "name":
        return "\n".join(f"playbook/{o.name}" for o in objects)
    if not objects:
        return "No playbooks found." if header else ""
    text = table(
        ("name", "steps", "agents"),
        [
            (
                o.name,
                len(o.document["spec"]["steps"]),
                ",".join(sorted({s["agent"] for s in o.document["spec"]["steps"]})),
            )
            for o in objects
        ],
    )
    return text if header else "\n".join(text.splitlines()[1:])


@cli.command()
@installation_options
@click.argument("kind")
@click.argument("name")
def describe(kind: str, name: str) -> None:
    """Show an object's spec, status, conditions, recent transitions and events."""
    inst = installation()
    kind = _kind(kind)
    if kind == "Run":
        run = _run(inst, name)
        usage = inst.store.usage_totals("step")
        click.echo(describe_run(run, inst.store.events(f"run/{name}", limit=30), usage))
        return
    (stored,) = _objects(inst, kind, name)
    if kind == "Playbook":
        click.echo(to_yaml(stored.document).rstrip("\n"))
        return
    obj = f"agent/{name}"
    click.echo(
        describe_agent(
            stored,
            inst.store.agent_record(name),
            inst.store.transitions(obj, limit=15),
            inst.store.events(obj, limit=15),
            inst.store.messages(name, limit=10),
            inst.paths.backups(name),
            _worktree(inst, stored),
            inst.store.usage_totals("agent").get(name),
            inst.store.recent_agent_signals(name, 10),
        )
    )


def _worktree(
    inst: Installation, stored: StoredObject
) -> tuple[Path, WorktreeStatus | None] | None:
    """An agent's worktree and where it stands against its base, if its spec asks for one."""
    workspace = stored.document["spec"].get("workspace")
    if not workspace:
        return None
    from reconciler.adapters.git import worktree_status  # git and watchdog: only when asked

    path = inst.paths.worktree(stored.name)
    return path, worktree_status(path, workspace["worktree"].get("base", "HEAD"))


@cli.command()
@installation_options
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
@click.option("-w", "--watch", is_flag=True, help="keep printing new events")
@click.option("--for", "for_object", metavar="KIND/NAME", help="only events of this object")
def events(output: str | None, watch: bool, for_object: str | None) -> None:
    """The event log, oldest first."""
    inst = installation()
    found = inst.store.events(for_object, limit=None if output else 200)
    if output:
        document = list_document([event_item(e) for e in found])
        click.echo(to_json(document) if output == "json" else to_yaml(document).rstrip("\n"))
    elif found:
        click.echo(event_table(found))
    elif not watch:
        click.echo("No events found.")
    if not watch:
        return
    last = found[-1].id if found else 0
    while True:
        time.sleep(POLL_SECONDS * 5)
        new = inst.store.events(for_object, after_id=last)
        if new:
            rows = event_table(new).splitlines()
            click.echo("\n".join(rows[1:] if found or last else rows))
            last = new[-1].id


# -- messages ----------------------------------------------------------------------------------


@cli.command()
@installation_options
@click.argument("agent")
@click.argument("text", required=False)
@click.option(
    "--from", "sender", metavar="AGENT", help="the sending agent (checked against talksTo)"
)
@click.option("--wait", is_flag=True, help="return when the message is delivered")
@click.option("--timeout", default="10m", show_default=True, help="how long --wait waits")
def send(agent: str, text: str | None, sender: str | None, wait: bool, timeout: str) -> None:
    """Queue TEXT (or standard input, with - or no TEXT) for AGENT; delivered whole, then Enter."""
    inst = installation()
    limit = _duration_option("--timeout", timeout)
    if text is None or text == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            raise InvalidInput(f"send: the message is not UTF-8 (byte {err.start})") from None
    check_size(text)
    message = sanitize(text)
    if not message.text.strip():
        raise InvalidInput("send: the message is empty")
    sender = _sender(inst, sender)
    recipient = _check_route(inst, sender, agent)
    if message.removed:
        click.echo(f"orch: warning: removed {message.removed} control characters", err=True)
    message_id = inst.store.enqueue(agent, sender or "user", message.text, recipient.uid)
    click.echo(f"message/{message_id} queued for agent/{agent}")
    inst.start_controller()
    if wait:
        _wait_delivered(inst, message_id, limit)
        click.echo(f"message/{message_id} delivered")


def _sender(inst: Installation, given: str | None) -> str | None:
    """Who sends: inside an agent of this installation (ORCH_AGENT_NAME) that agent, whatever
    --from says, so talksTo cannot be walked around by leaving --from out or forging it."""
    inside = os.environ.get("ORCH_AGENT_NAME")
    home = os.environ.get("ORCH_STATE_DIR")
    if not inside or not home or Path(home).expanduser().resolve() != inst.state_dir:
        return given
    if given is not None and given != inside:
        raise InvalidInput(
            f'--from {given}: this command runs inside agent "{inside}" and sends as "{inside}"'
        )
    return inside


def _check_route(inst: Installation, sender: str | None, agent: str) -> StoredObject:
    """The recipient, which exists, and whom a named sender's talksTo (if any) includes."""
    recipient = inst.store.object("Agent", agent)
    if recipient is None:
        raise NotFound(f'agent "{agent}" not found')
    if sender is None:
        return recipient
    origin = inst.store.object("Agent", sender)
    if origin is None:
        raise NotFound(f'--from: agent "{sender}" not found')
    allowed = origin.document["spec"].get("talksTo") or []
    if allowed and agent not in allowed:
        raise InvalidInput(
            f'agent "{sender}" may not address "{agent}" (talksTo: {", ".join(allowed)})'
        )
    return recipient


def _wait_delivered(inst: Installation, message_id: int, limit: float) -> None:
    """Wait until the message left the queue; an error unless the agent took it."""
    from reconciler.core.delivery import FINISHED, Phase

    def finished() -> bool:
        message = inst.store.message(message_id)
        return message is None or message.phase in FINISHED

    _wait_for(finished, limit, f"message/{message_id} was not delivered (still queued)")
    message = inst.store.message(message_id)
    if message is not None and message.phase is not Phase.DELIVERED:
        raise OrchError(f"message/{message_id} is {message.phase}: see orch describe agent")


@cli.command()
@installation_options
@click.argument("agent")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="only the last N lines")
@click.option("-f", "--follow", is_flag=True, help="keep printing what the agent prints")
def logs(agent: str, tail: int | None, follow: bool) -> None:
    """Everything the agent's pane printed (escape sequences stripped), across restarts."""
    inst = installation()
    if inst.store.object("Agent", agent) is None and inst.store.agent_record(agent) is None:
        raise NotFound(f'agent "{agent}" not found')
    from reconciler.adapters.agentlog import follow as follow_log
    from reconciler.adapters.agentlog import log_path, read_log

    path = log_path(inst.paths.agent_dir(agent))
    if follow:
        for line in follow_log(path, tail):
            click.echo(line)
        return
    for line in read_log(path, tail):
        click.echo(line)


# -- playbook runs ---------------------------------------------------------------------------


@cli.command("run")
@installation_options
@click.argument("playbook")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="a parameter")
def run_playbook(playbook: str, params: tuple[str, ...]) -> None:
    """Start a run of PLAYBOOK; prints run/NAME created."""
    import secrets

    from reconciler.api.manifest import Playbook
    from reconciler.core.runs import RunRecord
    from reconciler.core.steps import validate_params

    inst = installation()
    stored = inst.store.object("Playbook", playbook)
    if stored is None:
        raise NotFound(f'playbook "{playbook}" not found')
    spec = Playbook.model_validate(stored.document).spec
    given: dict[str, str] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param: expected KEY=VALUE, got {param!r}")
        given[key] = value
    values = validate_params(spec, given, playbook=playbook)
    name = f"{playbook[:33]}-{secrets.token_hex(3)}"
    inst.store.create_run(
        RunRecord.new(name, playbook, spec, values, time.time()), stored.document["spec"]
    )
    click.echo(f"run/{name} created")
    inst.start_controller()


@cli.command()
@installation_options
@click.argument("run")
@click.argument("step", required=False)
def approve(run: str, step: str | None) -> None:
    """Pass the approval gate RUN waits at (or STEP's)."""
    from reconciler.core.runs import StepPhase

    inst = installation()
    record = _run(inst, run).record
    current = record.current
    if (
        current is None
        or current.phase is not StepPhase.AWAITING_APPROVAL
        or (step is not None and current.name != step)
    ):
        where = f"{record.state} at step {current.name}" if current else str(record.state)
        raise InvalidInput(
            f"run {run} is not waiting for an approval of {step or 'any step'} ({where})"
        )
    inst.store.add_signal(run, "approve", current.name, current.attempt)
    inst.start_controller()
    click.echo(f"run/{run} step {current.name} approved")


@cli.group()
def step() -> None:
    """Signals from agents about their playbook steps."""


@step.command("done")
@installation_options
@click.argument("run")
def step_done(run: str) -> None:
    """Say the current step of RUN is done (the agent's outputs are written)."""
    from reconciler.core.runs import StepPhase

    inst = installation()
    record = _run(inst, run).record
    current = record.current
    if current is None or current.phase is not StepPhase.WORKING:
        where = f"step {current.name} is {current.phase}" if current else str(record.state)
        raise InvalidInput(f"run {run} has no step in progress ({where})")
    inst.store.add_signal(run, "done", current.name, current.attempt)
    inst.start_controller()
    click.echo(f"run/{run} step {current.name} done")


@cli.command("signal")
@installation_options
@click.argument("agent")
@click.argument("event")
@click.option("--json", "payload", metavar="-|TEXT", help="the event's JSON payload (- : stdin)")
def signal_command(agent: str, event: str, payload: str | None) -> None:
    """Record a signal an agent CLI's own hook sends (turn started or ended, a question, …).

    Always exits 0 and never starts a controller: the agent's hooks call it on every turn.
    """
    from reconciler.adapters.signal_inbox import run

    run(
        [agent, event, *(("--json", payload) if payload is not None else ())],
        str(installation().state_dir),
    )


# -- controller, attach, schema ------------------------------------------------------------------


@cli.command()
@installation_options
@click.option(
    "--take-over",
    is_flag=True,
    help="stop a controller already running for the state dir and take its place",
)
def controller(take_over: bool) -> None:
    """Run the control loop in the foreground (what the systemd unit starts)."""
    from reconciler.adapters.tmux import require_tmux

    inst = installation()
    require_tmux()
    from reconciler.adapters.statedir import ensure_state_dir
    from reconciler.controller.loop import Controller, configure_logging

    ensure_state_dir(inst.state_dir)
    use_controller_environment(inst.state_dir, inst.socket)
    configure_logging(inst.paths)
    Controller(inst.state_dir, inst.socket).run(take_over=take_over)


@cli.command()
@installation_options
@click.argument("agent")
def attach(agent: str) -> None:
    """Attach this terminal to the agent's tmux session (detach with C-b d)."""
    from reconciler.adapters.tmux import Tmux, require_tmux

    inst = installation()
    require_tmux()
    tmux = Tmux(inst.socket)
    if not tmux.session_exists(agent):
        raise NotFound(f'agent "{agent}" has no running session')
    tmux.attach(agent)


@cli.group()
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


@cli.command()
@installation_options
@click.option(
    "--by",
    type=click.Choice(["agent", "account", "run", "step"]),
    default="agent",
    show_default=True,
)
@click.option("--since", "since", default="", metavar="DURATION", help="only the last 24h, 30m…")
@click.option("-o", "--output", type=click.Choice(["json"]))
def usage(by: Literal["agent", "account", "run", "step"], since: str, output: str | None) -> None:
    """Tokens and cost the agents' CLIs recorded, summed per agent, account, run or step."""
    inst = installation()
    start = time.time() - _duration_option("--since", since) if since else 0.0
    totals = inst.store.usage_totals(by, start)
    if output == "json":
        items = [{by: key, **t.to_json()} for key, t in totals.items()]
        click.echo(to_json(list_document(items)))
    elif totals:
        click.echo(usage_table(totals, by))
    else:
        click.echo("No usage recorded.")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of manifests, for editors."""
    from reconciler.api.manifest import manifest_json_schema

    click.echo(to_json(manifest_json_schema()))


def _duration_option(flag: str, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise InvalidInput(f"{flag}: {err}") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; the one place that turns errors into a line on stderr and an exit code."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None, prog_name="orch", standalone_mode=False
        )
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        code = 130
    except click.ClickException as err:
        click.echo(f"orch: error: {err.format_message()}", err=True)
        code = 1
    except OrchError as err:
        click.echo(f"orch: error: {err}", err=True)
        code = err.exit_code
    except BrokenPipeError:
        code = 0
    except Exception as err:  # noqa: BLE001 - the error boundary: no tracebacks on the console
        args = list(argv) if argv is not None else sys.argv[1:]
        where = _log_internal_error(args)
        if "--debug" in args:
            traceback.print_exc()
        hint = f"details in {where}" if where else "run again with --debug for details"
        click.echo(f"orch: internal error: {type(err).__name__}: {err} ({hint})", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


#: Internal errors of the CLI are appended here, in the state dir, with their traceback.
CLI_LOG = "cli.log"
#: The log is cut to its newest half past this size.
CLI_LOG_MAX_BYTES = 1_000_000


def _log_internal_error(args: list[str]) -> Path | None:
    """Append the current exception's traceback to the state dir's cli.log (never creating a
    state dir); the file written, or None."""
    state_dir = os.environ.get("ORCH_STATE_DIR") or "./state"
    for i, arg in enumerate(args):
        if arg == "--state-dir" and i + 1 < len(args):
            state_dir = args[i + 1]
        elif arg.startswith("--state-dir="):
            state_dir = arg.split("=", 1)[1]
    path = Path(state_dir).expanduser() / CLI_LOG
    if not path.parent.is_dir():
        return None
    try:
        if path.exists() and path.stat().st_size > CLI_LOG_MAX_BYTES:
            path.write_bytes(path.read_bytes()[-CLI_LOG_MAX_BYTES // 2 :])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} orch {' '.join(args)}\n{traceback.format_exc()}\n")
    except OSError:
        return None
    return path
