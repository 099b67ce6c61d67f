"""Regenerate docs/lifecycle.md from the machine's tables: `python docs/render_lifecycle.py`."""

from __future__ import annotations

from pathlib import Path

from reconciler.lifecycle import mermaid_diagram

HEADER = """# Agent lifecycle

Generated from `reconciler/lifecycle.py` by `make docs`; a unit test fails when it is stale.
Each edge is a trigger the planner fires; `transitions` refuses any edge not drawn here.

```mermaid
"""


def render() -> str:
    """The whole document."""
    return HEADER + mermaid_diagram().rstrip("\n") + "\n```\n"


if __name__ == "__main__":
    Path(__file__).with_name("lifecycle.md").write_text(render())
