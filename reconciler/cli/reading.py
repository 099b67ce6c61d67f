"""Reading verbs: `get`, `describe`, `events`, `logs`, `usage` and `top` read the store and the
pane logs; they never write a desired object or a status."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from reconciler.adapters.wake import notify
from reconciler.api.errors import NotFound
from reconciler.cli.arguments import duration_option, kind_of
from reconciler.cli.completion import complete_agents, complete_kinds, complete_names
from reconciler.cli.installation import (
    POLL_SECONDS,
    Installation,
    installation,
    installation_options,
    who,
)
from reconciler.cli.listing import Listing, check_output, event_listing, listing, selector_option
from reconciler.cli.listing import render as render_listing
from reconciler.cli.output import list_document, to_json, to_yaml
from reconciler.cli.playbooks import existing_run
from reconciler.cli.render import (
    EVENT_COLUMNS,
    EVENT_MIN_WIDTHS,
    describe_agent,
    describe_document,
    describe_run,
    event_item,
    event_row,
    usage_table,
)
from reconciler.cli.watch import FixedColumns, RowWatch

if TYPE_CHECKING:
    from reconciler.adapters.git import WorktreeStatus
    from reconciler.adapters.store import StoredObject


@click.command()
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
    kind = kind_of(kind)
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


@click.command()
@installation_options
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", shell_complete=complete_names)
def describe(kind: str, name: str) -> None:
    """Show an object's spec, status, conditions, recent transitions and events."""
    inst = installation()
    inst.warn_if_no_controller()
    kind = kind_of(kind)
    if kind == "Run":
        run = existing_run(inst, name)
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


@click.command()
@installation_options
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
@click.option("-w", "--watch", is_flag=True, help="keep printing new events")
@click.option("--for", "for_object", metavar="KIND/NAME", help="only events of this object")
def events(output: str | None, watch: bool, for_object: str | None) -> None:
    """The event log, oldest first."""
    inst = installation()
    inst.require_state()
    found = inst.store.events(for_object, limit=None if output else 200)
    if output or not watch:  # a table under -w is printed row by row, below
        click.echo(render_listing(event_listing(found), output, single=False))
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


@click.command()
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


@click.command()
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
    start = time.time() - duration_option("--since", since) if since else 0.0
    totals = inst.store.usage_totals(by, start)
    if output == "json":
        items = [{by: key, **t.to_json()} for key, t in totals.items()]
        click.echo(to_json(list_document(items)))
    elif totals:
        click.echo(usage_table(totals, by))
    else:
        click.echo("No usage recorded.")


@click.command()
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


def _objects(inst: Installation, kind: str, name: str) -> list[StoredObject]:
    stored = inst.store.object(kind, name)
    if stored is None:
        raise NotFound(f'{kind.lower()} "{name}" not found')
    return [stored]


COMMANDS = (get, describe, events, logs, usage, top)
