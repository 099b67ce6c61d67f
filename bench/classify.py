"""Figure 6: what classifying one screen costs — `reconciler.core.screen.classify`, in µs per call.

In-process, no tmux. The screen is built here: what an agent CLI in a 200 x 50 pane prints over
a long session — prose, tool calls, diffs, test runs, spinner and timer lines — as 2,000 lines of
history plus the 50 visible rows, lines of varied width up to 200 columns (capture-pane trims
trailing blanks), the agent's idle input prompt at the bottom. One screen per profile style:
`generic` (plain CLI output: shell commands, logs with clock times, pytest) and `claude` (Claude
Code's ● / ⎿ tool blocks, ✻ spinner lines, its input box). Each is classified CALLS times with
the profile of the same name; the figure is the median and p95 of the per-call wall time.

For information, the same for the visible 50 rows alone: the controller's capture (capture-pane
without -S) passes only those to classify today.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import datetime

from bench.report import Budget, Figure
from reconciler.api.manifest import AgentSpec
from reconciler.core.screen import classify

HISTORY = 2000
ROWS = 50
COLUMNS = 200
CALLS = 300

_FILES = (
    "src/server.ts",
    "reconciler/planner.py",
    "tests/unit/test_store.py",
    "docs/lifecycle.md",
    "web/components/AgentTable.tsx",
    "Makefile",
)
_PROSE = (
    "the controller reads every agent's pane once per pass and compares the digest of its "
    "screen with the last one so that a silent agent can be told from a busy one while the "
    "queue of messages waits for the paste to settle before Enter is pressed and the delivery "
    "is confirmed once the screen moved on as the manifest says"
)
_WORDS = tuple(_PROSE.split())
_CODE = (
    "def observe(self) -> dict[str, PaneObservation]:",
    'result = self._run("list-panes", "-a", "-F", PANE_FORMAT)',
    "for line in result.out.decode(errors='replace').splitlines():",
    "panes.setdefault(pane.session, pane)",
    "return {name: cached.text for name, cached in self._screens.items()}",
    'app.get("/healthz", (_req, res) => res.json({ status: "ok" }));',
    "const [agents, setAgents] = useState<Agent[]>([]);",
    "    assert store.agent_record(name).state is AgentState.RUNNING",
)


def run(calls: int = CALLS) -> list[Figure]:
    """Time `classify` on each style's screen, with and without its history."""
    figures = []
    for profile in ("generic", "claude"):
        spec = AgentSpec.model_validate({"command": "agent", "profile": profile})
        screen = agent_screen(profile, random.Random(f"bench-{profile}"))
        visible = "\n".join(screen.split("\n")[-ROWS:])
        for label, text in ((f"{HISTORY:,} lines history", screen), ("visible rows only", visible)):
            figures.append(
                Figure(
                    f"classify(), {profile}, {COLUMNS}x{ROWS} + {label}",
                    "µs",
                    _time_classify(text, spec, calls),
                    Budget(None),
                    note=f"{text.count(chr(10)) + 1} lines, {len(text.encode()):,} bytes",
                )
            )
    return figures


def agent_screen(style: str, rng: random.Random) -> str:
    """HISTORY lines of scrollback and the ROWS visible rows of an agent CLI of `style`."""
    body = _claude_lines(rng) if style == "claude" else _generic_lines(rng)
    prompt = _claude_prompt() if style == "claude" else ["", "› "]
    lines = [next(body)[:COLUMNS] for _ in range(HISTORY + ROWS - len(prompt))]
    return "\n".join([*lines, *prompt])


def _prose(rng: random.Random, indent: str = "") -> str:
    width = rng.randint(30, COLUMNS - len(indent) - 2)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < width:
        words.append(rng.choice(_WORDS))
    return indent + " ".join(words)[:width]


def _diff(rng: random.Random, indent: str) -> Iterator[str]:
    start = rng.randint(1, 400)
    for offset in range(rng.randint(3, 12)):
        mark = rng.choice("  +-")
        yield f"{indent}{start + offset:>5} {mark}    {rng.choice(_CODE)}"


def _claude_lines(rng: random.Random) -> Iterator[str]:
    """Claude Code's transcript: ● replies and tool calls, ⎿ results, diffs, spinners."""
    while True:
        path = rng.choice(_FILES)
        yield f"● {_prose(rng)}"
        yield ""
        yield f"● Update({path})"
        added, removed = rng.randint(1, 40), rng.randint(0, 9)
        yield f"  ⎿  Updated {path} with {added} additions and {removed} removals"
        yield from _diff(rng, "      ")
        yield ""
        yield "● Bash(.venv/bin/python -m pytest -q tests/unit)"
        for _ in range(rng.randint(2, 6)):
            dots = "." * rng.randint(20, 80)
            yield f"  ⎿  {dots} [{rng.randint(1, 100):>3}%]"
        yield f"     {rng.randint(10, 400)} passed in {rng.uniform(0.5, 30):.2f}s"
        yield ""
        for _ in range(rng.randint(1, 4)):
            yield _prose(rng, "  ")
        seconds = rng.randint(1, 400)
        tokens = rng.uniform(0.1, 30)
        yield f"✻ Thinking… ({seconds}s · ↓ {tokens:.1f}k tokens · esc to interrupt)"
        yield ""


def _generic_lines(rng: random.Random) -> Iterator[str]:
    """A plain CLI agent: shell commands, timestamped logs, pytest output, diffs, a timer."""
    while True:
        path = rng.choice(_FILES)
        clock = f"{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:{rng.randint(0, 59):02}"
        yield f"$ git diff -- {path}"
        yield f"diff --git a/{path} b/{path}"
        yield from _diff(rng, "")
        for _ in range(rng.randint(1, 5)):
            yield f"2025-06-01 {clock} INFO reconciler.controller: {_prose(rng)}"
        yield "$ pytest -q tests/unit"
        for _ in range(rng.randint(2, 6)):
            yield f"{'.' * rng.randint(20, 80)} [{rng.randint(1, 100):>3}%]"
        yield f"{rng.randint(10, 400)} passed in {rng.uniform(0.5, 30):.2f}s"
        for _ in range(rng.randint(1, 4)):
            yield _prose(rng)
        yield f"Working… {rng.randint(1, 300)}s elapsed, {rng.randint(1, 99)}% context left"
        yield ""


def _claude_prompt() -> list[str]:
    rule = "─" * (COLUMNS - 4)
    return [
        "",
        rule,
        "❯ ",
        rule,
        "  ? for shortcuts" + " " * 90 + "⏵⏵ accept edits on (shift+tab to cycle)",
    ]


def _time_classify(screen: str, spec: AgentSpec, times: int) -> tuple[float, ...]:
    """Wall-clock duration of each of `times` calls, in µs (one untimed warm-up call first)."""
    now = datetime.now().astimezone()
    classify(screen, spec, now)
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        classify(screen, spec, now)
        samples.append((time.perf_counter() - start) * 1e6)
    return tuple(samples)
