"""Manifests: the pydantic models of Agent and Playbook, and the YAML loader that builds them.

Users write Kubernetes-shaped, multi-document YAML (see CONTRACT.md, "Manifests"); the rest of orch
only ever sees the frozen models defined here. The loader is the one place where untrusted text
becomes objects, so it refuses what YAML can do but manifests never need (anchors and aliases,
object-building tags, huge or deeply nested files) and turns every problem, from an unreadable file
to a bad regex, into one `ManifestError` naming the file, the line and the dotted field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from reconciler.duration import DURATION_PATTERN, format_duration, parse_duration
from reconciler.errors import ManifestError

#: Larger files are refused before parsing: no manifest needs more, and it bounds the work.
MAX_FILE_BYTES = 1 << 20
#: Deeper YAML is refused while parsing (a scalar counts as a level): manifests nest about 6 deep.
MAX_DEPTH = 50

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 40
_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _shown(value: object) -> str:
    """A user's value as it appears in an error message: JSON-quoted, one line, not too long."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_name(value: str) -> str:
    if len(value) > NAME_MAX_LENGTH or not _NAME.fullmatch(value):
        raise ValueError(
            f"invalid name {_shown(value)}: use lowercase letters, digits and inner '-', "
            f"at most {NAME_MAX_LENGTH} characters"
        )
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError) as error:
        raise ValueError(f"invalid regex {_shown(value)}: {error}") from None
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"invalid environment variable name {_shown(value)}: "
            "use letters, digits and '_', not starting with a digit"
        )
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: A DNS label naming an object (an agent, a playbook, a step).
Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH}),
]
#: Seconds; written as "500ms", "10s", "30m", "1h30m" or a number, and dumped to JSON in that form.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
#: A Python regular expression, checked when the manifest is loaded.
Pattern = Annotated[
    str, AfterValidator(_check_regex), WithJsonSchema({"type": "string", "format": "regex"})
]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
NonBlank = Annotated[str, AfterValidator(_check_not_blank)]
ApiVersion = Literal["orch/v1"]
Profile = Literal["generic", "codex", "claude", "gemini", "aider", "hermes"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]


class _Model(BaseModel):
    """Base of every manifest model: immutable, strict about unknown fields, camelCase in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
    )


def _exactly_one(model: BaseModel, fields: Sequence[str]) -> None:
    """Raise unless exactly one of `fields` (Python names) is set on `model`."""
    if sum(getattr(model, name) is not None for name in fields) != 1:
        aliases = ", ".join(type(model).model_fields[name].alias or name for name in fields)
        raise ValueError(f"set exactly one of: {aliases}")


class ObjectMeta(_Model):
    """What identifies an object: its name, unique per kind, and free-form labels."""

    name: Name
    """DNS label: lowercase letters, digits and inner '-', at most 40 characters."""
    labels: dict[str, str] = {}
    """Free-form key/value tags, shown by `orch describe`."""


class StartupSpec(_Model):
    """When a started agent counts as Running."""

    after: Duration = 1.0
    """Alive this long after start means Running."""
    ready: Pattern | None = None
    """Regex that, seen on screen, means Running at once."""


class StaleSpec(_Model):
    """What to do when an agent's screen stops changing."""

    after: Duration = 1800.0
    """Screen unchanged this long means Stale."""
    action: Literal["restart", "nudge", "none"] = "restart"
    """restart the agent, nudge it with a message, or just report it."""
    nudge: str = "continue"
    """The message sent by the nudge action."""


class CrashLoopSpec(_Model):
    """Restart limits: too many restarts within a window back off, doubling up to a maximum."""

    max_restarts: int = Field(default=5, ge=0)
    """Restarts allowed within `window` before the agent is CrashLooping."""
    window: Duration = 600.0
    """The sliding window restarts are counted in."""
    backoff: Duration = 10.0
    """The first wait in CrashLooping; it doubles on every further crash."""
    max_backoff: Duration = 300.0
    """The longest wait in CrashLooping."""
    reset_after: Duration = 600.0
    """Running this long clears the restart count and the backoff."""


class RateLimitSpec(_Model):
    """How to recognise and sit out a usage limit."""

    patterns: list[Pattern] = []
    """Extra regexes that mean: rate limited (profiles bring their own)."""
    cooldown: Duration = 900.0
    """How long to wait when the screen does not say when the limit resets."""
    resume: str = "continue"
    """The message sent when the cooldown ends."""
    account: str | None = None
    """Agents naming the same account share one cooldown."""


class PromptRule(_Model):
    """An automatic answer to a prompt that would otherwise wait for a human."""

    match: Pattern
    """Regex that recognises the prompt on screen."""
    answer: str | None = None
    """Text to send (set this or `keys`)."""
    keys: list[str] | None = Field(default=None, min_length=1)
    """tmux key names to send, e.g. [Down, Enter] (set this or `answer`)."""
    enter: bool = True
    """Press Enter after `answer`."""

    @model_validator(mode="after")
    def _one_reply(self) -> Self:
        _exactly_one(self, ("answer", "keys"))
        return self


class GuardSpec(_Model):
    """Paths the agent must not change."""

    protect: list[str] = Field(min_length=1)
    """Glob patterns relative to the agent's workdir."""
    action: Literal["restore", "alert"] = "restore"
    """restore the protected files, or only raise an alert."""


class AgentSpec(_Model):
    """The desired state of one agent: what runs in its tmux session and how it is supervised."""

    command: NonBlank
    """Command line the user's shell runs in the agent's pane."""
    restart_command: str | None = None
    """Command line used for restarts (profiles may supply one)."""
    workdir: str = "."
    """Working folder; relative paths are relative to the manifest file's folder."""
    env: dict[EnvName, str] = {}
    """Extra environment variables for the command."""
    profile: Profile = "generic"
    """Built-in screen patterns for a known agent CLI."""
    restart_policy: RestartPolicy = "Always"
    """When an exited agent is started again."""
    startup: StartupSpec = Field(default_factory=StartupSpec)
    """When a started agent counts as Running."""
    stale: StaleSpec | None = None
    """What to do when the screen stops changing; unset: never Stale."""
    crash_loop: CrashLoopSpec = Field(default_factory=CrashLoopSpec)
    """Restart limits and backoff."""
    rate_limit: RateLimitSpec | None = None
    """How to recognise and sit out a usage limit."""
    prompts: list[PromptRule] = []
    """Automatic answers to prompts, tried in order."""
    human_patterns: list[Pattern] = []
    """Extra regexes that mean: waiting for a human."""
    ignore: list[Pattern] = []
    """Screen regions (regexes) left out of the stale check."""
    talks_to: list[Name] = []
    """Agents that `orch send --from` this agent may address."""
    guards: list[GuardSpec] = []
    """Paths the agent must not change."""


class Agent(_Model):
    """An agent CLI supervised in its own tmux session."""

    api_version: ApiVersion
    kind: Literal["Agent"]
    metadata: ObjectMeta
    spec: AgentSpec


class ParamSpec(_Model):
    """A playbook parameter, given as `orch run PLAYBOOK --param name=value`."""

    required: bool = False
    """The run cannot start without it."""
    default: str | None = None
    """Value used when the run does not give one."""
    description: str = ""
    """What the parameter is for."""


class FileMatches(_Model):
    """A file containing at least `min` lines that match a regex."""

    path: str
    """File path, relative to the agent's workdir."""
    pattern: Pattern
    """Regex searched for, line by line."""
    min: int = Field(default=1, ge=0)
    """How many matching lines are needed."""


class Condition(_Model):
    """A check on the agent's workdir: exactly one of fileExists, fileMatches or command."""

    _checks: ClassVar[tuple[str, ...]] = ("file_exists", "file_matches", "command")
    file_exists: str | None = None
    """Passes when this path exists."""
    file_matches: FileMatches | None = None
    """Passes when the file has enough lines matching the pattern."""
    command: str | None = None
    """Passes when this shell command exits 0 in the agent's workdir."""
    timeout: Duration = 600.0
    """How long `command` may run before it fails."""

    @model_validator(mode="after")
    def _one_check(self) -> Self:
        _exactly_one(self, self._checks)
        return self


class Gate(Condition):
    """What a step must pass before the run moves on: a Condition, or a human's approval."""

    _checks: ClassVar[tuple[str, ...]] = (*Condition._checks, "approval")
    approval: Literal["human"] | None = None
    """Waits in AwaitingHuman until `orch approve`."""


class Step(_Model):
    """One task of a playbook, given to one agent."""

    name: Name
    """Unique within the playbook."""
    agent: Name
    """The agent that does the step."""
    prompt: str
    """The task sent to the agent; ${param} is replaced by the run's parameter."""
    outputs: list[str] = []
    """Files whose existence means the step is done."""
    gates: list[Gate] = []
    """Checks the step must pass, in order; a failure sends the agent a rework message."""
    max_attempts: int = Field(default=3, ge=1)
    """Attempts before the run is Failed."""
    timeout: Duration | None = None
    """How long one attempt may take."""
    when: Condition | None = None
    """The step runs only when this holds; otherwise it is skipped."""


class PlaybookSpec(_Model):
    """A playbook's parameters and its steps, run in order."""

    params: dict[str, ParamSpec] = {}
    """Parameters a run takes."""
    steps: list[Step] = Field(min_length=1)
    """The steps, run in order."""

    @field_validator("steps")
    @classmethod
    def _unique_step_names(cls, steps: list[Step]) -> list[Step]:
        first: dict[str, int] = {}
        for index, step in enumerate(steps):
            if step.name in first:
                raise ValueError(
                    f"duplicate step name {_shown(step.name)} "
                    f"(steps[{first[step.name]}] and steps[{index}])"
                )
            first[step.name] = index
        return steps


class Playbook(_Model):
    """A multi-step workflow that hands tasks to agents and checks their results."""

    api_version: ApiVersion
    kind: Literal["Playbook"]
    metadata: ObjectMeta
    spec: PlaybookSpec


Manifest = Annotated[Agent | Playbook, Field(discriminator="kind")]
_MANIFEST: TypeAdapter[Agent | Playbook] = TypeAdapter(Manifest)


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of one manifest document (an Agent or a Playbook), for editors."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orch manifest",
        **_MANIFEST.json_schema(by_alias=True),
    }


@dataclass(frozen=True)
class Declared:
    """A validated object and where it was declared."""

    obj: Agent | Playbook
    file: str
    """Absolute path of the manifest file."""
    line: int
    """1-based line where the object's document starts."""

    @property
    def kind(self) -> Literal["Agent", "Playbook"]:
        """The object's kind."""
        return self.obj.kind

    @property
    def name(self) -> str:
        """The object's name."""
        return self.obj.metadata.name


def load_files(paths: Sequence[str | Path]) -> list[Declared]:
    """Load and validate every document of every file; raise ManifestError for the first problem.

    Names must be unique per kind across all files. Each Agent's workdir comes back absolute.
    """
    declared: list[Declared] = []
    first_seen: dict[tuple[str, str], str] = {}
    for path in paths:
        file = str(path)
        for document in _documents(file):
            obj = _validate(document, file)
            key = (obj.kind, obj.metadata.name)
            if key in first_seen:
                raise ManifestError(
                    file,
                    document.line_of(("metadata", "name")),
                    "metadata.name",
                    f"duplicate {obj.kind.lower()} {_shown(obj.metadata.name)} "
                    f"(first declared at {first_seen[key]})",
                )
            first_seen[key] = f"{file}:{document.line}"
            absolute = os.path.abspath(file)
            if isinstance(obj, Agent):
                obj = _with_absolute_workdir(obj, os.path.dirname(absolute))
            declared.append(Declared(obj, absolute, document.line))
    return declared


def _with_absolute_workdir(agent: Agent, folder: str) -> Agent:
    workdir = os.path.normpath(os.path.join(folder, os.path.expanduser(agent.spec.workdir)))
    return agent.model_copy(update={"spec": agent.spec.model_copy(update={"workdir": workdir})})


# --- YAML to plain data, with line numbers -----------------------------------------------------

Loc = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
#: Explicit tags a node may carry: the YAML core schema's, matching the node's kind, or "!".
_ALLOWED_TAGS: dict[type, frozenset[str]] = {
    ScalarEvent: frozenset({"!", *(_CORE + t for t in ("str", "int", "float", "bool", "null"))}),
    SequenceStartEvent: frozenset({"!", _CORE + "seq"}),
    MappingStartEvent: frozenset({"!", _CORE + "map"}),
}
_TIMESTAMP = _CORE + "timestamp"


class _Refused(MarkedYAMLError):
    """Valid YAML that manifests do not allow."""


class _SafeComposer(Composer):
    """ruamel's composer, refusing anchors, aliases, non-core tags and deep nesting as it reads.

    Checking events before nodes exist means an alias bomb or a 10,000-deep list costs nothing.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise _Refused(
                None, None, "anchors and aliases (&, *) are not allowed", event.start_mark
            )
        if event.ctag is not None and str(event.ctag) not in _ALLOWED_TAGS[type(event)]:
            raise _Refused(None, None, f"tag {str(event.ctag)!r} is not allowed", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        return super().compose_node(parent, index)


@dataclass
class _Document:
    """One YAML document as plain data, with the 1-based line of every key and list item."""

    data: dict[str, Any]
    lines: dict[Loc, int]

    @property
    def line(self) -> int:
        """Where the document starts."""
        return self.lines[()]

    def line_of(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest parent that has one."""
        while loc not in self.lines:
            loc = loc[:-1]
        return self.lines[loc]


def _documents(file: str) -> Iterator[_Document]:
    """The non-empty documents of `file`, parsed one at a time so errors come in file order."""
    text = _read_text(file)
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _SafeComposer
    for node in _nodes(file, text, yaml):
        if isinstance(node, ScalarNode) and node.tag == _CORE + "null":
            continue  # an empty document: "---" followed by nothing or comments
        if not isinstance(node, MappingNode):
            raise ManifestError(
                file,
                node.start_mark.line + 1,
                "",
                "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
            )
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        yield _Document(_PlainBuilder(file, yaml.constructor, lines).mapping(node, ()), lines)


def _read_text(file: str) -> str:
    try:
        with open(file, "rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ManifestError(file, None, "", f"cannot read: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ManifestError(file, None, "", f"larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        byte = error.object[error.start]
        raise ManifestError(file, line, "", f"not valid UTF-8 (byte 0x{byte:02x})") from None


def _nodes(file: str, text: str, yaml: YAML) -> Iterator[Node]:
    """The root node of each document, turning ruamel's errors into ManifestErrors."""
    try:
        yield from yaml.compose_all(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        prefix = "" if isinstance(error, _Refused) else "invalid YAML: "
        problem = error.problem or error.context or "cannot parse"
        raise ManifestError(file, mark.line + 1 if mark else None, "", prefix + problem) from None
    except ReaderError as error:  # a control character: the error has a position, not a mark
        line = text.count("\n", 0, error.position) + 1
        raise ManifestError(file, line, "", f"invalid YAML: {str(error).splitlines()[0]}") from None


@dataclass
class _PlainBuilder:
    """Builds dicts, lists and scalars from YAML nodes, recording the line of each key and item."""

    file: str
    constructor: Any
    lines: dict[Loc, int]

    def value(self, node: Node, loc: Loc) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.value(item, (*loc, index)))
            return items
        if node.tag == _TIMESTAMP:
            return node.value  # no field is a date: "2024-01-01" stays the text it was written as
        try:
            return self.constructor.construct_non_recursive_object(node)
        except (ValueError, KeyError):  # e.g. "!!int abc", or an integer with 5,000 digits
            raise self.error(node, loc, f"invalid {str(node.tag)[len(_CORE) :]} value") from None

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.error(key_node, loc, "a mapping key must be a plain string")
            key = str(key_node.value)
            if key in result:
                line = self.lines[(*loc, key)]
                raise self.error(key_node, (*loc, key), f"duplicate key (first at line {line})")
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*loc, key))
        return result

    def error(self, node: Node, loc: Loc, message: str) -> ManifestError:
        return ManifestError(self.file, node.start_mark.line + 1, _dotted(loc), message)


# --- validation errors to file:line and field --------------------------------------------------


def _validate(document: _Document, file: str) -> Agent | Playbook:
    try:
        return _MANIFEST.validate_python(document.data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            loc = _loc(detail)
            problems.append((document.line_of(loc), _dotted(loc), _message(detail)))
        line, dotted, message = min(problems, key=lambda problem: problem[0])
        raise ManifestError(file, line, dotted, message) from None


def _loc(detail: ErrorDetails) -> Loc:
    """The path in the document that an error is about."""
    if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return ("kind",)
    loc = detail["loc"][1:]  # every other error's path starts with the kind pydantic chose
    return loc[:-1] if loc and loc[-1] == "[key]" else loc


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("missing", "union_tag_not_found"):
        return "missing required field"
    if kind == "union_tag_invalid":
        return f"unknown kind {_shown(ctx['tag'])}: use one of {ctx['expected_tags']}"
    if kind == "value_error":
        return str(ctx["error"])
    message = detail["msg"][0].lower() + detail["msg"][1:]
    value = detail["input"]
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message}, got {_shown(value)}"
    return message


def _dotted(loc: Loc) -> str:
    """`("spec", "prompts", 0, "match")` as `spec.prompts[0].match`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
