"""Manifest models and loader: the contract example loads; bad files name file:line and field."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.adapters.manifest_files import Declared, load_files
from reconciler.api.errors import ManifestError
from reconciler.api.manifest import (
    MAX_FILE_BYTES,
    Agent,
    AgentSpec,
    CrashLoopSpec,
    Gate,
    Playbook,
    PlaybookSpec,
    PromptRule,
    Step,
    manifest_json_schema,
)

#: The example from CONTRACT.md, "Manifests", with every field set.
FULL = """\
apiVersion: orch/v1
kind: Agent
metadata:
  name: executor
  labels: {role: executor}
spec:
  command: codex
  restartCommand: codex resume --last
  workdir: .
  env: {KEY: value}
  profile: generic
  restartPolicy: Always
  startup: {after: 2s, ready: "^> $"}
  stale:     {after: 30m, action: restart, nudge: "continue"}
  crashLoop: {maxRestarts: 5, window: 10m, backoff: 10s, maxBackoff: 5m, resetAfter: 10m}
  rateLimit: {patterns: ["(?i)rate limit"], cooldown: 15m, resume: "continue", account: team-login}
  prompts:
    - match: "Do you want to proceed\\\\?"
      answer: "y"
      enter: false
    - match: "Yes, I trust this folder"
      keys: [Enter]
  humanPatterns: ["\\\\[y/N\\\\]"]
  ignore: ["\\\\d+s elapsed"]
  talksTo: [architect]
  guards:
    - protect: ["tests/**", "SPRINT.md"]
      action: restore
---
apiVersion: orch/v1
kind: Playbook
metadata: {name: feature-implementation}
spec:
  params: {feature: {required: true, description: what to build}, depth: {default: "2"}}
  steps:
    - name: recon
      agent: executor
      prompt: "Research the code for ${feature}; write research-brief.md"
      outputs: [research-brief.md]
      gates:
        - fileExists: research-brief.md
        - fileMatches: {path: research-brief.md, pattern: "^- ", min: 2}
        - command: "pytest -q"
          timeout: 90s
        - approval: human
      maxAttempts: 3
      timeout: 2h
      when: {fileMatches: {path: plan.md, pattern: "needs-research"}}
"""

AGENT = """\
apiVersion: orch/v1
kind: Agent
metadata:
  name: a
spec:
  command: run
"""

PLAYBOOK = """\
apiVersion: orch/v1
kind: Playbook
metadata: {name: p}
spec:
  steps:
    - name: one
      agent: a
      prompt: go
"""


def write(folder: Path, text: str, name: str = "m.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def write_bytes(folder: Path, raw: bytes) -> Path:
    path = folder / "m.yaml"
    path.write_bytes(raw)
    return path


def load_error(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_files([path])
    return caught.value


# --- valid manifests ---------------------------------------------------------------------------


def test_full_example_loads_every_field(tmp_path: Path) -> None:
    agent_decl, playbook_decl = load_files([write(tmp_path, FULL)])

    assert (agent_decl.kind, agent_decl.name, agent_decl.line) == ("Agent", "executor", 1)
    assert agent_decl.file == str(tmp_path / "m.yaml")
    agent = agent_decl.obj
    assert isinstance(agent, Agent)
    spec = agent.spec
    assert agent.metadata.labels == {"role": "executor"}
    assert spec.command == "codex"
    assert spec.restart_command == "codex resume --last"
    assert spec.workdir == str(tmp_path)
    assert spec.env == {"KEY": "value"}
    assert (spec.profile, spec.restart_policy) == ("generic", "Always")
    assert (spec.startup.after, spec.startup.ready) == (2.0, "^> $")
    assert spec.stale is not None
    assert (spec.stale.after, spec.stale.action, spec.stale.nudge) == (
        1800.0,
        "restart",
        "continue",
    )
    assert spec.crash_loop == CrashLoopSpec(
        max_restarts=5, window=600, backoff=10, max_backoff=300, reset_after=600
    )
    assert spec.rate_limit is not None
    assert spec.rate_limit.patterns == ["(?i)rate limit"]
    assert (spec.rate_limit.cooldown, spec.rate_limit.account) == (900.0, "team-login")
    assert spec.prompts == [
        PromptRule(match="Do you want to proceed\\?", answer="y", enter=False),
        PromptRule(match="Yes, I trust this folder", keys=["Enter"]),
    ]
    assert spec.human_patterns == ["\\[y/N\\]"]
    assert spec.ignore == ["\\d+s elapsed"]
    assert spec.talks_to == ["architect"]
    assert spec.guards[0].protect == ["tests/**", "SPRINT.md"]

    assert (playbook_decl.kind, playbook_decl.name, playbook_decl.line) == (
        "Playbook",
        "feature-implementation",
        30,
    )
    playbook = playbook_decl.obj
    assert isinstance(playbook, Playbook)
    assert playbook.spec.params["feature"].required
    assert playbook.spec.params["depth"].default == "2"
    step = playbook.spec.steps[0]
    assert (step.name, step.agent, step.max_attempts, step.timeout) == (
        "recon",
        "executor",
        3,
        7200,
    )
    assert step.outputs == ["research-brief.md"]
    assert [gate.model_dump(exclude_none=True, exclude={"timeout"}) for gate in step.gates] == [
        {"file_exists": "research-brief.md"},
        {"file_matches": {"path": "research-brief.md", "pattern": "^- ", "min": 2}},
        {"command": "pytest -q"},
        {"approval": "human"},
    ]
    assert step.gates[2].timeout == 90.0
    assert step.when is not None and step.when.file_matches is not None
    assert step.when.file_matches.min == 1


def test_defaults() -> None:
    spec = AgentSpec(command="x")
    assert (spec.workdir, spec.profile, spec.restart_policy) == (".", "generic", "Always")
    assert spec.startup.after == 1.0
    assert spec.stale is None and spec.rate_limit is None
    assert spec.crash_loop == CrashLoopSpec()
    assert (spec.crash_loop.max_restarts, spec.crash_loop.window) == (5, 600.0)
    assert (spec.crash_loop.backoff, spec.crash_loop.max_backoff) == (10.0, 300.0)
    step = Step(name="s", agent="a", prompt="p")
    assert (step.max_attempts, step.timeout, step.when, step.gates) == (3, None, None, [])
    assert Gate(command="true").timeout == 600.0


def test_dump_is_camel_case_and_round_trips(tmp_path: Path) -> None:
    declared = load_files([write(tmp_path, FULL)])
    dumps = [d.obj.model_dump(mode="json", by_alias=True, exclude_none=True) for d in declared]
    for d, dumped in zip(declared, dumps, strict=True):
        assert json.loads(json.dumps(dumped)) == dumped
        assert type(d.obj).model_validate(dumped) == d.obj
    spec = dumps[0]["spec"]
    assert {"restartCommand", "restartPolicy", "humanPatterns", "talksTo"} <= set(spec)
    assert spec["crashLoop"] == {
        "maxRestarts": 5,
        "window": "10m",
        "backoff": "10s",
        "maxBackoff": "5m",
        "resetAfter": "10m",
    }
    assert dumps[1]["spec"]["steps"][0]["maxAttempts"] == 3


def test_models_are_frozen() -> None:
    spec = AgentSpec(command="x")
    with pytest.raises(ValueError, match="frozen"):
        spec.command = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("---\n---\n# only a comment\n", []),
        (
            "# header\n" + AGENT + "---\n\n---\n" + PLAYBOOK,
            [("Agent", "a", 2), ("Playbook", "p", 11)],
        ),
        ("\ufeff" + AGENT, [("Agent", "a", 1)]),
        (AGENT.replace("kind: Agent", "kind: !!str Agent"), [("Agent", "a", 1)]),
    ],
    ids=["empty", "empty-documents", "multi-document", "bom", "core-tag"],
)
def test_documents(tmp_path: Path, text: str, expected: list[tuple[str, str, int]]) -> None:
    declared = load_files([write(tmp_path, text)])
    assert [(d.kind, d.name, d.line) for d in declared] == expected


@pytest.mark.parametrize(
    ("workdir", "expected"),
    [
        (".", "{folder}"),
        ("sub/dir", "{folder}/sub/dir"),
        ("../other", "{parent}/other"),
        ("/abs/path", "/abs/path"),
        ("~/proj", "{home}/proj"),
    ],
)
def test_workdir_is_resolved_against_the_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workdir: str, expected: str
) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    write(folder, AGENT + f"  workdir: {workdir}\n")
    (declared,) = load_files(["manifests/m.yaml"])
    assert isinstance(declared.obj, Agent)
    assert declared.obj.spec.workdir == expected.format(
        folder=folder, parent=tmp_path, home="/home/someone"
    )
    assert declared.file == str(folder / "m.yaml")


def test_names_unique_per_kind_not_across_kinds(tmp_path: Path) -> None:
    text = AGENT + "---\n" + PLAYBOOK.replace("name: p}", "name: a}")
    assert [d.kind for d in load_files([write(tmp_path, text)])] == ["Agent", "Playbook"]


# --- bad manifests: file:line, field and message -----------------------------------------------


def spec_line(extra: str) -> str:
    """An Agent whose spec gets `extra` from line 7 on."""
    return AGENT + extra


def step_with(extra: str) -> str:
    """A Playbook whose only step gets `extra` from line 9 on."""
    return PLAYBOOK + extra


BAD: list[tuple[str, str, int | None, str, str]] = [
    # id, text, line, field, message (a substring)
    ("unknown-field", spec_line("  bogus: 1\n"), 7, "spec.bogus", "unknown field"),
    ("unknown-top", AGENT + "status: {}\n", 7, "status", "unknown field"),
    (
        "unknown-nested",
        spec_line("  stale:\n    after: 1m\n    actoin: none\n"),
        9,
        "spec.stale.actoin",
        "unknown field",
    ),
    ("no-kind", AGENT.replace("kind: Agent\n", ""), 1, "kind", "missing required field"),
    ("bad-kind", AGENT.replace("kind: Agent", "kind: Pod"), 2, "kind", 'unknown kind "Pod"'),
    ("list-kind", AGENT.replace("kind: Agent", "kind: [x]"), 2, "kind", "unknown kind"),
    ("no-api", AGENT.replace("apiVersion: orch/v1\n", ""), 1, "apiVersion", "missing required"),
    ("bad-api", AGENT.replace("orch/v1", "orch/v2"), 1, "apiVersion", "'orch/v1', got \"orch/v2\""),
    ("no-name", AGENT.replace("  name: a\n", "  labels: {}\n"), 3, "metadata.name", "missing"),
    (
        "upper-name",
        AGENT.replace("name: a", "name: Exec"),
        4,
        "metadata.name",
        'invalid name "Exec"',
    ),
    ("dash-name", AGENT.replace("name: a", "name: a-"), 4, "metadata.name", "invalid name"),
    ("long-name", AGENT.replace("name: a", "name: " + "a" * 41), 4, "metadata.name", "at most 40"),
    ("int-name", AGENT.replace("name: a", "name: 12"), 4, "metadata.name", "valid string, got 12"),
    (
        "no-command",
        AGENT.replace("  command: run\n", "  workdir: .\n"),
        5,
        "spec.command",
        "missing",
    ),
    ("blank-command", AGENT.replace("command: run", "command: ' '"), 6, "spec.command", "blank"),
    ("null-spec", AGENT.replace("  command: run\n", ""), 5, "spec", "valid dictionary"),
    (
        "bad-duration",
        spec_line("  stale: {after: 10x}\n"),
        7,
        "spec.stale.after",
        'invalid duration "10x": use 500ms, 10s, 30m, 1h30m or a number of seconds',
    ),
    (
        "negative-duration",
        spec_line("  crashLoop:\n    backoff: -1\n"),
        8,
        "spec.crashLoop.backoff",
        "invalid duration -1",
    ),
    (
        "bad-regex",
        spec_line("  prompts:\n    - match: '('\n      answer: y\n"),
        8,
        "spec.prompts[0].match",
        'invalid regex "(": missing ): (',
    ),
    (
        "regex-that-could-backtrack",
        spec_line("  humanPatterns: ['(?<=x)y']\n"),
        7,
        "spec.humanPatterns[0]",
        "invalid perl operator: (?<",
    ),
    (
        "bad-regex-in-list",
        spec_line("  humanPatterns: [ok, '[a-']\n"),
        7,
        "spec.humanPatterns[1]",
        "invalid regex",
    ),
    (
        "answer-and-keys",
        spec_line("  prompts:\n    - match: x\n      answer: y\n      keys: [Enter]\n"),
        8,
        "spec.prompts[0]",
        "exactly one of: answer, keys",
    ),
    (
        "key-that-is-a-command",
        spec_line("  prompts:\n    - match: x\n      keys: [Down, 'y;', run-shell]\n"),
        9,
        "spec.prompts[0].keys[1]",
        "invalid key 'y;'",
    ),
    (
        "neither-answer-nor-keys",
        spec_line("  prompts:\n    - {match: x}\n"),
        8,
        "spec.prompts[0]",
        "exactly one of: answer, keys",
    ),
    ("nul-in-env", spec_line('  env: {A: "a\\0b"}\n'), 7, "spec.env.A", "must not contain NUL"),
    (
        "nul-in-command",
        AGENT.replace("command: run", 'command: "x\\0y"'),
        6,
        "spec.command",
        "must not contain control",
    ),
    ("escape-in-workdir", spec_line('  workdir: "a\\eb"\n'), 7, "spec.workdir", "control"),
    (
        "huge-cooldown",
        spec_line("  rateLimit: {cooldown: 99999999999999999999h}\n"),
        7,
        "spec.rateLimit.cooldown",
        "at most 30d",
    ),
    (
        "huge-backoff",
        spec_line("  crashLoop: {backoff: 31d}\n"),
        7,
        "spec.crashLoop.backoff",
        "30d",
    ),
    (
        "too-many-patterns",
        spec_line("  ignore: [" + ", ".join(["x"] * 257) + "]\n"),
        7,
        "spec.ignore",
        "at most 256 items",
    ),
    ("bad-enum", spec_line("  restartPolicy: Sometimes\n"), 7, "spec.restartPolicy", "'Never'"),
    ("bad-profile", spec_line("  profile: vim\n"), 7, "spec.profile", 'got "vim"'),
    ("bad-env-name", spec_line("  env: {1X: a}\n"), 7, "spec.env.1X", "environment variable name"),
    ("env-not-string", spec_line("  env: {X: 1}\n"), 7, "spec.env.X", "valid string, got 1"),
    ("bad-talks-to", spec_line("  talksTo: [ok, No]\n"), 7, "spec.talksTo[1]", "invalid name"),
    ("empty-guard", spec_line("  guards:\n    - protect: []\n"), 8, "spec.guards[0].protect", "1"),
    (
        "negative-int",
        spec_line("  crashLoop:\n    maxRestarts: -1\n"),
        8,
        "spec.crashLoop.maxRestarts",
        "greater than or equal to 0",
    ),
    ("wrong-type", spec_line("  prompts: {}\n"), 7, "spec.prompts", "valid list"),
    ("no-steps", PLAYBOOK.split("    - ")[0] + "    []\n", 5, "spec.steps", "at least 1 item"),
    (
        "duplicate-step",
        step_with("    - {name: one, agent: b, prompt: again}\n"),
        5,
        "spec.steps",
        'duplicate step name "one" (steps[0] and steps[1])',
    ),
    (
        "gate-two-checks",
        step_with("      gates:\n        - {fileExists: a, command: b}\n"),
        10,
        "spec.steps[0].gates[0]",
        "exactly one of: fileExists, fileMatches, command, approval",
    ),
    (
        "when-approval",
        step_with("      when: {approval: human}\n"),
        9,
        "spec.steps[0].when.approval",
        "unknown field",
    ),
    ("zero-attempts", step_with("      maxAttempts: 0\n"), 9, "spec.steps[0].maxAttempts", "1"),
    (
        "file-matches-regex",
        step_with(
            "      gates:\n        - fileMatches:\n            path: a\n            pattern: '*'\n"
        ),
        12,
        "spec.steps[0].gates[0].fileMatches.pattern",
        "invalid regex",
    ),
    # YAML problems
    ("syntax", spec_line("  env: {a: b\n  x: [\n"), 8, "", "invalid YAML"),
    ("tab", spec_line("\tbogus: 1\n"), 7, "", "invalid YAML: found character '\\t'"),
    ("control-char", spec_line("  nudge: a\x01\n"), 7, "", "invalid YAML: unacceptable character"),
    ("duplicate-key", spec_line("  command: again\n"), 7, "spec.command", "duplicate key"),
    ("complex-key", spec_line("  ? [a]\n  : b\n"), 7, "spec", "key must be a plain string"),
    ("not-a-mapping", "- a\n- b\n", 1, "", "must be a mapping"),
    ("scalar-document", AGENT + "---\njust text\n", 8, "", "must be a mapping"),
    ("anchor", spec_line("  env: &e {A: b}\n"), 7, "", "anchors and aliases"),
    ("alias", "a: &x 1\nb: *x\n", 1, "", "anchors and aliases"),
    ("python-tag", "a: !!python/object/apply:os.system [ls]\n", 1, "", "not allowed"),
    ("custom-tag", spec_line("  command: !shell run\n"), 7, "", "tag '!shell' is not allowed"),
    ("set-tag", "a: !!set {x, y}\n", 1, "", "not allowed"),
    ("bad-core-value", spec_line("  env: {A: !!int x}\n"), 7, "spec.env.A", "invalid int value"),
    (
        "huge-int",
        spec_line("  crashLoop: {maxRestarts: " + "9" * 5000 + "}\n"),
        7,
        "spec.crashLoop.maxRestarts",
        "invalid int value",
    ),
    (
        "account-budget-without-account",
        spec_line("  budget: {tokens: 10, scope: account}\n"),
        7,
        "spec.budget",
        "needs rateLimit.account",
    ),
    ("deep", "a: " + "[" * 60 + "]" * 60 + "\n", 1, "", "deeper than 50 levels"),
    ("very-deep", "a: " + "[" * 600 + "\n", 1, "", "deeper than 50 levels"),
    ("duplicate-agent", AGENT + "---\n" + AGENT, 11, "metadata.name", 'duplicate agent "a"'),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_manifest(
    tmp_path: Path, text: str, line: int | None, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    assert message in error.message
    assert "\n" not in str(error)


def test_error_names_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, spec_line("  bogus: 1\n"))
    error = load_error(Path("m.yaml"))
    assert str(error) == "m.yaml:7: spec.bogus: unknown field"


def test_first_problem_in_file_order_wins(tmp_path: Path) -> None:
    # pydantic reports metadata before spec; the loader reports the earlier line
    text = "apiVersion: orch/v1\nkind: Agent\nspec: {command: x, bogus: 1}\nmetadata: {name: X}\n"
    assert load_error(write(tmp_path, text)).line == 3
    # a bad document is reported before a YAML error in a later one
    text = spec_line("  bogus: 1\n") + "---\n: : :\n  - [\n"
    assert load_error(write(tmp_path, text)).field == "spec.bogus"


def test_duplicate_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, PLAYBOOK, "one.yaml")
    second = write(tmp_path, AGENT + "---\n" + PLAYBOOK, "two.yaml")
    with pytest.raises(ManifestError) as caught:
        load_files([first, second])
    error = caught.value
    assert (error.file, error.line, error.field) == (str(second), 10, "metadata.name")
    assert error.message == f'duplicate playbook "p" (first declared at {first}:1)'


@pytest.mark.parametrize(
    ("make", "line", "message"),
    [
        (lambda folder: folder / "missing.yaml", None, "cannot read: No such file or directory"),
        (lambda folder: folder, None, "cannot read: Is a directory"),
        (
            lambda folder: write(folder, "#" * MAX_FILE_BYTES + "\n"),
            None,
            "larger than 1 MiB",
        ),
        (lambda folder: write_bytes(folder, b"a: 1\nb: \xff\n"), 2, "not valid UTF-8 (byte 0xff)"),
    ],
    ids=["missing", "directory", "too-large", "not-utf8"],
)
def test_unreadable_files(tmp_path: Path, make: Any, line: int | None, message: str) -> None:
    path = make(tmp_path)
    error = load_error(path)
    assert (error.file, error.line, error.field, error.message) == (str(path), line, "", message)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    layers = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    layers += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    error = load_error(write(tmp_path, "\n".join(layers) + "\n"))
    assert (error.line, error.message) == (1, "anchors and aliases (&, *) are not allowed")


# --- JSON Schema -------------------------------------------------------------------------------


def test_json_schema_covers_every_kind() -> None:
    schema = manifest_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["discriminator"]["propertyName"] == "kind"
    refs = {ref["$ref"] for ref in schema["oneOf"]}
    assert refs == {"#/$defs/Agent", "#/$defs/Playbook", "#/$defs/Notifier"}
    defs = schema["$defs"]
    assert defs["Agent"]["additionalProperties"] is False
    assert set(defs["Agent"]["required"]) == {"apiVersion", "kind", "metadata", "spec"}
    assert "restartPolicy" in defs["AgentSpec"]["properties"]
    assert defs["StaleSpec"]["properties"]["after"]["anyOf"][0]["type"] == "string"
    assert defs["ObjectMeta"]["properties"]["name"]["maxLength"] == 40
    assert defs["PromptRule"]["properties"]["match"]["format"] == "regex"


# --- nothing but ManifestError, whatever the input ---------------------------------------------


def _aliases(*models: type[Any]) -> list[str]:
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


KEYS = _aliases(Agent, AgentSpec, PromptRule, CrashLoopSpec, Playbook, PlaybookSpec, Step, Gate)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
    | st.sampled_from(["10s", "1h30m", "(", "a-b", "Always", "human", "orch/v1", "Agent"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
DOCUMENTS = st.fixed_dictionaries(
    {"kind": st.sampled_from(["Agent", "Playbook"]) | SCALARS},
    optional={
        "apiVersion": st.just("orch/v1") | SCALARS,
        "metadata": st.fixed_dictionaries({"name": st.just("a") | SCALARS}) | VALUES,
        "spec": VALUES,
    },
)
#: Characters that mean something to YAML, plus a few it refuses or treats as line breaks.
YAML_CHARS = st.sampled_from(list("ab:-[]{}&*!|>'\"#%@`?,.~ \t\n\r\x00\x85\u2028é"))
JUNK = st.text(YAML_CHARS, max_size=60)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_quietly(path: Path) -> None:
    try:
        for declared in load_files([path]):
            assert isinstance(declared, Declared)
    except ManifestError as error:
        assert error.file == str(path)
        assert "\n" not in str(error)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=st.lists(DOCUMENTS | VALUES, max_size=3))
def test_random_yaml_values_raise_only_manifest_error(scratch: Path, documents: list[Any]) -> None:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump_all(documents, stream)
    _load_quietly(write(scratch, stream.getvalue()))


@settings(max_examples=100, deadline=None)
@given(text=JUNK | st.text(max_size=40), raw=st.binary(max_size=40))
def test_junk_raises_only_manifest_error(scratch: Path, text: str, raw: bytes) -> None:
    _load_quietly(write(scratch, text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")))
    _load_quietly(write_bytes(scratch, raw))


@settings(max_examples=50, deadline=None)
@given(
    start=st.integers(0, len(FULL)),
    removed=st.integers(0, 8),
    inserted=st.text(YAML_CHARS, max_size=3),
)
def test_edited_example_raises_only_manifest_error(
    scratch: Path, start: int, removed: int, inserted: str
) -> None:
    _load_quietly(write(scratch, FULL[:start] + inserted + FULL[start + removed :]))
