"""Scenario (u): what orch counted for an agent matches what the model server handed out.

The model server logs the usage it put in each reply (`usage` in its request log). Mapped onto
orch's fields the way each API counts (OpenAI and Gemini count cached input inside input;
Anthropic's cache writes are input orch counts as fresh), their sum over the completed calls must
equal `orch usage -o json` for the agent: calls, input, output and cache-read tokens.
aider is the exception: its only record is the line it prints per reply ("Tokens: 2.6k sent, 20
received"), counted by its own tokenizer, rounded, without cache reads and without calls it did
not finish (a refused or interrupted turn). No reader of aider's records can know the server's
figures, so for aider orch must equal that record exactly, and the verdict shows the server's.
Codex keeps no record of its task-title call (no rollout holds its usage), so no reader of its
records can count it: that call is left out, and the verdict says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from e2e.orchctl import Orch, wait_for

#: Fields compared, as `orch usage -o json` names them.
FIELDS = ("calls", "inputTokens", "outputTokens", "cacheReadTokens")
#: How long orch may take to read the last calls (it reads every 5 s).
READ_SECONDS = 40.0
#: aider's line per finished reply in its chat history, and its number suffixes.
AIDER_TOKENS = re.compile(
    r"^> Tokens: ([\d.]+)([kM]?) sent, ([\d.]+)([kM]?) received", re.MULTILINE
)
_SUFFIX = {"": 1, "k": 1_000, "M": 1_000_000}
#: Calls a CLI makes but records nowhere, by the newest user text (per profile).
UNRECORDED = {"codex": re.compile(r"Generate a concise, single-line task title")}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapped(api: str, usage: dict[str, Any]) -> tuple[int, int, int] | None:
    """(input, output, cache read) of one reply as orch counts them; None for other calls."""
    if api == "anthropic":
        fresh = _count(usage.get("input_tokens")) + _count(usage.get("cache_creation_input_tokens"))
        return (
            fresh,
            _count(usage.get("output_tokens")),
            _count(usage.get("cache_read_input_tokens")),
        )
    if api == "openai.responses":
        cached = _count((usage.get("input_tokens_details") or {}).get("cached_tokens"))
        fresh = _count(usage.get("input_tokens")) - cached
        return fresh, _count(usage.get("output_tokens")), cached
    if api == "openai.chat":
        cached = _count((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
        fresh = _count(usage.get("prompt_tokens")) - cached
        return fresh, _count(usage.get("completion_tokens")), cached
    if api == "gemini":
        cached = _count(usage.get("cachedContentTokenCount"))
        output = _count(usage.get("candidatesTokenCount")) + _count(usage.get("thoughtsTokenCount"))
        return _count(usage.get("promptTokenCount")) - cached, output, cached
    return None


def handed_out(log: Path, unrecorded: re.Pattern[str] | None = None) -> tuple[dict[str, int], int]:
    """The usage the server replied with, summed over completed calls, in orch's fields; and how
    many calls were left out as `unrecorded` (matched by their newest user text)."""
    sums = dict.fromkeys(FIELDS, 0)
    left_out = 0
    if not log.exists():
        return sums, left_out
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        usage = record.get("usage")
        if (
            record.get("status") != 200
            or record.get("mode") == "hang"
            or not isinstance(usage, dict)
        ):
            continue
        mapped = _mapped(str(record.get("api")), usage)
        if mapped is None:
            continue
        texts = record.get("user_texts") or [""]
        if unrecorded is not None and unrecorded.search(str(texts[-1])):
            left_out += 1
            continue
        sums["calls"] += 1
        for name, value in zip(FIELDS[1:], mapped, strict=True):
            sums[name] += value
    return sums, left_out


def counted(orch: Orch, agent: str) -> dict[str, int]:
    """`orch usage -o json` for `agent` (zeros when nothing is recorded)."""
    done = orch.run("usage", "-o", "json")
    items = json.loads(done.stdout or "{}").get("items", []) if done.returncode == 0 else []
    mine: dict[str, Any] = next((i for i in items if i.get("agent") == agent), {})
    return {name: _count(mine.get(name)) for name in FIELDS}


def aider_recorded(history: Path) -> dict[str, int]:
    """What aider's own record (`.aider.chat.history.md`) says it used, in orch's fields."""
    sums = dict.fromkeys(FIELDS, 0)
    text = history.read_text(errors="replace") if history.exists() else ""
    for sent, sent_unit, received, received_unit in AIDER_TOKENS.findall(text):
        sums["calls"] += 1
        sums["inputTokens"] += round(float(sent) * _SUFFIX[sent_unit])
        sums["outputTokens"] += round(float(received) * _SUFFIX[received_unit])
    return sums


def usage_verdict(
    orch: Orch, log: Path, agent: str, profile: str, workdir: Path
) -> tuple[bool, str]:
    """(True, note) when orch's count for `agent` equals the server's (for aider: aider's own
    record, see the module's docstring); else (False, what differs)."""
    seen: dict[str, dict[str, int]] = {}
    left_out = 0

    def agree() -> bool:
        nonlocal left_out
        seen["server"], left_out = handed_out(log, UNRECORDED.get(profile))
        seen["want"] = (
            aider_recorded(workdir / ".aider.chat.history.md")
            if profile == "aider"
            else seen["server"]
        )
        seen["orch"] = counted(orch, agent)
        return seen["want"]["calls"] > 0 and seen["want"] == seen["orch"]

    agreed = wait_for(agree, READ_SECONDS, 2.0)
    server, want, ours = seen["server"], seen["want"], seen["orch"]
    note = f" ({left_out} call(s) the CLI records nowhere left out)" if left_out else ""
    if profile == "aider":
        note = (
            " (aider's own record; the server handed out "
            + ", ".join(f"{f} {server[f]}" for f in FIELDS)
            + ")"
        )
    if agreed:
        return True, "equal: " + ", ".join(f"{f} {want[f]}" for f in FIELDS) + note
    if want["calls"] == 0:
        return False, "no usage to compare (no completed call recorded)"
    differing = [f"{f} orch {ours[f]} vs {want[f]}" for f in FIELDS if ours[f] != want[f]]
    return False, "orch usage differs: " + ", ".join(differing) + note
