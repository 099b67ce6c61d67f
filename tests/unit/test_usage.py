"""Usage read from the CLIs' own records (real fixtures), prices, and budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.usage import (
    UsageEntry,
    budget_verdict,
    parse_line,
    price,
    total,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "usage"


def entries(profile: str, path: Path) -> list[UsageEntry]:
    seen: dict[str, UsageEntry] = {}
    for number, line in enumerate(path.read_text().splitlines()):
        entry = parse_line(profile, line, f"{path.name}:{number}")
        if entry is not None:
            seen.setdefault(entry.key, entry)
    return list(seen.values())


def handed_out(path: Path) -> list[dict[str, Any]]:
    """What the model server reported for each completed call (the hang never completed)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["usage"] for r in rows if r.get("status") == 200 and r.get("mode") != "hang"]


def test_claude_transcript_counts_each_message_once_as_the_server_handed_it_out() -> None:
    got = entries("claude", FIXTURES / "claude" / "session-transcript.jsonl")
    server = handed_out(FIXTURES / "claude" / "modelserver-log.jsonl")

    assert len(got) == len(server)  # a message written twice (one line per block) counts once
    assert total(got).output_tokens == sum(u["output_tokens"] for u in server)
    assert total(got).cache_read_tokens == sum(u["cache_read_input_tokens"] for u in server)
    assert total(got).input_tokens == sum(
        u["input_tokens"] + u["cache_creation_input_tokens"] for u in server
    )
    assert all(e.cost_usd is not None and e.cost_usd > 0 for e in got)  # claude-opus-* priced


def test_codex_rollout_counts_responses_with_cached_input_split_out() -> None:
    got = entries("codex", FIXTURES / "codex" / "rollout.jsonl")
    server = [
        u
        for u in handed_out(FIXTURES / "codex" / "modelserver-log.jsonl")
        if u["input_tokens"] > 10000  # the rest is Codex's title thread, in another rollout
    ]

    assert len(got) == len(server)
    cached = sum(u["input_tokens_details"]["cached_tokens"] for u in server)
    assert total(got).cache_read_tokens == cached
    assert total(got).input_tokens == sum(u["input_tokens"] for u in server) - cached
    assert total(got).output_tokens == sum(u["output_tokens"] for u in server)


def test_gemini_session_reads_model_replies_with_thoughts_as_output() -> None:
    got = entries("gemini", FIXTURES / "gemini" / "session-excerpt.jsonl")
    lines = (FIXTURES / "gemini" / "session-excerpt.jsonl").read_text().splitlines()
    replies = {r["id"]: r for r in map(json.loads, lines) if r.get("type") == "gemini"}

    assert len(got) == len(replies)  # a reply rewritten with its tool calls counts once
    assert total(got).output_tokens == sum(
        r["tokens"]["output"] + r["tokens"]["thoughts"] for r in replies.values()
    )


def test_aider_history_lines_carry_their_own_cost() -> None:
    got = entries("aider", FIXTURES / "aider" / "chat.history.head.md")

    assert got[0] == UsageEntry(got[0].key, "", 2600, 5, 0, 0.0065)
    assert len(got) == (FIXTURES / "aider" / "chat.history.head.md").read_text().count("Tokens:")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Tokens: 12k sent, 3.1k cache hit, 250 received. Cost: $0.01 message, $0.05 session.",
         (8900, 250, 3100, 0.01)),
        ("Tokens: 1.2m sent, 2k received.", (1200000, 2000, 0, None)),
    ],
)  # fmt: skip
def test_aider_cache_hits_and_units(line: str, expected: tuple[int, int, int, float]) -> None:
    entry = parse_line("aider", line, "k")
    assert entry is not None
    assert (entry.input_tokens, entry.output_tokens, entry.cache_read_tokens, entry.cost_usd) == (
        expected
    )


def test_price_uses_the_longest_known_prefix_and_none_for_unknown_models() -> None:
    assert price("gpt-5-mini-2026", 1_000_000, 0, 0) == pytest.approx(0.25)
    assert price("gpt-5", 0, 1_000_000, 0) == pytest.approx(10.0)
    assert price("some-local-model", 1000, 1000, 0) is None


@given(st.sampled_from(["claude", "codex", "gemini", "aider", "generic"]), st.text(max_size=300))
def test_parse_line_never_raises(profile: str, line: str) -> None:
    parse_line(profile, line, "k")


def test_hostile_counts_are_not_negative_or_bool() -> None:
    line = json.dumps(
        {"type": "assistant", "message": {"id": "m", "model": "x", "usage": {
            "input_tokens": -5, "output_tokens": True, "cache_read_input_tokens": "9"}}}
    )  # fmt: skip
    entry = parse_line("claude", line, "k")
    assert entry is not None and entry.tokens == 0


def call(tokens: int, cost: float = 0.0) -> UsageEntry:
    return UsageEntry(f"k{tokens}", "m", tokens, 0, 0, cost)


def test_budget_ok_warning_exhausted_and_when_the_window_frees() -> None:
    usage = [(100.0, call(500)), (200.0, call(300)), (300.0, call(300))]

    assert budget_verdict(10_000, None, 1000, usage, now=400).state == "ok"
    assert budget_verdict(1_300, None, 1000, usage, now=400).state == "warning"
    verdict = budget_verdict(1_000, None, 1000, usage, now=400)
    assert verdict.state == "exhausted"
    assert verdict.spent == "1,100 of 1,000 tokens"
    assert verdict.frees_at == 1100.0  # once the 500 of t=100 leaves, 600 < 1,000
    assert budget_verdict(1_000, None, 1000, usage, now=1150).state == "ok"


def test_calls_read_in_one_pass_share_a_time_and_are_judged_all_the_same() -> None:
    usage = [(100.0, call(600)), (100.0, call(500))]
    verdict = budget_verdict(1_000, None, 1000, usage, now=400)
    assert (verdict.state, verdict.frees_at) == ("exhausted", 1100.0)


def test_budget_in_dollars() -> None:
    usage = [(10.0, call(1, 20.0)), (20.0, call(2, 6.0))]
    verdict = budget_verdict(None, 25.0, 3600, usage, now=30)
    assert (verdict.state, verdict.spent, verdict.frees_at) == (
        "exhausted",
        "$26.00 of $25.00",
        3610,
    )
