"""Regenerate docs/lifecycle.md from the machine's tables: `python docs/render_lifecycle.py`."""

from __future__ import annotations

from pathlib import Path

from reconciler.api.status import AgentState, RunState
from reconciler.core.lifecycle import AGENT_TRANSITIONS, RUN_TRANSITIONS, mermaid_diagram

HEADER = """# Lifecycles

Generated from `reconciler/lifecycle.py` by `make docs`; a unit test fails when it is stale.
Each edge is a trigger the planner fires; `transitions` refuses any edge not drawn here.
"""


def render() -> str:
    """The whole document: the agent machine, then the playbook run machine."""
    agent = mermaid_diagram(AgentState, AGENT_TRANSITIONS, AgentState.STOPPED, "orch agent")
    run = mermaid_diagram(RunState, RUN_TRANSITIONS, RunState.PENDING, "orch playbook run")
    return (
        f"{HEADER}\n## Agent\n\n```mermaid\n{agent.rstrip()}\n```\n"
        f"\n## Playbook run\n\n```mermaid\n{run.rstrip()}\n```\n"
    )


if __name__ == "__main__":
    Path(__file__).with_name("lifecycle.md").write_text(render())
