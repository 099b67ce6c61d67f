"""The (u) scenario's reading of the model server's log, against orch's own parser of the CLI's
record of the same calls (the captured fixtures). Run: python -m pytest e2e/tests -q"""

from pathlib import Path

from e2e.usage_check import UNRECORDED, handed_out
from reconciler.core.usage import parse_line, total

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "usage"


def orch_counts(profile: str, record: Path) -> dict[str, int]:
    seen = {}
    for number, line in enumerate(record.read_text().splitlines()):
        entry = parse_line(profile, line, str(number))
        if entry is not None:
            seen.setdefault(entry.key, entry)
    t = total(seen.values())
    return {
        "calls": t.calls,
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cacheReadTokens": t.cache_read_tokens,
    }


def test_claude_server_log_maps_onto_what_orch_reads_from_the_transcript() -> None:
    server, left_out = handed_out(FIXTURES / "claude" / "modelserver-log.jsonl")
    assert left_out == 0
    assert server == orch_counts("claude", FIXTURES / "claude" / "session-transcript.jsonl")


def test_codex_title_call_is_the_only_call_left_out() -> None:
    log = FIXTURES / "codex" / "modelserver-log.jsonl"
    server, left_out = handed_out(log, UNRECORDED["codex"])
    assert left_out >= 1
    assert server == orch_counts("codex", FIXTURES / "codex" / "rollout.jsonl")
