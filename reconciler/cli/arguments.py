"""How the verbs read the words they share: object kinds and durations, each refused in one
line that names the flag."""

from __future__ import annotations

from reconciler.api.duration import parse_duration
from reconciler.api.errors import InvalidInput

#: The kind words `get`, `describe` and `delete` take, and the kind each names.
KINDS = {
    "agent": "Agent",
    "agents": "Agent",
    "ag": "Agent",
    "playbook": "Playbook",
    "playbooks": "Playbook",
    "pb": "Playbook",
    "run": "Run",
    "runs": "Run",
    "notifier": "Notifier",
    "notifiers": "Notifier",
}


def kind_of(word: str) -> str:
    """The kind a kind word names (`agents`, `pb`, ...)."""
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise InvalidInput(
            f'unknown kind "{word}" (use agents, playbooks, runs or notifiers)'
        ) from None


def duration_option(flag: str, value: str) -> float:
    """A duration flag's seconds (`--timeout 2m`)."""
    try:
        return parse_duration(value)
    except ValueError as err:
        raise InvalidInput(f"{flag}: {err}") from None
