"""Manifest files into desired state: the one path shared by `orch apply` and live edits."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.adapters.git import ensure_worktree
from reconciler.adapters.manifest_files import load_files
from reconciler.adapters.paths import StatePaths
from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import Change, Declaration
from reconciler.api.errors import InvalidInput, ManifestError
from reconciler.api.manifest import Agent


def declarations(paths: Sequence[str | Path]) -> tuple[list[Declaration], list[str]]:
    """Load and validate manifest files; return their objects and the files' absolute paths.

    Raises ManifestError naming file:line and field for the first problem; nothing is written.
    A file that declares nothing is refused: a half-saved file must not delete the team.
    """
    loaded = load_files(paths)
    files = [os.path.abspath(p) for p in paths]
    for given, absolute in zip(paths, files, strict=True):
        if not any(d.file == absolute for d in loaded):
            raise ManifestError(str(given), None, "", "declares no objects; nothing to apply")
    declared = [
        Declaration(
            kind=d.kind,
            name=d.name,
            document=d.obj.model_dump(mode="json", by_alias=True, exclude_none=True),
            source=d.file,
            line=d.line,
        )
        for d in loaded
    ]
    return declared, files


def apply_files(
    store: Store, paths: Sequence[str | Path], force_conflicts: bool = False
) -> list[Change]:
    """Validate all of `paths`, make or adopt the worktrees they ask for, then record them in
    one transaction (see `Store.apply` for objects another file manages: a conflict is refused
    before any worktree is made)."""
    declared, files = declarations(paths)
    store.plan_apply(declared, files, force_conflicts)
    prepare_worktrees(store, declared)
    return store.apply(declared, files, force_conflicts)


def prepare_worktrees(store: Store, declared: Sequence[Declaration]) -> None:
    """Create or adopt each declared agent's worktree, after checking no branch is taken twice.

    A branch clash with another declared or already applied agent is refused before any git runs.
    """
    state = StatePaths(store.state_dir)
    wanted = {d.name: agent_from(d.document, state) for d in declared if d.kind == "Agent"}
    trees = {name: a for name, a in wanted.items() if a.spec.workspace is not None}
    if not trees:
        return
    owners: dict[tuple[str, str], str] = {}
    others = [s for s in store.objects("Agent") if s.name not in wanted]
    for agent in [*trees.values(), *(agent_from(s.document, state) for s in others)]:
        if agent.spec.workspace is None:
            continue
        tree = agent.spec.workspace.worktree
        key = (os.path.realpath(tree.repo), tree.branch)
        if key in owners:
            raise InvalidInput(
                f"agent/{agent.metadata.name}: branch {tree.branch} of {tree.repo} is already"
                f" agent/{owners[key]}'s; two agents never share a branch"
            )
        owners[key] = agent.metadata.name
    for name, agent in trees.items():
        assert agent.spec.workspace is not None
        tree = agent.spec.workspace.worktree
        ensure_worktree(Path(tree.repo), tree.branch, tree.base, state.worktree(name))


def agent_from(document: Mapping[str, Any], state: StatePaths) -> Agent:
    """The validated Agent model of a desired object, its workdir inside its worktree if any."""
    agent = Agent.model_validate(document)
    if agent.spec.workspace is None:
        return agent
    root = state.worktree(agent.metadata.name)
    workdir = os.path.normpath(root / agent.spec.workdir)
    if os.path.commonpath([workdir, root]) != str(root):
        raise InvalidInput(
            f"agent/{agent.metadata.name}: workdir {agent.spec.workdir} leaves its worktree"
        )
    spec = agent.spec.model_copy(update={"workdir": workdir})
    return agent.model_copy(update={"spec": spec})
