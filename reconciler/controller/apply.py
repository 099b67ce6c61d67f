"""Manifest files into desired state: the one path shared by `orch apply` and live edits."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.adapters.manifest_files import load_files
from reconciler.adapters.store import Change, Declaration, Store, StoredObject
from reconciler.api.errors import ManifestError
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


def apply_files(store: Store, paths: Sequence[str | Path]) -> list[Change]:
    """Validate all of `paths`, then record them in one transaction."""
    declared, files = declarations(paths)
    return store.apply(declared, files)


def agent_from(stored: StoredObject) -> Agent:
    """The validated Agent model of a stored desired object."""
    return Agent.model_validate(stored.document)
