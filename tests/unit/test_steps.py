"""Playbook steps as text: parameter names, prompt rendering, parameter checks, rework messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.manifest_files import load_files
from reconciler.api.errors import InvalidInput
from reconciler.api.manifest import ParamSpec, Playbook, PlaybookSpec, Step
from reconciler.core.steps import (
    GateResult,
    render_prompt,
    rework_message,
    template_names,
    validate_params,
)

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "manifests" / "playbooks" / "feature-implementation.yaml"


def spec(*prompts: str, **params: ParamSpec) -> PlaybookSpec:
    steps = [Step(name=f"s{i}", agent="executor", prompt=p) for i, p in enumerate(prompts)]
    return PlaybookSpec(params=params, steps=steps)


def invalid(spec: PlaybookSpec, given: dict[str, str]) -> str:
    """The message of the InvalidInput that validate_params raises; it must be one line."""
    with pytest.raises(InvalidInput) as raised:
        validate_params(spec, given, playbook="demo")
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- template_names and render_prompt -----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("Build ${feature} in ${module}, then ${feature} again", {"feature", "module"}),
        ("no parameters at all", set()),
        ("run `orch step done $ORCH_RUN` and read $HOME", set()),  # unbraced: the agent's shell
        ("literal $${feature}, real ${other}", {"other"}),
        ("${feature-name} and ${_x1}", {"feature-name", "_x1"}),
        ("${VAR:-default} ${1x} ${} ${ spaced }", set()),  # not parameter references
    ],
)
def test_template_names(template: str, names: set[str]) -> None:
    assert template_names(template) == names


def test_render_fills_every_reference() -> None:
    rendered = render_prompt(
        "Do ${feature}; again: ${feature}. By ${who}.", {"feature": "X", "who": "Y"}
    )
    assert rendered == "Do X; again: X. By Y."


def test_render_keeps_unbraced_dollars_and_unescapes_doubled_ones() -> None:
    rendered = render_prompt("$${feature} is ${feature}; run $ORCH_RUN", {"feature": "CSV"})
    assert rendered == "${feature} is CSV; run $ORCH_RUN"


def test_render_leaves_unknown_names_as_written() -> None:
    assert render_prompt("${known} ${unknown}", {"known": "k"}) == "k ${unknown}"


def test_render_does_not_expand_references_inside_values() -> None:
    rendered = render_prompt("${a} ${b}", {"a": "${b}", "b": "$${a}"})
    assert rendered == "${b} $${a}"


# --- validate_params ----------------------------------------------------------------------------


def test_validate_fills_defaults_and_empty_optionals() -> None:
    playbook = spec(
        "${feature} ${branch} ${note}",
        feature=ParamSpec(required=True),
        branch=ParamSpec(default="main"),
        note=ParamSpec(),
    )
    assert validate_params(playbook, {"feature": "CSV"}, playbook="demo") == {
        "feature": "CSV",
        "branch": "main",
        "note": "",
    }
    given = {"feature": "CSV", "branch": "dev", "note": "n"}
    assert validate_params(playbook, given, playbook="demo") == given


def test_required_parameter_with_default_is_not_missing() -> None:
    playbook = spec("${feature}", feature=ParamSpec(required=True, default="all"))
    assert validate_params(playbook, {}, playbook="demo") == {"feature": "all"}


def test_missing_required_parameter() -> None:
    playbook = spec("${feature}", feature=ParamSpec(required=True), extra=ParamSpec())
    assert invalid(playbook, {}) == "missing parameter feature (required by playbook demo)"


def test_missing_required_parameters_are_listed_together() -> None:
    playbook = spec("${a}", b=ParamSpec(required=True), a=ParamSpec(required=True))
    assert invalid(playbook, {}) == "missing parameters a, b (required by playbook demo)"


def test_unknown_parameter() -> None:
    playbook = spec("${b}", b=ParamSpec(), a=ParamSpec())
    assert invalid(playbook, {"foo": "1"}) == "unknown parameter foo (known: a, b)"


def test_unknown_parameter_is_reported_before_a_missing_one() -> None:
    """A typo in --param is both: naming the typo is what helps."""
    playbook = spec("${feature}", feature=ParamSpec(required=True))
    assert invalid(playbook, {"featur": "x"}) == "unknown parameter featur (known: feature)"


def test_unknown_parameters_of_a_playbook_without_any() -> None:
    assert invalid(spec("plain"), {"x": "1", "a": "2"}) == "unknown parameters a, x (known: none)"


def test_prompt_referencing_an_undeclared_parameter() -> None:
    playbook = spec("fine ${feature}", "uses ${featur} and ${zz}", feature=ParamSpec())
    assert invalid(playbook, {"feature": "x"}) == (
        "playbook demo: step s1 references parameters ${featur}, ${zz}, "
        "which the playbook does not declare (declared: feature)"
    )


def test_the_seed_playbook_takes_a_feature() -> None:
    [declared] = load_files([SEED])
    assert isinstance(declared.obj, Playbook)
    playbook = declared.obj
    name = playbook.metadata.name
    params = validate_params(playbook.spec, {"feature": "CSV export"}, playbook=name)
    assert params == {"feature": "CSV export"}
    with pytest.raises(InvalidInput, match="missing parameter feature"):
        validate_params(playbook.spec, {}, playbook=name)
    for step in playbook.spec.steps:
        prompt = render_prompt(step.prompt, params)
        assert "CSV export" in prompt
        assert "orch step done $ORCH_RUN" in prompt


# --- rework_message -----------------------------------------------------------------------------


def test_rework_message_names_the_gate_shows_its_output_and_restates_the_task() -> None:
    failed = GateResult("command make test", passed=False, output="FAILED test_x\nexit status 2")
    message = rework_message("Implement CSV export.", "builder", 2, 3, failed)
    assert "builder" in message
    assert "`command make test` failed" in message
    assert "```\nFAILED test_x\nexit status 2\n```" in message
    assert "attempt 2 of 3" in message
    assert message.endswith("Implement CSV export.")


def test_rework_fence_is_longer_than_any_backtick_run_in_the_output() -> None:
    failed = GateResult("command x", passed=False, output="a ```` b")
    message = rework_message("task", "s", 2, 3, failed)
    assert "`````\na ```` b\n`````" in message


def test_rework_message_with_empty_output() -> None:
    failed = GateResult("fileExists plan.md", passed=False, output="  \n")
    assert "```\n(no output)\n```" in rework_message("task", "s", 3, 3, failed)
