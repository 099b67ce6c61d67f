"""Which words `entry` runs on its fast path: only the plain shapes of get/describe (of agents)
and send; anything with an option, another kind or another number of words goes to click."""

from __future__ import annotations

import pytest

from reconciler.cli.entry import _global_options, plain_command


@pytest.mark.parametrize(
    "words",
    [
        ["get", "agents"],
        ["get", "AG"],
        ["get", "agent", "a"],
        ["describe", "agent", "a"],
        ["describe", "agents", "a"],
        ["send", "a", "hello there"],
        ["send", "a", ""],
    ],
)
def test_plain_shapes_take_the_fast_path(words: list[str]) -> None:
    assert plain_command(words) is not None


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["--help"],
        ["get"],
        ["get", "agents", "-o", "json"],
        ["get", "agents", "--help"],
        ["get", "agents", "a", "b"],
        ["get", "runs"],
        ["get", "playbook", "p"],
        ["describe", "agent"],
        ["describe", "run", "r"],
        ["send", "a"],
        ["send", "a", "-"],
        ["send", "a", "--wait"],
        ["send", "a", "-x"],
        ["send", "a", "b", "c"],
        ["logs", "a"],
        ["Get", "agents"],
    ],
)
def test_every_other_shape_goes_to_click(words: list[str]) -> None:
    assert plain_command(words) is None


def test_global_options_before_the_verb() -> None:
    assert _global_options(["--state-dir", "s", "--socket=k", "get", "agents"]) == (
        "s",
        "k",
        ["get", "agents"],
    )
    assert _global_options(["--debug", "get"]) == (None, None, ["--debug", "get"])
