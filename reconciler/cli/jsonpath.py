"""kubectl's JSONPath template for `-o jsonpath='{...}'`, evaluated with jsonpath-ng.

A template is literal text with `{expression}` parts: `{.items[*].metadata.name}`,
`{.status.state}`, `{"\\n"}` for a quoted literal, and `{range .items[*]}...{end}` to repeat a
part for every match. Several matches of one expression are joined by spaces, as kubectl does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from reconciler.api.errors import InvalidInput

_PART = re.compile(r"\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}")
#: Templates longer than this are refused: they are typed by people.
MAX_TEMPLATE = 4096


def render(template: str, document: Any) -> str:
    """The template filled in from `document`; InvalidInput names a bad expression."""
    if len(template) > MAX_TEMPLATE:
        raise InvalidInput(f"jsonpath: template longer than {MAX_TEMPLATE} characters")
    tokens = _tokens(template)
    out, rest = _render(tokens, 0, document)
    if rest != len(tokens):
        raise InvalidInput("jsonpath: {end} without {range}")
    return out


def _tokens(template: str) -> list[tuple[str, str]]:
    """("text", literal) and ("expr", expression) pieces in order."""
    tokens: list[tuple[str, str]] = []
    position = 0
    for found in _PART.finditer(template):
        if found.start() > position:
            tokens.append(("text", template[position : found.start()]))
        tokens.append(("expr", found.group(1).strip()))
        position = found.end()
    if position < len(template):
        tokens.append(("text", template[position:]))
    return tokens


def _render(tokens: list[tuple[str, str]], start: int, document: Any) -> tuple[str, int]:
    """Render tokens from `start` until an unmatched {end}; return the text and where it stopped."""
    out: list[str] = []
    index = start
    while index < len(tokens):
        kind, value = tokens[index]
        if kind == "text":
            out.append(value)
        elif value == "end":
            return "".join(out), index
        elif value.startswith("range "):
            items = _values(value[len("range ") :], document)
            body_end = index + 1
            for item in items or [None]:
                text, body_end = _render(tokens, index + 1, item)
                if items:
                    out.append(text)
            if body_end >= len(tokens):
                raise InvalidInput("jsonpath: {range} without {end}")
            index = body_end
        elif value.startswith('"'):
            out.append(_literal(value))
        else:
            out.append(" ".join(_text(v) for v in _values(value, document)))
        index += 1
    return "".join(out), index


def _literal(value: str) -> str:
    try:
        text = json.loads(value, strict=False)
    except json.JSONDecodeError:
        raise InvalidInput(f"jsonpath: bad literal {{{value}}}") from None
    return str(text)


def _values(expression: str, document: Any) -> list[Any]:
    path = expression if expression.startswith("$") else "$" + expression
    if path == "$.":
        path = "$"
    try:
        compiled = jsonpath_parse(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as err:  # noqa: BLE001
        raise InvalidInput(f"jsonpath: cannot parse {{{expression}}}: {err}") from None
    return [match.value for match in compiled.find(document)]


def _text(value: Any) -> str:
    """A value as kubectl prints it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
