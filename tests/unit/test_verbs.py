"""The lazily loaded CLI's verb table names every command of every verb module, and only those."""

from __future__ import annotations

import importlib

from reconciler.cli.main import VERBS


def test_every_verb_is_listed_with_its_module() -> None:
    defined = {
        command.name: module
        for module in set(VERBS.values())
        for command in importlib.import_module(f"reconciler.cli.{module}").COMMANDS
    }
    assert defined == VERBS
