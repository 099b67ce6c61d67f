"""Bounds on what a manifest may declare: sizes, counts, and bytes a process cannot take.

Every value ends up somewhere with a limit of its own: a command line and an environment cannot
carry NUL (the OS refuses them, and Python raised out of the controller's pass), a path cannot
hold control bytes that a terminal or a log line would interpret, and lists and strings are
bounded so that no manifest makes a pass slow. Violations are validation errors, reported by the
loader as file:line and field like any other.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

#: Longest command, environment value, message or prompt (characters).
MAX_TEXT = 65_536
#: Longest path or glob.
MAX_PATH = 4_096
#: Longest short text: an account, a label, a parameter's description.
MAX_SHORT = 1_024
#: Most entries in one list or mapping of a manifest (patterns, prompts, steps, env, labels, ...).
MAX_ITEMS = 256
#: Most restarts, attempts or matching lines a manifest may ask for.
MAX_COUNT = 1_000_000

_NUL = re.compile("\x00")
#: Control bytes a command line may not hold: all C0 but tab, newline and carriage return.
_COMMAND_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PATH_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _refuse(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise ValueError(
                f"must not contain {what} (found {found.group()!r} at character {found.start()})"
            )
        return value

    return AfterValidator(check)


#: A shell command line: bounded, no NUL and no control bytes but tab and line ends.
CommandText = Annotated[
    str,
    StringConstraints(max_length=MAX_TEXT),
    _refuse(_COMMAND_CONTROLS, "control characters other than tab and newline"),
]
#: An environment value: bounded, no NUL (no process environment can hold one).
EnvValue = Annotated[str, StringConstraints(max_length=MAX_TEXT), _refuse(_NUL, "NUL bytes")]
#: A path or glob: bounded, no control characters at all.
PathText = Annotated[
    str, StringConstraints(max_length=MAX_PATH), _refuse(_PATH_CONTROLS, "control characters")
]
#: A message, answer or prompt (control bytes are removed when it is delivered).
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
#: A short free-form text.
ShortText = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
