"""Declaring the desired state: `apply` and `diff` manifest files, `delete` objects.

`apply` records the files' objects (a generation per change) and wakes the controller; `delete`
removes objects and waits until the controller has stopped and forgotten them, so the exit code
tells the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler.adapters.deadline import wait_until
from reconciler.api.errors import InvalidInput, NotFound, OrchError
from reconciler.api.status import AgentState
from reconciler.cli.arguments import duration_option, kind_of
from reconciler.cli.completion import complete_refs
from reconciler.cli.installation import POLL_SECONDS, Installation, wait_for
from reconciler.cli.options import installation, installation_options
from reconciler.cli.output import to_yaml
from reconciler.core.secrets import redacted

if TYPE_CHECKING:
    # types only: `orch --help` lists every verb without opening a store
    from reconciler.adapters.store_rows import Change

RECURSIVE = click.option(
    "-R", "--recursive", is_flag=True, help="with a folder for -f: its subfolders too"
)


def _print_changes(changes: Sequence[Change], suffix: str = "") -> None:
    for change in changes:
        click.echo(f"{change.kind.lower()}/{change.name} {change.verb}{suffix}")


@click.command()
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
    from reconciler.adapters.tmuxbinary import require_tmux
    from reconciler.controller.apply import apply_files

    inst = installation()
    limit = duration_option("--timeout", timeout)
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


@click.command()
@installation_options
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE")
@RECURSIVE
def diff(files: tuple[str, ...], recursive: bool) -> None:
    """Show what `apply` would change, change nothing; exit 0 when nothing, 1 when something."""
    import difflib

    from reconciler.adapters.manifest_files import manifest_paths
    from reconciler.adapters.store_rows import Change
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


@click.command()
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
            pairs.append((kind_of(kind), name))
        return pairs
    if len(refs) < 2:
        raise InvalidInput(f"delete: give the name of the {refs[0]} to delete")
    kind = kind_of(refs[0])
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
    wait_for(
        lambda: all(inst.store.agent_record(n) is None for n in names),
        limit,
        f"the controller did not stop {', '.join(names)}",
    )


def _delete_run(inst: Installation, name: str) -> None:
    """Cancel a run: the controller drops its queued prompts and forgets it."""
    if not inst.store.cancel_run(name):
        raise NotFound(f'run "{name}" not found')
    inst.start_controller()
    wait_for(lambda: inst.store.run(name) is None, 30.0, f"the controller did not cancel {name}")
    click.echo(f"run/{name} deleted")


COMMANDS = (apply, diff, delete)
