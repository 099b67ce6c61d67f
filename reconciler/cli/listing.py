"""What `orch get` (and `orch events`) list, in every output form: tables, json/yaml (the object
itself for one NAME, a List otherwise), `name`, and kubectl's `jsonpath=` template; `-l` label
selectors. The rows and items of each kind come from `render`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from reconciler.api.errors import InvalidInput, NotFound
from reconciler.cli.output import list_document, table, to_json, to_yaml
from reconciler.cli.render import (
    AGENT_COLUMNS,
    AGENT_MIN_WIDTHS,
    AGENT_WIDE_COLUMNS,
    EVENT_COLUMNS,
    EVENT_MIN_WIDTHS,
    NOTIFIER_COLUMNS,
    PLAYBOOK_COLUMNS,
    RUN_COLUMNS,
    RUN_MIN_WIDTHS,
    agent_item,
    agent_row,
    event_item,
    event_row,
    notifier_row,
    object_item,
    playbook_row,
    run_item,
    run_row,
)

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    # types only: `orch --help` lists every verb without opening a store
    from reconciler.adapters.store import Store, StoredObject
    from reconciler.adapters.store_rows import StoredRun
    from reconciler.api.history import StoredEvent
    from reconciler.core.selectors import Requirement

#: The forms `-o` takes; `jsonpath=TEMPLATE` besides.
OUTPUT_FORMS = ("wide", "json", "yaml", "name")


@dataclass(frozen=True)
class Listing:
    """One `get`: the table, names for `-o name`, and the items (for json/yaml/jsonpath), built
    only when asked: a table of agents needs none of their status documents."""

    kind: str
    build_items: Callable[[], list[dict[str, Any]]]
    headers: tuple[str, ...]
    rows: list[list[Any]]
    age_column: int
    min_widths: tuple[int, ...] = ()

    @cached_property
    def items(self) -> list[dict[str, Any]]:
        """Each listed object as `-o json|yaml` prints it."""
        return self.build_items()

    @property
    def names(self) -> list[str]:
        """`kind/name` of every item."""
        return [f"{self.kind.lower()}/{item['metadata']['name']}" for item in self.items]


def check_output(value: str | None) -> str | None:
    """`-o`: one of OUTPUT_FORMS or `jsonpath=TEMPLATE`."""
    if value is None or value in OUTPUT_FORMS or value.startswith("jsonpath="):
        return value
    raise InvalidInput(f"-o: unknown output {value!r} (use wide, json, yaml, name or jsonpath=...)")


def selector_option(text: str | None) -> tuple[Requirement, ...]:
    """`-l`: the parsed selector (empty: everything)."""
    if not text:
        return ()
    from reconciler.core.selectors import parse_selector  # its regexes: only for `-l`

    try:
        return parse_selector(text)
    except ValueError as err:
        raise InvalidInput(f"-l: {err}") from None


def listing(
    store: Store,
    kind: str,
    name: str | None,
    selector: tuple[Requirement, ...],
    wide: bool,
) -> Listing:
    """Everything `get KIND [NAME] [-l ...]` shows."""
    if kind == "Run":
        runs = _runs(store, name, selector)
        rows = [run_row(r) for r in runs]
        return Listing(
            "Run", lambda: [run_item(r) for r in runs], RUN_COLUMNS, rows, 5, RUN_MIN_WIDTHS
        )
    objects = _objects(store, kind, name, selector)
    if kind == "Agent":
        return _agents(store, objects, wide)
    if kind == "Playbook":
        return _declared(kind, objects, playbook_row, PLAYBOOK_COLUMNS)
    return _declared(kind, objects, notifier_row, NOTIFIER_COLUMNS)


def render(listing: Listing, output: str | None, single: bool) -> str:
    """The listing in the form `-o` asks for; json/yaml/jsonpath of one NAME is the object."""
    if output in ("json", "yaml") or (output or "").startswith("jsonpath="):
        document = listing.items[0] if single else list_document(listing.items)
        if output == "json":
            return to_json(document)
        if output == "yaml":
            return to_yaml(document).rstrip("\n")
        # Imported here: the JSONPath parser is needed only for this form.
        from reconciler.cli.jsonpath import render as render_jsonpath

        return render_jsonpath((output or "")[len("jsonpath=") :], document)
    if output == "name":
        return "\n".join(listing.names)
    if not listing.rows:
        return f"No {listing.kind.lower()}s found."
    return table(listing.headers, listing.rows)


def labels_of(document: dict[str, Any]) -> dict[str, str]:
    """An object's labels."""
    return dict(document.get("metadata", {}).get("labels") or {})


def _objects(
    store: Store, kind: str, name: str | None, selector: tuple[Requirement, ...]
) -> list[StoredObject]:
    if name is not None:
        stored = store.object(kind, name)
        if stored is None:
            raise NotFound(f'{kind.lower()} "{name}" not found')
        return [stored]
    objects = store.objects(kind)
    if not selector:
        return objects
    from reconciler.core.selectors import selects

    return [o for o in objects if selects(selector, labels_of(o.document))]


def _runs(store: Store, name: str | None, selector: tuple[Requirement, ...]) -> list[StoredRun]:
    """Runs, selected by their playbook's labels."""
    if name is not None:
        run = store.run(name)
        if run is None:
            raise NotFound(f'run "{name}" not found')
        return [run]
    runs = store.runs()
    if not selector:
        return runs
    from reconciler.core.selectors import selects

    labels = {p.name: labels_of(p.document) for p in store.objects("Playbook")}
    return [r for r in runs if selects(selector, labels.get(r.playbook, {}))]


def _agents(store: Store, objects: list[StoredObject], wide: bool) -> Listing:
    records = store.agent_records()
    usage = store.usage_totals("agent")
    headers = AGENT_COLUMNS + (AGENT_WIDE_COLUMNS if wide else ())
    return Listing(
        "Agent",
        lambda: [agent_item(o, records.get(o.name), usage.get(o.name)) for o in objects],
        headers,
        [agent_row(o, records.get(o.name), wide, usage.get(o.name)) for o in objects],
        AGENT_COLUMNS.index("age"),
        AGENT_MIN_WIDTHS,
    )


def _declared(
    kind: str,
    objects: list[StoredObject],
    row: Callable[[StoredObject], list[Any]],
    columns: tuple[str, ...],
) -> Listing:
    """Playbooks and notifiers: a row each, and their documents as the items."""
    rows = [row(o) for o in objects]
    return Listing(
        kind, lambda: [object_item(o) for o in objects], columns, rows, columns.index("age")
    )


def event_listing(events: list[StoredEvent]) -> Listing:
    """`orch events`, in every form it prints."""
    rows = [event_row(e) for e in events]
    return Listing(
        "Event", lambda: [event_item(e) for e in events], EVENT_COLUMNS, rows, 0, EVENT_MIN_WIDTHS
    )
