"""Token usage and spend: each CLI's own record of a model call, read line by line, and budgets.

Pure. The agent CLIs already record what every model call cost them — Claude Code's session
JSONL, Codex's rollout files, Gemini CLI's session files, aider's chat history — so orch reads
those records instead of guessing from the screen. A parser turns one line of such a record into
at most one `UsageEntry`, with a key that names the model call, so a line written twice (Claude
writes one line per content block of the same message) or read twice counts once.

Counts are normalised: `input_tokens` is input the model read fresh, `cache_read_tokens` the part
of the input served from a prompt cache (OpenAI and Gemini count it inside their input figure;
Anthropic outside), `output_tokens` everything generated (reasoning included). `cost_usd` is what
the CLI itself says a call cost, else what the price table computes, else None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Profiles whose CLI keeps a usage record orch can read.
USAGE_PROFILES = ("claude", "codex", "gemini", "aider")

#: USD per million tokens (input, output, cache read), by model-name prefix; the longest prefix
#: that a model's name starts with applies. List prices of the providers' public price pages.
PRICES: Mapping[str, tuple[float, float, float]] = {
    "claude-opus": (15.0, 75.0, 1.5),
    "claude-sonnet": (3.0, 15.0, 0.3),
    "claude-3-5-haiku": (0.8, 4.0, 0.08),
    "claude-haiku": (1.0, 5.0, 0.1),
    "gpt-5-mini": (0.25, 2.0, 0.025),
    "gpt-5-nano": (0.05, 0.4, 0.005),
    "gpt-5": (1.25, 10.0, 0.125),
    "gpt-4.1-mini": (0.4, 1.6, 0.1),
    "gpt-4.1": (2.0, 8.0, 0.5),
    "gpt-4o-mini": (0.15, 0.6, 0.075),
    "gpt-4o": (2.5, 10.0, 1.25),
    "o3": (2.0, 8.0, 0.5),
    "o4-mini": (1.1, 4.4, 0.275),
    "gemini-2.5-pro": (1.25, 10.0, 0.31),
    "gemini-2.5-flash-lite": (0.1, 0.4, 0.025),
    "gemini-2.5-flash": (0.3, 2.5, 0.075),
}

#: A record line longer than this is not a usage line worth parsing (pasted files, tool output).
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class UsageEntry:
    """One model call as the CLI recorded it."""

    key: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: float | None

    @property
    def tokens(self) -> int:
        """Every token of the call, for token budgets."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class UsageTotals:
    """Usage summed over entries: what `status.usage` and `orch usage` show."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    @property
    def tokens(self) -> int:
        """Every token counted."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens

    def to_json(self) -> dict[str, Any]:
        """The contract's `status.usage` fields (camelCase)."""
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "costUSD": round(self.cost_usd, 6),
            "calls": self.calls,
        }


def total(entries: Iterable[UsageEntry]) -> UsageTotals:
    """The sum of `entries` (a call of unknown cost adds nothing to the cost)."""
    result = UsageTotals()
    for e in entries:
        result = UsageTotals(
            result.input_tokens + e.input_tokens,
            result.output_tokens + e.output_tokens,
            result.cache_read_tokens + e.cache_read_tokens,
            result.cost_usd + (e.cost_usd or 0.0),
            result.calls + 1,
        )
    return result


def price(
    model: str, input_tokens: int, output_tokens: int, cache_read_tokens: int
) -> float | None:
    """The list price of a call in USD, or None for a model the table does not know."""
    prefix = max((p for p in PRICES if model.startswith(p)), key=len, default=None)
    if prefix is None:
        return None
    per_input, per_output, per_cache = PRICES[prefix]
    return (
        input_tokens * per_input + output_tokens * per_output + cache_read_tokens * per_cache
    ) / 1_000_000


def parse_line(profile: str, line: str, key: str) -> UsageEntry | None:
    """The model call one line of `profile`'s record describes, if any; never raises.

    `key` names the line where the record itself has no id for the call (aider's history).
    """
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        if profile == "aider":
            return _aider(line, key)
        data = json.loads(line)
        if not isinstance(data, dict):
            return None
        if profile == "claude":
            return _claude(data)
        if profile == "codex":
            return _codex(data)
        if profile == "gemini":
            return _gemini(data)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        return None
    return None


def _entry(key: str, model: str, fresh: int, output: int, cached: int) -> UsageEntry:
    return UsageEntry(key, model, fresh, output, cached, price(model, fresh, output, cached))


def _count(value: object) -> int:
    """A token count from untrusted JSON: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _claude(data: dict[str, Any]) -> UsageEntry | None:
    """An `assistant` line with `message.usage`; errors are synthetic zero-usage lines."""
    message = data.get("message")
    if data.get("type") != "assistant" or not isinstance(message, dict):
        return None
    usage = message.get("usage")
    model = str(message.get("model") or "")
    if not isinstance(usage, dict) or model == "<synthetic>":
        return None
    fresh = _count(usage.get("input_tokens")) + _count(usage.get("cache_creation_input_tokens"))
    return _entry(
        f"claude:{message.get('id') or data.get('requestId') or data.get('uuid')}",
        model,
        fresh,
        _count(usage.get("output_tokens")),
        _count(usage.get("cache_read_input_tokens")),
    )


def _codex(data: dict[str, Any]) -> UsageEntry | None:
    """A `token_usage_record` (one per model response); OpenAI counts cached inside input."""
    payload = data.get("payload")
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type") or data.get("type")
    if kind != "token_usage_record" and data.get("type") != "token_usage_record":
        return None
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = _count(usage.get("cached_input_tokens"))
    if isinstance(details, dict):
        cached = cached or _count(details.get("cached_tokens"))
    total_input = _count(usage.get("input_tokens"))
    return _entry(
        f"codex:{payload.get('response_id')}",
        str(payload.get("model") or usage.get("model") or ""),
        max(total_input - cached, 0),
        _count(usage.get("output_tokens")),
        min(cached, total_input),
    )


def _gemini(data: dict[str, Any]) -> UsageEntry | None:
    """A model reply record (`type: gemini`) with its `tokens`; cached is inside input."""
    tokens = data.get("tokens")
    if data.get("type") != "gemini" or not isinstance(tokens, dict):
        return None
    total_input = _count(tokens.get("input"))
    cached = min(_count(tokens.get("cached")), total_input)
    output = _count(tokens.get("output")) + _count(tokens.get("thoughts"))
    return _entry(
        f"gemini:{data.get('id')}",
        str(data.get("model") or ""),
        total_input - cached,
        output,
        cached,
    )


_AIDER = re.compile(
    r"Tokens: (?P<sent>[\d.]+)(?P<sk>[km]?) sent,"
    r"(?: (?P<write>[\d.]+)(?P<wk>[km]?) cache write,)?"
    r"(?: (?P<hit>[\d.]+)(?P<hk>[km]?) cache hit,)?"
    r" (?P<recv>[\d.]+)(?P<rk>[km]?) received\."
    r"(?: Cost: \$(?P<cost>[\d.]+) message)?"
)
_SCALE: Mapping[str, Literal[1, 1000, 1000000]] = {"": 1, "k": 1000, "m": 1000000}


def _aider(line: str, key: str) -> UsageEntry | None:
    """aider's `Tokens: 2.6k sent, 5 received. Cost: $0.0065 message, …` (rounded by aider)."""
    match = _AIDER.search(line[:500])
    if match is None:
        return None

    def number(value: str | None, unit: str | None) -> int:
        return int(float(value) * _SCALE[unit or ""]) if value else 0

    sent = number(match["sent"], match["sk"])
    hit = number(match["hit"], match["hk"])
    cost = float(match["cost"]) if match["cost"] else None
    return UsageEntry(
        f"aider:{key}", "", max(sent - hit, 0), number(match["recv"], match["rk"]), hit, cost
    )


# -- budgets ----------------------------------------------------------------------------------


def budget_key(agent: str) -> str:
    """The cooldown entry a spent budget of `agent` is sat out under (beside account cooldowns)."""
    return f"budget:agent/{agent}"


def budget_stop_key(agent: str) -> str:
    """The entry (in the same table, an epoch deadline) under which a budget with `action: stop`
    keeps `agent` Stopped until its window frees up."""
    return f"budget-stop:agent/{agent}"


BudgetState = Literal["ok", "warning", "exhausted"]
#: Share of a budget spent at which a warning is raised.
WARN_AT = 0.8


@dataclass(frozen=True)
class BudgetVerdict:
    """Where an agent stands against its budget within the window, and when the window frees."""

    state: BudgetState
    spent: str
    """What was spent, in the budget's own terms ("1.2M of 5M tokens", "$21.30 of $25")."""
    frees_at: float | None
    """When enough of the window's usage has aged out to be under budget again."""


def budget_verdict(
    tokens: int | None,
    usd: float | None,
    window: float,
    usage: Iterable[tuple[float, UsageEntry]],
    now: float,
) -> BudgetVerdict:
    """Judge (time, entry) pairs within `window` before `now` against the token and USD limits."""
    # by time only: calls read in one pass share a time, and entries do not order
    recent = sorted(((t, e) for t, e in usage if now - window < t <= now), key=lambda p: p[0])
    spent_tokens = sum(e.tokens for _, e in recent)
    spent_usd = sum(e.cost_usd or 0.0 for _, e in recent)
    shares = []
    texts = []
    if tokens:
        shares.append(spent_tokens / tokens)
        texts.append(f"{spent_tokens:,} of {tokens:,} tokens")
    if usd:
        shares.append(spent_usd / usd)
        texts.append(f"${spent_usd:.2f} of ${usd:.2f}")
    share = max(shares, default=0.0)
    spent = ", ".join(texts)
    if share < WARN_AT:
        return BudgetVerdict("ok", spent, None)
    if share < 1.0:
        return BudgetVerdict("warning", spent, None)
    return BudgetVerdict("exhausted", spent, _frees_at(tokens, usd, window, recent))


def _frees_at(
    tokens: int | None, usd: float | None, window: float, recent: list[tuple[float, UsageEntry]]
) -> float | None:
    """When the oldest entries have left the window far enough for the rest to be under budget."""
    spent_tokens = sum(e.tokens for _, e in recent)
    spent_usd = sum(e.cost_usd or 0.0 for _, e in recent)
    for when, entry in recent:
        spent_tokens -= entry.tokens
        spent_usd -= entry.cost_usd or 0.0
        if (not tokens or spent_tokens < tokens) and (not usd or spent_usd < usd):
            return when + window
    return None
