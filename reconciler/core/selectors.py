"""Pure: kubectl's equality-based label selectors (`-l role=executor,tier!=web,gpu,!spot`).

Used by `orch get -l` and by a Notifier's `selector`, so both read labels the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")
_TERM = re.compile(r"^(?P<neg>!)?(?P<key>[^=!]+?)\s*(?:(?P<op>==|=|!=)\s*(?P<value>.*))?$")


@dataclass(frozen=True)
class Requirement:
    """One term: `key=value`, `key!=value`, `key` (exists) or `!key` (absent)."""

    key: str
    op: str  # = | != | exists | absent
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this term."""
        if self.op == "exists":
            return self.key in labels
        if self.op == "absent":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a comma-separated selector; ValueError names the term that is wrong."""
    terms = []
    for raw in text.split(","):
        term = raw.strip()
        found = _TERM.match(term)
        if not term or found is None or not _KEY.match(found["key"].strip()):
            raise ValueError(f"invalid label selector term {raw!r} (use key=value, key!=value)")
        key, op, value = found["key"].strip(), found["op"], (found["value"] or "").strip()
        if found["neg"]:
            if op:
                raise ValueError(f"invalid label selector term {raw!r}")
            terms.append(Requirement(key, "absent"))
        elif op is None:
            terms.append(Requirement(key, "exists"))
        else:
            terms.append(Requirement(key, "!=" if op == "!=" else "=", value))
    return tuple(terms)


def selects(selector: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """Whether every term of `selector` holds for `labels` (the empty selector selects all)."""
    return all(term.matches(labels) for term in selector)
