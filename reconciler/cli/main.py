"""The `orch` command: kubectl-like verbs over one installation (a state dir and a tmux socket).

The CLI writes desired objects and reads records; it never edits status behind the controller's
back. `main` is the single error boundary: an `OrchError` is one line on stderr with its exit code,
anything else is an internal error, never a traceback on the console.
"""

from __future__ import annotations

import errno
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

# Only what the read paths and `send` need is imported here; every other command imports its own
# dependencies (pydantic models, YAML loader, tmux, watchdog, the controller) when it runs.
from reconciler.adapters.deadline import wait_until
from reconciler.adapters.store import Change, StoredObject, StoredRun
from reconciler.adapters.wake import notify
from reconciler.api.duration import format_duration, parse_duration
from reconciler.api.errors import InvalidInput, NotFound, OrchError
from reconciler.api.status import AgentState
from reconciler.cli.completion import (
    complete_agents,
    complete_kinds,
    complete_names,
    complete_playbooks,
    complete_refs,
    complete_runs,
    completion_script,
)
from reconciler.cli.installation import (
    POLL_SECONDS,
    Installation,
    installation,
    installation_options,
    who,
)
from reconciler.cli.listing import Listing, check_output, listing, selector_option
from reconciler.cli.listing import render as render_listing
from reconciler.cli.operate import COMMANDS as OPERATING_COMMANDS
from reconciler.cli.output import list_document, to_json, to_yaml
from reconciler.cli.render import (
    EVENT_COLUMNS,
    EVENT_MIN_WIDTHS,
    describe_agent,
    describe_document,
    describe_run,
    event_item,
    event_row,
    event_table,
    usage_table,
)
from reconciler.cli.watch import FixedColumns, RowWatch
from reconciler.core.sanitize import check_size, sanitize
from reconciler.core.secrets import redacted

if TYPE_CHECKING:
    from reconciler.adapters.git import WorktreeStatus


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@installation_options
@click.option(
    "--debug", is_flag=True, expose_value=False, help="print the traceback of an internal error"
)
@click.version_option(package_name="orch", prog_name="orch")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """orch: keeps a team of CLI coding agents running in tmux, declared in YAML manifests."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# -- apply, diff, delete -------------------------------------------------------------------------


RECURSIVE = click.option(
    "-R", "--recursive", is_flag=True, help="with a folder for -f: its subfolders too"
)


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
    help="manifest file or folder (repeatable)",
)
@RECURSIVE
@click.option("--wait", is_flag=True, help="return when every agent of the files is Running")
@click.option("--timeout", default="120s", show_default=True, help="how long --wait waits")
@click.option(
    "--force-conflicts", is_flag=True, help="take over objects another applied file declares"
)
def apply(
    files: tuple[str, ...], recursive: bool, wait: bool, timeout: str, force_conflicts: bool
) -> None:
    """Record FILE's objects as the desired state; remove those it no longer declares.

    A folder stands for its *.yaml and *.yml files (with -R, its subfolders' too)."""
    from reconciler.adapters.manifest_files import manifest_paths
    from reconciler.adapters.tmux import require_tmux
    from reconciler.controller.apply import apply_files

    inst = installation()
    limit = _duration_option("--timeout", timeout)
    require_tmux()
    changes = apply_files(inst.store, manifest_paths(files, recursive), force_conflicts)
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
@RECURSIVE
def diff(files: tuple[str, ...], recursive: bool) -> None:
    """Show what `apply` would change, change nothing; exit 0 when nothing, 1 when something."""
    import difflib

    from reconciler.adapters.manifest_files import manifest_paths
    from reconciler.controller.apply import declarations

    inst = installation()
    declared, sources = declarations(manifest_paths(files, recursive))
    if inst.has_state():
        planned = inst.store.plan_apply(declared, sources)
    else:  # nothing applied yet: everything would be created (and no state dir is made)
        planned = [Change(d.kind, d.name, "created", None, d.document) for d in declared]
    changes = [c for c in planned if c.verb != "unchanged"]
    for change in changes:
        ref = f"{change.kind.lower()}/{change.name}"
        click.echo(f"{ref} {change.verb}")
        old = _diff_lines(change.old)
        new = _diff_lines(change.new)
        for line in difflib.unified_diff(old, new, f"live/{ref}", f"manifest/{ref}", lineterm=""):
            click.echo(line)
    if changes:
        raise click.exceptions.Exit(1)


def _diff_lines(document: dict[str, Any] | None) -> list[str]:
    """A document as YAML in one field order (keys sorted), secrets redacted."""
    if document is None:
        return []
    return to_yaml(_sorted(redacted(document))).splitlines()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


@cli.command()
@installation_options
@click.argument(
    "refs", nargs=-1, metavar="[KIND NAME...|KIND/NAME...]", shell_complete=complete_refs
)
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    metavar="FILE",
    help="delete every object the file (or folder) declares",
)
@RECURSIVE
def delete(refs: tuple[str, ...], files: tuple[str, ...], recursive: bool) -> None:
    """Stop and forget agents, cancel runs, or remove a file's objects
    (`delete agent a b`, `delete agent/a run/r-1`, `delete -f team.yaml`)."""
    inst = installation()
    targets: list[tuple[str, str]] = []
    if files:
        if refs:
            raise InvalidInput("delete: give either KIND NAME or -f FILE, not both")
        from reconciler.adapters.manifest_files import manifest_paths
        from reconciler.controller.apply import declarations

        declared, _ = declarations(manifest_paths(files, recursive))
        for decl in declared:
            stored = inst.store.object(decl.kind, decl.name)
            if stored is not None and stored.source != decl.source:
                click.echo(
                    f"{decl.kind.lower()}/{decl.name} is managed by {stored.source}: not deleted",
                    err=True,
                )
            else:
                targets.append((decl.kind, decl.name))
    else:
        targets = _refs(refs)
    inst.require_state()
    missing = [t for t in targets if t[0] != "Run" and inst.store.object(*t) is None]
    missing += [t for t in targets if t[0] == "Run" and inst.store.run(t[1]) is None]
    if not files:
        for kind_, name_ in missing:
            click.echo(f'orch: error: {kind_.lower()} "{name_}" not found', err=True)
    for _, run_name in [t for t in targets if t[0] == "Run" and t not in missing]:
        _delete_run(inst, run_name)
    objects = [t for t in targets if t[0] != "Run" and t not in missing]
    sources = {t: stored.source for t in objects if (stored := inst.store.object(*t))}
    deleted = [t for t in objects if inst.store.delete_object(*t)]
    for kind_, name_ in deleted:
        if kind_ == "Agent":
            inst.store.forget_intents(name_)
    if deleted:
        inst.start_controller()
        _wait_forgotten(inst, [n for k, n in deleted if k == "Agent"])
    for kind_, name_ in deleted:
        click.echo(f"{kind_.lower()}/{name_} deleted")
        if not files:
            _warn_still_declared(kind_, name_, sources[(kind_, name_)])
    if missing and not files:
        raise click.exceptions.Exit(NotFound.exit_code)


def _refs(refs: tuple[str, ...]) -> list[tuple[str, str]]:
    """`KIND NAME [NAME...]` or `KIND/NAME [KIND/NAME...]` as (kind, name) pairs."""
    if not refs:
        raise InvalidInput(
            "delete: give KIND NAME (e.g. `orch delete agent executor`), KIND/NAME or -f FILE"
        )
    if "/" in refs[0]:
        pairs = []
        for ref in refs:
            kind, slash, name = ref.partition("/")
            if not slash or not name:
                raise InvalidInput(f"delete: expected KIND/NAME, got {ref!r}")
            pairs.append((_kind(kind), name))
        return pairs
    if len(refs) < 2:
        raise InvalidInput(f"delete: give the name of the {refs[0]} to delete")
    kind = _kind(refs[0])
    return [(kind, name) for name in refs[1:]]


def _warn_still_declared(kind: str, name: str, source: str) -> None:
    """A deleted object its file still declares comes back with that file's next save or apply."""
    from reconciler.controller.apply import declarations

    try:
        declared, _ = declarations([source])
    except OrchError:
        return  # the file is gone or broken: nothing will bring the object back from it
    if any((d.kind, d.name) == (kind, name) for d in declared):
        click.echo(
            f"orch: warning: {source} still declares {kind.lower()}/{name}: the next save or apply"
            " of that file brings it back (remove it there, or `orch delete -f` the file)",
            err=True,
        )


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
    "notifier": "Notifier",
    "notifiers": "Notifier",
}


def _kind(word: str) -> str:
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise InvalidInput(
            f'unknown kind "{word}" (use agents, playbooks, runs or notifiers)'
        ) from None


def _objects(inst: Installation, kind: str, name: str | None) -> list[StoredObject]:
    if name is None:
        return inst.store.objects(kind)
    stored = inst.store.object(kind, name)
    if stored is None:
        raise NotFound(f'{kind.lower()} "{name}" not found')
    return [stored]


@cli.command()
@installation_options
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", required=False, shell_complete=complete_names)
@click.option(
    "-o", "--output", metavar="FORMAT", help="wide | json | yaml | name | jsonpath=TEMPLATE"
)
@click.option(
    "-l", "--selector", metavar="SELECTOR", help="label selector: key=value[,key2=value2]"
)
@click.option("-w", "--watch", is_flag=True, help="after the listing, print rows as they change")
def get(kind: str, name: str | None, output: str | None, selector: str | None, watch: bool) -> None:
    """List agents, playbooks, runs or notifiers (`get agents -l role=executor`, `get agent NAME
    -o yaml`, `get agents -o jsonpath='{.items[*].metadata.name}'`)."""
    inst = installation()
    inst.warn_if_no_controller()
    kind = _kind(kind)
    output = check_output(output)
    requirements = selector_option(selector)
    single = name is not None

    def current() -> Listing:
        return listing(inst.store, kind, name, requirements, output == "wide")

    first = current()
    tabular = output in (None, "wide")
    if not (watch and tabular):
        click.echo(render_listing(first, output, single))
    if not watch:
        return
    if not tabular:
        shown = render_listing(first, output, single)
        while True:
            time.sleep(POLL_SECONDS * 5)
            text = render_listing(current(), output, single)
            if text != shown:
                click.echo(text)
                shown = text
    columns = FixedColumns(first.headers, first.rows, first.min_widths)
    rows = RowWatch(first.age_column)
    click.echo(columns.header())
    for row in rows.changed(first.rows):
        click.echo(columns.line(row))
    while True:
        time.sleep(POLL_SECONDS * 5)
        for row in rows.changed(current().rows):
            click.echo(columns.line(row))


def _run(inst: Installation, name: str) -> StoredRun:
    run = inst.store.run(name)
    if run is None:
        raise NotFound(f'run "{name}" not found')
    return run


@cli.command()
@installation_options
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", shell_complete=complete_names)
def describe(kind: str, name: str) -> None:
    """Show an object's spec, status, conditions, recent transitions and events."""
    inst = installation()
    inst.warn_if_no_controller()
    kind = _kind(kind)
    if kind == "Run":
        run = _run(inst, name)
        usage = inst.store.usage_totals("step")
        click.echo(describe_run(run, inst.store.events(f"run/{name}", limit=30), usage))
        return
    (stored,) = _objects(inst, kind, name)
    if kind in ("Playbook", "Notifier"):
        click.echo(describe_document(stored, inst.store.events(f"{kind.lower()}/{name}", limit=15)))
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
    inst.require_state()
    found = inst.store.events(for_object, limit=None if output else 200)
    if output:
        document = list_document([event_item(e) for e in found])
        click.echo(to_json(document) if output == "json" else to_yaml(document).rstrip("\n"))
    elif found and not watch:
        click.echo(event_table(found))
    elif not watch:
        click.echo("No events found.")
    if not watch:
        return
    columns = FixedColumns(EVENT_COLUMNS, [event_row(e) for e in found], EVENT_MIN_WIDTHS)
    if not output:
        click.echo(columns.header())
        for event in found:
            click.echo(columns.line(event_row(event)))
    last = found[-1].id if found else 0
    while True:
        time.sleep(POLL_SECONDS * 5)
        for event in inst.store.events(for_object, after_id=last):
            if output:
                item = event_item(event)
                click.echo(to_json(item) if output == "json" else "---\n" + to_yaml(item).rstrip())
            else:
                click.echo(columns.line(event_row(event)))
            last = event.id


# -- messages ----------------------------------------------------------------------------------


@cli.command()
@installation_options
@click.argument("agent", shell_complete=complete_agents)
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
    _check_will_run(inst, agent)
    if message.removed:
        click.echo(f"orch: warning: removed {message.removed} control characters", err=True)
    message_id = inst.store.enqueue(agent, sender or "user", message.text, recipient.uid)
    click.echo(f"message/{message_id} queued for agent/{agent}")
    inst.start_controller()
    if wait:
        click.echo(
            f"waiting up to {format_duration(limit)} for agent/{agent} to take message/"
            f"{message_id} (Ctrl-C stops waiting; the message stays queued)",
            err=True,
        )
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


def _check_will_run(inst: Installation, agent: str) -> None:
    """Refuse a message for an agent that will never run again: it could never be delivered."""
    record = inst.store.agent_record(agent)
    stored = inst.store.object("Agent", agent)
    if record is None or stored is None or record.state is not AgentState.STOPPED:
        return
    policy = stored.document["spec"].get("restartPolicy", "Always")
    held = record.reason == "StoppedByUser"
    finished = record.reason in ("Completed", "Exited") and (
        policy == "Never" or (policy == "OnFailure" and record.exit_code == 0)
    )
    if held or finished:
        why = record.message.split(";")[0] or record.reason
        raise InvalidInput(
            f'agent "{agent}" is Stopped and will not run again ({why}); the message would never'
            f" be delivered: `orch start agent {agent}` starts it"
        )


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
@click.argument("agent", shell_complete=complete_agents)
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="only the last N lines")
@click.option("-f", "--follow", is_flag=True, help="keep printing what the agent prints")
@click.option("--raw", is_flag=True, help="the bytes as printed, escape sequences and all")
def logs(agent: str, tail: int | None, follow: bool, raw: bool) -> None:
    """Everything the agent's pane printed, as the screen showed it, across restarts."""
    from reconciler.adapters.agentlog import follow as follow_log
    from reconciler.adapters.agentlog import log_path, read_log, read_raw

    inst = installation()
    inst.require_state()
    if inst.store.object("Agent", agent) is None and inst.store.agent_record(agent) is None:
        raise NotFound(f'agent "{agent}" not found')
    path = log_path(inst.paths.agent_dir(agent))
    if raw:
        sys.stdout.buffer.write(read_raw(path))
        return
    if follow:
        for line in follow_log(path, tail):
            click.echo(line)
        return
    for line in read_log(path, tail):
        click.echo(line)


# -- playbook runs ---------------------------------------------------------------------------


@cli.command("run")
@installation_options
@click.argument("playbook", shell_complete=complete_playbooks)
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
@click.argument("run", shell_complete=complete_runs)
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
@click.argument("run", shell_complete=complete_runs)
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
@click.argument("agent", shell_complete=complete_agents)
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
@installation_options
def top() -> None:
    """A live full-screen view of agents and runs (keys: answer, approve, restart, stop, start,
    attach, logs, describe; q quits)."""
    from reconciler.controller.daemon import controller_running

    inst = installation()
    inst.warn_if_no_controller()
    # Imported here: Textual takes a while to load and no other command needs it.
    from reconciler.cli.top import TopApp

    def wake() -> None:
        if controller_running(inst.paths):
            notify(inst.paths.wake)
        else:
            inst.start_controller()

    TopApp(
        inst.store,
        inst.paths,
        inst.socket,
        who("orch top"),
        wake,
        lambda: controller_running(inst.paths),
    ).run()


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL, names of agents, runs and playbooks included.

    bash: `source <(orch completion bash)` (or write it to ~/.local/share/bash-completion/
    completions/orch); zsh: `source <(orch completion zsh)`; fish: `orch completion fish >
    ~/.config/fish/completions/orch.fish`."""
    click.echo(completion_script(cli, shell))


@cli.command()
def version() -> None:
    """Versions of orch, tmux and Python."""
    import importlib.metadata
    import platform

    from reconciler.adapters.tmux import Tmux

    click.echo(f"orch {importlib.metadata.version('orch')}")
    click.echo(f"tmux {Tmux('orch').version() or 'not installed (apt-get install tmux)'}")
    click.echo(f"python {platform.python_version()}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of manifests, for editors."""
    from reconciler.api.manifest import manifest_json_schema

    click.echo(to_json(manifest_json_schema()))


for _command in OPERATING_COMMANDS:
    cli.add_command(_command)


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
        if isinstance(err, OSError) and err.errno in STORAGE_FAULTS:  # the disk, not a bug
            click.echo(f"orch: error: {err.filename or 'state dir'}: {err.strerror}", err=True)
            code = 3
        else:
            click.echo(f"orch: internal error: {type(err).__name__}: {err} ({hint})", err=True)
            code = 1
    sys.exit(code if isinstance(code, int) else 0)


#: OS errors that say the state dir cannot be written (exit 3, one line): full, read-only, quota.
STORAGE_FAULTS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
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
    from reconciler.adapters.atomic import write_atomic  # only on this rare path

    path = Path(state_dir).expanduser() / CLI_LOG
    if not path.parent.is_dir():
        return None
    try:
        if path.exists() and path.stat().st_size > CLI_LOG_MAX_BYTES:
            write_atomic(path, path.read_bytes()[-CLI_LOG_MAX_BYTES // 2 :])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{stamp} orch {' '.join(args)}\n{traceback.format_exc()}\n")
    except OSError:
        return None
    return path
