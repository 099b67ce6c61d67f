"""tmux key names, checked before they reach `send-keys` (in manifests and again in the adapter).

`send-keys` types any string it does not know as a key name character by character, so a
"key" is really free text unless it is checked. Accepted: tmux's named keys (its key table in
key-string.c, case-insensitive, as tmux reads them), a single printable character, each with
optional `C-`, `M-`, `S-` modifiers, and `^X` for Ctrl-X.
"""

from __future__ import annotations

import re

_NAMED = frozenset(
    name.lower()
    for name in (
        *(f"F{number}" for number in range(1, 13)),
        *("IC", "Insert", "DC", "Delete", "Home", "End", "NPage", "PageDown", "PgDn"),
        *("PPage", "PageUp", "PgUp", "Tab", "BTab", "Space", "BSpace", "Enter", "Escape"),
        *("Up", "Down", "Left", "Right"),
        *("KP/", "KP*", "KP-", "KP7", "KP8", "KP9", "KP+", "KP4", "KP5", "KP6"),
        *("KP1", "KP2", "KP3", "KPEnter", "KP0", "KP."),
    )
)
_MODIFIERS = re.compile(r"(?:[CMScms]-)*")
#: Longer key names are refused before they are looked at.
MAX_KEY_LENGTH = 32


def check_key(key: str) -> str:
    """Return `key` when tmux reads it as one key; raise ValueError naming it otherwise."""
    base = key[_MODIFIERS.match(key).end() :] if len(key) <= MAX_KEY_LENGTH else ""  # type: ignore[union-attr]
    if base.startswith("^") and len(base) == 2:
        base = base[1:]
    if base.lower() in _NAMED or (len(base) == 1 and base.isprintable()):
        return key
    shown = key if len(key) <= MAX_KEY_LENGTH else key[:MAX_KEY_LENGTH] + "..."
    raise ValueError(
        f"invalid key {shown!r}: use a tmux key name (Enter, Escape, Up, C-c, F1, ...) "
        "or one character"
    )
