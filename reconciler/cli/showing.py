"""What `orch get` and `orch describe` do once their words are read: the click commands (in
`reading`) and `entry`'s fast path for their plain shapes both call these, so the two print the
same; nothing here imports click."""

from __future__ import annotations

import time

from reconciler.api.errors import NotFound
from reconciler.cli.arguments import kind_of
from reconciler.cli.console import echo
from reconciler.cli.installation import POLL_SECONDS, Installation
from reconciler.cli.listing import Listing, check_output, listing, selector_option
from reconciler.cli.listing import render as render_listing
from reconciler.cli.render import describe_agent, describe_document, describe_run
from reconciler.cli.watch import FixedColumns, RowWatch

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.adapters.git import WorktreeStatus
    from reconciler.adapters.store import StoredObject


def get_objects(
    inst: Installation,
    kind_word: str,
    name: str | None,
    output: str | None = None,
    selector: str | None = None,
    watch: bool = False,
) -> None:
    """`orch get KIND [NAME] [-o FORMAT] [-l SELECTOR] [-w]`."""
    inst.warn_if_no_controller()
    kind = kind_of(kind_word)
    output = check_output(output)
    requirements = selector_option(selector)
    single = name is not None

    def current() -> Listing:
        return listing(inst.store, kind, name, requirements, output == "wide")

    first = current()
    tabular = output in (None, "wide")
    if not (watch and tabular):
        echo(render_listing(first, output, single))
    if not watch:
        return
    if not tabular:
        shown = render_listing(first, output, single)
        while True:
            time.sleep(POLL_SECONDS * 5)
            text = render_listing(current(), output, single)
            if text != shown:
                echo(text)
                shown = text
    columns = FixedColumns(first.headers, first.rows, first.min_widths)
    rows = RowWatch(first.age_column)
    echo(columns.header())
    for row in rows.changed(first.rows):
        echo(columns.line(row))
    while True:
        time.sleep(POLL_SECONDS * 5)
        for row in rows.changed(current().rows):
            echo(columns.line(row))


def describe_object(inst: Installation, kind_word: str, name: str) -> None:
    """`orch describe KIND NAME`."""
    inst.warn_if_no_controller()
    kind = kind_of(kind_word)
    if kind == "Run":
        from reconciler.cli.playbooks import existing_run  # a click module: not for agents

        run = existing_run(inst, name)
        usage = inst.store.usage_totals("step")
        echo(describe_run(run, inst.store.events(f"run/{name}", limit=30), usage))
        return
    stored = inst.store.object(kind, name)
    if stored is None:
        raise NotFound(f'{kind.lower()} "{name}" not found')
    if kind in ("Playbook", "Notifier"):
        echo(describe_document(stored, inst.store.events(f"{kind.lower()}/{name}", limit=15)))
        return
    obj = f"agent/{name}"
    echo(
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
