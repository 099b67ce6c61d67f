"""Rendering for the CLI: kubectl-like tables, ages, timestamps, JSON and YAML documents."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from reconciler.api.localtime import out_of_range
from reconciler.cli.plaintable import plain_table

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table with upper-case headers, as kubectl prints."""
    upper = [h.upper() for h in headers]
    cells = [["" if cell is None else cell for cell in row] for row in rows]
    plain = plain_table(upper, cells)
    if plain is not None:
        return plain
    from tabulate import tabulate  # imported only for cells plain_table leaves to it

    return tabulate(
        cells,
        headers=upper,
        tablefmt="plain",
        disable_numparse=True,
    )


def iso(timestamp: float | None) -> str | None:
    """RFC 3339 UTC timestamp, as Kubernetes writes them."""
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return out_of_range(timestamp)


def age(timestamp: float | None, now: float | None = None) -> str:
    """How long ago, in kubectl's short form: 45s, 12m, 3h, 5d."""
    if timestamp is None:
        return "<unknown>"
    seconds = max(0, int((now if now is not None else time.time()) - timestamp))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def to_json(document: Any) -> str:
    """Indented JSON, key order kept."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def to_yaml(document: Any) -> str:
    """Block-style YAML of a JSON-like document."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long paths and commands stay on one line
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.representer.add_representer(str, _represent_text)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _represent_text(representer: Any, text: str) -> Any:
    """Multi-line text (a playbook's prompt) as a literal block: its line breaks printed as such."""
    style = "|" if "\n" in text else None
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def list_document(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The contract's List envelope for `-o json` and `-o yaml`."""
    return {"apiVersion": "orch/v1", "kind": "List", "items": items}
