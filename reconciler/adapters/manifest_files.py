"""Reading manifest files: the YAML loader that turns untrusted text into the api's models.

The loader is the one place where untrusted text becomes objects, so it refuses what YAML can do
but manifests never need (anchors and aliases, object-building tags, huge or deeply nested files)
and turns every problem, from an unreadable file to a bad regex, into one `ManifestError` naming
the file, the line and the dotted field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ValidationError,
)
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from reconciler.api.errors import ManifestError
from reconciler.api.manifest import (
    MANIFEST,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Agent,
    EnvFrom,
    Notifier,
    Playbook,
    SecretSource,
    shown,
)


@dataclass(frozen=True)
class Declared:
    """A validated object and where it was declared."""

    obj: Agent | Playbook | Notifier
    file: str
    """Absolute path of the manifest file."""
    line: int
    """1-based line where the object's document starts."""

    @property
    def kind(self) -> Literal["Agent", "Playbook", "Notifier"]:
        """The object's kind."""
        return self.obj.kind

    @property
    def name(self) -> str:
        """The object's name."""
        return self.obj.metadata.name


#: File names `apply -f DIR` reads.
MANIFEST_SUFFIXES = (".yaml", ".yml")


def manifest_paths(given: Sequence[str], recursive: bool) -> list[str]:
    """Files named by `-f`: a file as given; a folder's `*.yaml`/`*.yml` (with `recursive`, of
    its subfolders too), in name order. ManifestError for a folder without any."""
    paths: list[str] = []
    for entry in given:
        folder = Path(entry)
        if not folder.is_dir():
            paths.append(entry)
            continue
        pattern = "**/*" if recursive else "*"
        found = sorted(
            str(p) for p in folder.glob(pattern) if p.suffix in MANIFEST_SUFFIXES and p.is_file()
        )
        if not found:
            raise ManifestError(entry, None, "", "no *.yaml or *.yml files in this folder")
        paths.extend(found)
    return paths


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
                    f"duplicate {obj.kind.lower()} {shown(obj.metadata.name)} "
                    f"(first declared at {first_seen[key]})",
                )
            first_seen[key] = f"{file}:{document.line}"
            absolute = os.path.abspath(file)
            if isinstance(obj, Agent):
                obj = _with_absolute_workdir(obj, os.path.dirname(absolute))
            declared.append(Declared(obj, absolute, document.line))
    return declared


def _with_absolute_workdir(agent: Agent, folder: str) -> Agent:
    """Relative paths made absolute against the manifest's folder (the env's secret files too); a
    worktree's workdir stays relative to the worktree, which only apply places (under the state
    dir)."""
    spec = agent.spec
    env = {
        name: value
        if isinstance(value, str)
        else EnvFrom(value_from=SecretSource(file=_absolute(folder, value.value_from.file)))
        for name, value in spec.env.items()
    }
    spec = spec.model_copy(update={"env": env})
    if spec.workspace is None:
        workdir = _absolute(folder, spec.workdir)
        return agent.model_copy(update={"spec": spec.model_copy(update={"workdir": workdir})})
    tree = spec.workspace.worktree
    tree = tree.model_copy(update={"repo": _absolute(folder, tree.repo)})
    workspace = spec.workspace.model_copy(update={"worktree": tree})
    return agent.model_copy(update={"spec": spec.model_copy(update={"workspace": workspace})})


def _absolute(folder: str, path: str) -> str:
    return os.path.normpath(os.path.join(folder, os.path.expanduser(path)))


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


def _validate(document: _Document, file: str) -> Agent | Playbook | Notifier:
    try:
        return MANIFEST.validate_python(document.data)
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
        return f"unknown kind {shown(ctx['tag'])}: use one of {ctx['expected_tags']}"
    if kind == "value_error":
        return str(ctx["error"])
    message = detail["msg"][0].lower() + detail["msg"][1:]
    value = detail["input"]
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message}, got {shown(value)}"
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
