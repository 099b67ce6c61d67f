"""Reading verbs: `get`, `describe`, `events`, `logs`, `usage` and `top` read the store and the
pane logs; they never write a desired object or a status."""

from __future__ import annotations

import sys
import time
from typing import Literal

import click

from reconciler.adapters.wake import notify
from reconciler.api.errors import NotFound
from reconciler.cli.arguments import duration_option
from reconciler.cli.completion import complete_agents, complete_kinds, complete_names
from reconciler.cli.installation import POLL_SECONDS, who
from reconciler.cli.listing import event_listing
from reconciler.cli.listing import render as render_listing
from reconciler.cli.options import installation, installation_options
from reconciler.cli.output import list_document, to_json, to_yaml
from reconciler.cli.render import (
    EVENT_COLUMNS,
    EVENT_MIN_WIDTHS,
    event_item,
    event_row,
    usage_table,
)
from reconciler.cli.showing import describe_object, get_objects
from reconciler.cli.watch import FixedColumns


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
    get_objects(installation(), kind, name, output, selector, watch)


@click.command()
@installation_options
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", shell_complete=complete_names)
def describe(kind: str, name: str) -> None:
    """Show an object's spec, status, conditions, recent transitions and events."""
    describe_object(installation(), kind, name)


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


COMMANDS = (get, describe, events, logs, usage, top)
