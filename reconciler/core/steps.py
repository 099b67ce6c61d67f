"""Playbook steps as text: parameters checked and filled in, gate results, rework messages.

`orch run` checks a run's parameters against the playbook before anything starts
(`validate_params`), so a typo in `--param` or a prompt naming a parameter that does not exist is
one clear line at the terminal, not a half-started run. The planner then renders each step's prompt
(`render_prompt`) and, when a gate fails, the rework message (`rework_message`). Gates themselves
are evaluated by the adapter `reconciler.adapters.gates`; their `GateResult` is defined here so
the planner can read results without importing anything that runs commands.

Only the braced form `${name}` is a parameter: a prompt can mention `$HOME` or `$ORCH_RUN` for the
agent's shell without it being taken for one, and `$${name}` writes a literal `${name}`.

This module is pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.api.errors import InvalidInput

if TYPE_CHECKING:  # only annotations: the CLI reads runs without building the manifest models
    from reconciler.api.manifest import PlaybookSpec

#: `${name}`, or `$${name}` (an escaped, literal `${name}`).
_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate or `when` condition."""

    name: str
    """Short human name, e.g. "fileExists research-brief.md" or "command make test"."""
    passed: bool
    output: str
    """Why it passed or failed: a command's output (trimmed), or one line for file checks."""
    pending: bool = False
    """True only for an `approval: human` gate that no one has approved yet."""
    duration: float = 0.0
    """Seconds the evaluation took."""
    attempt: int = 0
    """The step attempt it was evaluated for (0: a `when`, checked before the first attempt), so
    a result of an earlier attempt is never shown as the current one."""


def template_names(template: str) -> set[str]:
    """The parameter names `template` references as `${name}` (escaped `$${name}` excluded)."""
    return {match[2] for match in _REFERENCE.finditer(template) if not match[1]}


def render_prompt(template: str, params: Mapping[str, str]) -> str:
    """`template` with each `${name}` replaced by `params[name]` and `$${name}` by `${name}`.

    A name missing from `params` is left as written; `validate_params` refuses such a playbook
    before a run starts.
    """

    def replace(match: re.Match[str]) -> str:
        escaped, name = match[1], match[2]
        if escaped or name not in params:
            return "${" + name + "}"
        return params[name]

    return _REFERENCE.sub(replace, template)


def validate_params(
    spec: PlaybookSpec, given: Mapping[str, str], *, playbook: str
) -> dict[str, str]:
    """Every declared parameter's value for a run of `playbook`: given, else default, else "".

    Raises InvalidInput (one line) for the first problem found: a step prompt referencing an
    undeclared parameter, parameters the playbook does not declare, or required ones not given.
    """
    declared = sorted(spec.params)
    for step in spec.steps:
        undeclared = sorted(template_names(step.prompt) - set(spec.params))
        if undeclared:
            shown = ["${" + name + "}" for name in undeclared]
            raise InvalidInput(
                f"playbook {playbook}: step {step.name} references "
                f"{_plural('parameter', shown)}, which the playbook does not declare "
                f"(declared: {_listed(declared)})"
            )
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise InvalidInput(f"unknown {_plural('parameter', unknown)} (known: {_listed(declared)})")
    missing = [
        name
        for name in declared
        if spec.params[name].required and spec.params[name].default is None and name not in given
    ]
    if missing:
        raise InvalidInput(
            f"missing {_plural('parameter', missing)} (required by playbook {playbook})"
        )
    return {name: given.get(name, spec.params[name].default or "") for name in declared}


def rework_message(
    step_prompt: str, step_name: str, attempt: int, max_attempts: int, failed: GateResult
) -> str:
    """What an agent is sent when its step failed a gate: the failure, its output, the task again.

    `attempt` is the attempt this message starts (2 after the first failure); `step_prompt` is the
    rendered prompt.
    """
    output = failed.output.strip() or "(no output)"
    longest = max((len(run) for run in _BACKTICKS.findall(output)), default=0)
    fence = "`" * max(3, longest + 1)  # longer than any backtick run in the output
    return (
        f"Step {step_name} is not done yet: the gate `{failed.name}` failed.\n"
        f"{fence}\n{output}\n{fence}\n"
        f"Fix this and finish the step (attempt {attempt} of {max_attempts}). "
        f"The task, again:\n\n{step_prompt}"
    )


def _plural(noun: str, names: list[str]) -> str:
    """ "parameter foo" or "parameters bar, foo"."""
    return f"{noun}{'s' if len(names) > 1 else ''} {_listed(names)}"


def _listed(names: list[str]) -> str:
    return ", ".join(names) or "none"
