"""Shell completion of object names (agents, runs, playbooks, notifiers) from the store.

Click drives completion (`orch completion bash|zsh|fish` prints its script); these callbacks add
the names. They read the store only where one exists and never fail: a completion that cannot
look returns nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from reconciler.cli.arguments import KINDS

#: The kind words completion offers.
KIND_WORDS = ("agents", "playbooks", "runs", "notifiers")


def complete_kinds(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Kind words."""
    return [k for k in KIND_WORDS if k.startswith(incomplete)]


def complete_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Names of the kind given before (`get agent <TAB>`)."""
    word = str(ctx.params.get("kind") or "agent").lower().rstrip("s")
    return _names(ctx, KINDS.get(word, "Agent"), incomplete)


def complete_agents(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Agent names."""
    return _names(ctx, "Agent", incomplete)


def complete_runs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Run names."""
    return _names(ctx, "Run", incomplete)


def complete_playbooks(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Playbook names."""
    return _names(ctx, "Playbook", incomplete)


def _names(ctx: click.Context, kind: str, incomplete: str) -> list[CompletionItem]:
    from reconciler.adapters.store import DB_NAME, Store  # when completing, not for every command

    options = ctx.find_root().obj or {}
    state_dir = Path(options.get("state_dir") or os.environ.get("ORCH_STATE_DIR") or "./state")
    if not (state_dir / DB_NAME).is_file():
        return []
    try:
        store = Store(state_dir.expanduser().resolve())
        if kind == "Run":
            names = [r.name for r in store.runs()]
        else:
            names = [o.name for o in store.objects(kind)]
        store.close()
    except Exception:  # noqa: BLE001 - completion never fails the shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def completion_script(group: click.Group, shell: str) -> str:
    """The completion script click writes for `shell`."""
    from click.shell_completion import get_completion_class

    completion = get_completion_class(shell)
    if completion is None:
        raise click.BadParameter(f"unsupported shell {shell!r}")
    return completion(group, {}, "orch", "_ORCH_COMPLETE").source()


def complete_refs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """`delete`'s words: a kind first, then names of that kind (or kind/name forms)."""
    given = ctx.params.get(param.name or "") or ()
    if not given:
        kinds = [CompletionItem(k) for k in KIND_WORDS if k.startswith(incomplete)]
        return kinds
    word = str(given[0]).lower().rstrip("s")
    return _names(ctx, KINDS.get(word, "Agent"), incomplete)


def complete_agent_kind(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """`stop|start|restart agent NAME`: the word `agent`, or `agent/NAME` forms."""
    if "/" in incomplete:
        kind, _, rest = incomplete.partition("/")
        return [CompletionItem(f"{kind}/{i.value}") for i in _names(ctx, "Agent", rest)]
    return [CompletionItem("agent")] if "agent".startswith(incomplete) else []
