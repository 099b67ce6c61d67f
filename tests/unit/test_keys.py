"""Key names: only what tmux reads as one key reaches `send-keys`."""

from __future__ import annotations

import pytest

from reconciler.api.keys import check_key


@pytest.mark.parametrize(
    "key",
    [
        "Enter",
        "enter",
        "Escape",
        "C-c",
        "M-x",
        "C-M-Left",
        "S-Tab",
        "BTab",
        "F12",
        "^C",
        "y",
        ";",
        "#",
        "é",
        "KPEnter",
        "PgDn",
        "Space",
        "BSpace",
    ],
)
def test_tmux_key_names_and_single_characters_are_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "y;", "run-shell", "touch /tmp/x", "Enter;", "\x1b", "\n", "C-", "F13", "yes", "x" * 500],
)
def test_anything_else_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid key"):
        check_key(key)
