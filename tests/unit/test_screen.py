"""Screen classification: every fixture screen, the bottom-region rules, the spec's extensions,
and the digest that the stale check compares.

The fixtures are raw screens in tests/fixtures/screens/<profile>/ (described in its README.md).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.activity import Activity
from reconciler.api.manifest import Agent, AgentSpec
from reconciler.core.screen import (
    LIMIT_LINES,
    LINE_CHARS,
    NOISE_LINES,
    PROMPT_LINES,
    PromptSeen,
    classify,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "screens"
NEW_YORK = ZoneInfo("America/New_York")
#: Wednesday 1 July 2026, 10:00 in New York.
NOW = datetime(2026, 7, 1, 10, 0, tzinfo=NEW_YORK)

#: The rules every fixture is classified with (their index is what `rule` expects below).
RULES: list[dict[str, Any]] = [
    {"match": "Yes, I trust this folder", "keys": ["Enter"]},
    {"match": r"Do you want to proceed\?", "answer": "1", "enter": False},
    {"match": r"Would you like to run the following command\?", "answer": "y", "enter": False},
    {"match": r"Run shell command\?.*\[Yes\]:[ \t]*$", "answer": "y"},  # not once answered
    {"match": r"What do you want to do\?|Enter to set as default", "keys": ["Enter"]},
]


def spec(profile: str = "generic", **fields: Any) -> AgentSpec:
    return AgentSpec.model_validate({"command": "agent", "profile": profile, **fields})


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass(frozen=True)
class Expected:
    """What a fixture's verdict must say; a None field means: nothing seen."""

    prompt: str | None = None
    """A part of the prompt's text."""
    rule: int | None = None
    blocked: bool = False
    limit: str | None = None
    """A part of the limit's text."""
    reset: datetime | None = None
    activity: Activity | None = None
    """What the agent does, as the screen says; None: not checked (the older fixtures)."""


A = Activity
NOTHING = Expected()
IDLE = Expected(activity=A.IDLE)
BUSY = Expected(activity=A.BUSY)
UNKNOWN = Expected(activity=A.UNKNOWN)
#: Limit lines that many real captures of one CLI show (their start, as the screen cuts them).
CLAUDE_CREDIT = "⎿ \xa0Credit balance too low · Add funds: h"
CLAUDE_429 = "● API Error: Request rejected (429) · Th"
CODEX_RETRIES = "■ exceeded retry limit, last status: 429"
CODEX_RETRIES_TREE = "└ Exceeded retry limit, last status: 429"
AIDER_RATE_LIMITED = "The API provider has rate limited you. T"
GEMINI_EXHAUSTED = "✕ [API Error: You have exhausted your da"
EXPECTED: dict[str, Expected] = {
    "claude/idle.txt": NOTHING,
    "claude/working.txt": NOTHING,
    "claude/working-next-frame.txt": NOTHING,
    "claude/permission-proceed.txt": Expected(prompt="Do you want to proceed?", rule=1),
    "claude/permission-edit.txt": Expected(prompt="Do you want to make this edit to server.ts?"),
    "claude/trust-folder.txt": Expected(prompt="Quick safety check: Is this a project", rule=0),
    "claude/model-picker.txt": Expected(prompt="Select model", blocked=True),
    "claude/weekly-limit-menu.txt": Expected(
        prompt="What do you want to do?",
        blocked=True,
        limit="You've hit your weekly limit",
        reset=datetime(2026, 8, 3, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
    ),
    "claude/limit-session.txt": Expected(
        limit="You've hit your session limit",
        reset=datetime(2026, 7, 1, 23, 50, tzinfo=ZoneInfo("America/Los_Angeles")),
    ),
    "claude/limit-5-hour.txt": Expected(
        limit="5-hour limit reached", reset=datetime(2026, 7, 2, 5, 0, tzinfo=NEW_YORK)
    ),
    "claude/limit-usage-reached.txt": Expected(
        limit="Claude usage limit reached",
        reset=datetime(2026, 7, 2, 9, 0, tzinfo=ZoneInfo("America/Chicago")),
    ),
    "claude/api-error-429.txt": Expected(limit="API Error: 429"),
    "claude/approaching-limit.txt": NOTHING,
    "codex/idle.txt": NOTHING,
    "codex/working.txt": NOTHING,
    "codex/working-next-frame.txt": NOTHING,
    "codex/approval-run-command.txt": Expected(
        prompt="Would you like to run the following command?", rule=2
    ),
    "codex/trust-directory.txt": Expected(prompt="Do you trust the contents of this directory?"),
    "codex/limit-try-again-in.txt": Expected(
        limit="You've hit your usage limit", reset=NOW + timedelta(days=5, hours=22, minutes=11)
    ),
    "codex/limit-try-again-at.txt": Expected(
        limit="You've hit your usage limit", reset=datetime(2026, 7, 5, 20, 19, tzinfo=NEW_YORK)
    ),
    "gemini/idle.txt": NOTHING,
    "gemini/working.txt": NOTHING,
    "gemini/working-next-frame.txt": NOTHING,
    "gemini/apply-change.txt": Expected(prompt="Apply this change?"),
    "gemini/allow-execution.txt": Expected(prompt="Allow execution of: 'npm'?"),
    "gemini/limit-retry-in.txt": Expected(
        limit="RESOURCE_EXHAUSTED", reset=NOW + timedelta(seconds=37.5)
    ),
    "gemini/limit-daily-quota.txt": Expected(limit="daily gemini-2.5-pro quota limit"),
    "aider/idle.txt": NOTHING,
    "aider/working.txt": NOTHING,
    "aider/working-next-frame.txt": NOTHING,
    "aider/confirm-run-shell.txt": Expected(
        prompt="Run shell command? (Y)es/(N)o/(S)kip all/(D)on't ask again [Yes]:", rule=3
    ),
    "aider/confirm-answered.txt": NOTHING,
    "aider/limit-rate-limit-error.txt": Expected(
        limit="The API provider has rate limited you"  # "Retrying in 8.0 seconds": no reset
    ),
    "hermes/idle.txt": NOTHING,
    "hermes/working.txt": NOTHING,
    "hermes/working-next-frame.txt": NOTHING,
    "hermes/dangerous-command.txt": Expected(prompt="Choice [o/s/a/D]:"),
    "hermes/limit-rate-limit.txt": Expected(
        limit="RateLimitError"  # "Retrying in 20s": the client's countdown, no reset
    ),
    "generic/apt-confirm.txt": Expected(prompt="Do you want to continue? [Y/n]"),
    "generic/shell-idle.txt": NOTHING,
    "generic/code-about-rate-limits.txt": NOTHING,
    # Captured from the real CLIs (versions in <cli>/VERSION; see README.md).
    "aider/real-add-file-answered-idle.txt": IDLE,
    "aider/real-add-file-prompt.txt": Expected(
        prompt="Add file to the chat? (Y)es/(N)o/(D)on't ask", activity=A.WAITING
    ),
    "aider/real-answered-idle.txt": IDLE,
    "aider/real-busy-next-frame.txt": UNKNOWN,
    "aider/real-busy-streaming.txt": UNKNOWN,
    "aider/real-busy.txt": UNKNOWN,
    "aider/real-first-start-gitignore.txt": Expected(
        prompt="Add .aider* to .gitignore (recommended)? (Y)e", activity=A.WAITING
    ),
    "aider/real-first-start-ready.txt": IDLE,
    "aider/real-hang-interrupted.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.IDLE),
    "aider/real-hang-next-frame.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.BUSY),
    "aider/real-hang.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.BUSY),
    "aider/real-limit-429-next-frame.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.BUSY),
    "aider/real-limit-429.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.BUSY),
    "aider/real-limit-gave-up-open-url-next-frame.txt": Expected(
        prompt="░█   Waiting for openai/gpt-4oD)on't ask agai",
        limit=AIDER_RATE_LIMITED,
        activity=A.WAITING,
    ),
    "aider/real-limit-gave-up-open-url.txt": Expected(
        prompt="░█        Waiting for openai/gpt-4oD)on't ask",
        limit=AIDER_RATE_LIMITED,
        activity=A.WAITING,
    ),
    "aider/real-limit-quota.txt": Expected(limit=AIDER_RATE_LIMITED, activity=A.BUSY),
    "aider/real-paste-100k-submitted.txt": IDLE,
    "aider/real-paste-100k.txt": UNKNOWN,
    "aider/real-permission-answered.txt": IDLE,
    "aider/real-permission-prompt.txt": Expected(
        prompt="Run shell command? (Y)es/(N)o/(D)on't ask aga", rule=3, activity=A.WAITING
    ),
    "aider/real-resume-restore-chat-history.txt": IDLE,
    "aider/real-resume-second-prompt.txt": IDLE,
    "aider/real-second-prompt-answered.txt": IDLE,
    "aider/real-second-prompt-typed.txt": UNKNOWN,
    "aider/real-typed-unsubmitted.txt": UNKNOWN,
    "claude/real-429-after-30s.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-429-final.txt": Expected(limit=CLAUDE_429, activity=A.IDLE),
    "claude/real-429-interrupted-cleared.txt": Expected(limit=CLAUDE_CREDIT, activity=A.IDLE),
    "claude/real-429-interrupted.txt": Expected(limit=CLAUDE_CREDIT, activity=A.UNKNOWN),
    "claude/real-429-next-frame.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-429.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-after-busy-idle.txt": IDLE,
    "claude/real-api-key-confirm.txt": Expected(
        prompt="Do you want to use this API key?", activity=A.WAITING
    ),
    "claude/real-busy-next-frame.txt": BUSY,
    "claude/real-busy.txt": BUSY,
    "claude/real-exit.txt": UNKNOWN,
    "claude/real-first-start-no-onboarding.txt": UNKNOWN,
    "claude/real-hang-after-30s.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-hang-interrupted.txt": Expected(limit=CLAUDE_CREDIT, activity=A.UNKNOWN),
    "claude/real-hang-next-frame.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-hang.txt": Expected(limit=CLAUDE_CREDIT, activity=A.BUSY),
    "claude/real-idle-after-20s.txt": IDLE,
    "claude/real-idle-first-start.txt": IDLE,
    "claude/real-idle.txt": IDLE,
    "claude/real-paste-100k-submitted.txt": IDLE,
    "claude/real-paste-100k.txt": Expected(limit=CLAUDE_429, activity=A.UNKNOWN),
    "claude/real-permission-after-12s.txt": Expected(
        prompt="Do you want to proceed?", rule=1, activity=A.WAITING
    ),
    "claude/real-permission-answered.txt": IDLE,
    "claude/real-permission.txt": Expected(
        prompt="Do you want to proceed?", rule=1, activity=A.WAITING
    ),
    "claude/real-quota.txt": Expected(limit=CLAUDE_CREDIT, activity=A.IDLE),
    "claude/real-ready-first-frame.txt": IDLE,
    "claude/real-resume-continue.txt": Expected(limit=CLAUDE_CREDIT, activity=A.IDLE),
    "claude/real-second-prompt.txt": IDLE,
    "claude/real-trust-folder-selected.txt": Expected(
        prompt="Quick safety check: Is this a project you cre", rule=0, activity=A.WAITING
    ),
    "claude/real-trust-folder.txt": Expected(
        prompt="Quick safety check: Is this a project you cre", rule=0, activity=A.WAITING
    ),
    "claude/real-typed-unsubmitted.txt": UNKNOWN,
    "codex/real-429-final.txt": Expected(limit=CODEX_RETRIES, activity=A.IDLE),
    "codex/real-429-next-frame.txt": Expected(limit=CODEX_RETRIES_TREE, activity=A.BUSY),
    "codex/real-429.txt": Expected(limit=CODEX_RETRIES_TREE, activity=A.BUSY),
    "codex/real-after-busy-idle.txt": IDLE,
    "codex/real-busy-next-frame.txt": BUSY,
    "codex/real-busy.txt": BUSY,
    "codex/real-exit.txt": UNKNOWN,
    "codex/real-hang-after-30s.txt": Expected(limit=CODEX_RETRIES, activity=A.BUSY),
    "codex/real-hang-interrupted.txt": Expected(limit=CODEX_RETRIES, activity=A.IDLE),
    "codex/real-hang-next-frame.txt": Expected(limit=CODEX_RETRIES, activity=A.BUSY),
    "codex/real-hang.txt": Expected(limit=CODEX_RETRIES, activity=A.BUSY),
    "codex/real-hooks-untrusted-idle.txt": IDLE,
    "codex/real-hooks-untrusted-start.txt": Expected(
        prompt="Hooks need review", activity=A.WAITING
    ),
    "codex/real-idle-first-start.txt": IDLE,
    "codex/real-idle.txt": IDLE,
    "codex/real-login-api-key.txt": Expected(prompt="Press enter to save", activity=A.WAITING),
    "codex/real-login.txt": Expected(prompt="> 1. Sign in with ChatGPT", activity=A.WAITING),
    "codex/real-paste-100k-submitted.txt": IDLE,
    "codex/real-paste-100k.txt": Expected(limit=CODEX_RETRIES, activity=A.IDLE),
    "codex/real-permission-answered.txt": IDLE,
    "codex/real-permission.txt": Expected(
        prompt="Would you like to run the following command?", rule=2, activity=A.WAITING
    ),
    "codex/real-quota.txt": Expected(
        limit="■ Quota exceeded. Check your plan and bi", activity=A.IDLE
    ),
    "codex/real-ready-first-frame.txt": IDLE,
    "codex/real-resume-last.txt": Expected(limit=CODEX_RETRIES, activity=A.IDLE),
    "codex/real-second-prompt.txt": IDLE,
    "codex/real-trust-folder.txt": Expected(
        prompt="Trust this folder? Codex can read, edit, and", activity=A.WAITING
    ),
    "codex/real-typed-unsubmitted.txt": IDLE,
    "codex/real-warnings-1.txt": UNKNOWN,
    "gemini/real-answered-idle.txt": IDLE,
    "gemini/real-busy-next-frame.txt": BUSY,
    "gemini/real-busy-streaming.txt": BUSY,
    "gemini/real-busy.txt": BUSY,
    "gemini/real-cancelled-idle.txt": IDLE,
    "gemini/real-first-start-apikey.txt": Expected(
        prompt="Enter Gemini API Key", activity=A.WAITING
    ),
    "gemini/real-first-start-auth.txt": Expected(
        prompt="(Use Enter to select)", activity=A.WAITING
    ),
    "gemini/real-first-start-composer-before-trust.txt": IDLE,
    "gemini/real-first-start-ready.txt": IDLE,
    "gemini/real-first-start-trust.txt": Expected(
        prompt="Do you trust the files in this folder?", activity=A.WAITING
    ),
    "gemini/real-hang-next-frame.txt": BUSY,
    "gemini/real-hang.txt": BUSY,
    "gemini/real-idle-fresh.txt": IDLE,
    "gemini/real-limit-429-retrying.txt": Expected(limit=GEMINI_EXHAUSTED, activity=A.BUSY),
    "gemini/real-limit-429.txt": BUSY,
    "gemini/real-limit-quota-spinning.txt": BUSY,
    "gemini/real-limit-quota-stopped.txt": Expected(limit=GEMINI_EXHAUSTED, activity=A.IDLE),
    "gemini/real-limit-quota.txt": Expected(
        prompt="Usage limit reached for gemini-2.5-flash.",
        limit="Usage limit reached for gemini-2.5-flash",
        activity=A.WAITING,
    ),
    "gemini/real-paste-100k-answered.txt": IDLE,
    "gemini/real-paste-100k-submitted.txt": IDLE,
    "gemini/real-paste-100k.txt": UNKNOWN,
    "gemini/real-permission-answered-idle.txt": IDLE,
    "gemini/real-permission-answered.txt": BUSY,
    "gemini/real-permission-prompt.txt": Expected(
        prompt="Allow execution of [Shell]?", activity=A.WAITING
    ),
    "gemini/real-permission-rejected.txt": IDLE,
    "gemini/real-quit-summary-with-hooks.txt": UNKNOWN,
    "gemini/real-quit-summary.txt": UNKNOWN,
    "gemini/real-resume-latest.txt": IDLE,
    "gemini/real-second-prompt-answered.txt": IDLE,
    "gemini/real-typed-unsubmitted.txt": UNKNOWN,
}


def test_every_fixture_has_an_expected_verdict_and_a_readme_row() -> None:
    files = {str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("*/*.txt")}
    assert files == set(EXPECTED)
    readme = (FIXTURES / "README.md").read_text()
    assert [name for name in sorted(files) if f"`{name}`" not in readme] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_classified_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    verdict = classify(fixture(name), spec(name.split("/")[0], prompts=RULES), NOW)
    if expected.prompt is None:
        assert verdict.prompt is None
    else:
        assert verdict.prompt is not None
        assert expected.prompt in verdict.prompt.text
        assert (verdict.prompt.rule_index, verdict.prompt.blocked) == (
            expected.rule,
            expected.blocked,
        )
    if expected.limit is None:
        assert verdict.limit is None
    else:
        assert verdict.limit is not None
        assert expected.limit in verdict.limit.text
        assert verdict.limit.reset_at == expected.reset
    if expected.activity is not None:
        assert verdict.activity is expected.activity


@pytest.mark.parametrize("profile", ["claude", "codex", "gemini", "aider", "hermes"])
def test_each_profile_tells_its_idle_input_from_its_busy_markers(profile: str) -> None:
    def activity(name: str) -> Activity:
        return classify(fixture(f"{profile}/{name}"), spec(profile), NOW).activity

    assert activity("idle.txt") is Activity.IDLE
    assert activity("working.txt") is Activity.BUSY
    assert activity("working-next-frame.txt") is Activity.BUSY


def test_a_generic_program_has_no_idle_input_to_tell() -> None:
    assert classify(fixture("generic/shell-idle.txt"), spec(), NOW).activity is Activity.UNKNOWN


# --- prompts ---------------------------------------------------------------------------------


def test_without_a_matching_rule_the_prompt_waits_for_a_human() -> None:
    verdict = classify(fixture("claude/permission-proceed.txt"), spec("claude"), NOW)
    assert verdict.prompt is not None
    assert (verdict.prompt.rule_index, verdict.prompt.blocked) == (None, False)


def test_a_user_rule_answers_a_prompt_no_profile_knows() -> None:
    screen = "Deploying to production.\nType the project name to confirm: "
    assert classify(screen, spec(), NOW).prompt is None
    rules = [{"match": "Type the project name to confirm:", "answer": "webapp"}]
    verdict = classify(screen, spec(prompts=rules), NOW)
    assert verdict.prompt is not None and verdict.prompt.rule_index == 0


def test_the_first_matching_rule_wins() -> None:
    rules = [
        {"match": "No such prompt", "answer": "n"},
        {"match": "proceed", "answer": "2"},
        {"match": r"Do you want to proceed\?", "answer": "1"},
    ]
    verdict = classify(fixture("claude/permission-proceed.txt"), spec("claude", prompts=rules), NOW)
    assert verdict.prompt is not None and verdict.prompt.rule_index == 1


def test_a_never_answer_menu_blocks_every_rule() -> None:
    rules = [{"match": "Stop and wait for limit to reset", "keys": ["Enter"]}]
    verdict = classify(fixture("claude/weekly-limit-menu.txt"), spec("claude", prompts=rules), NOW)
    assert verdict.prompt is not None
    assert (verdict.prompt.rule_index, verdict.prompt.blocked) == (None, True)


def test_human_patterns_in_the_spec_extend_the_profile() -> None:
    screen = "Deploying to production.\nType the project name to confirm: "
    verdict = classify(screen, spec(humanPatterns=["project name to confirm"]), NOW)
    assert verdict.prompt == PromptSeen("Type the project name to confirm:", None, blocked=False)


def with_lines_below(screen: str, count: int) -> str:
    return screen + "".join(f"\noutput line {index}" for index in range(count))


def test_a_dialog_that_scrolled_out_of_the_bottom_region_is_not_a_prompt() -> None:
    screen = "Do you want to proceed?"
    claude = spec("claude")
    assert classify(with_lines_below(screen, PROMPT_LINES - 1), claude, NOW).prompt is not None
    assert classify(with_lines_below(screen, PROMPT_LINES), claude, NOW).prompt is None


def test_a_rule_only_answers_what_is_in_the_bottom_region() -> None:
    rules = [{"match": "Overwrite config.yaml", "answer": "y"}]
    screen = with_lines_below("Overwrite config.yaml? [y/N]", PROMPT_LINES)
    assert classify(screen, spec("claude", prompts=rules), NOW).prompt is None


def test_blank_lines_and_empty_box_lines_do_not_count_towards_the_bottom_region() -> None:
    screen = "Do you want to proceed?" + "\n   \n│      │" * 30 + "\nlast line"
    assert classify(screen, spec("claude"), NOW).prompt is not None


# --- live prompts: only the question the agent waits on now ------------------------------------


def test_a_line_mode_question_with_output_below_it_was_answered() -> None:
    screen = "Overwrite config.yaml? [y/N]\nwriting config.yaml\ndone"
    assert classify(screen, spec(), NOW).prompt is None


@pytest.mark.parametrize("cursor", [1, 2])
def test_an_answered_y_n_question_never_keeps_the_agent_waiting(cursor: int) -> None:
    screen = "Overwrite config.yaml? [y/N] y\n\n\n"  # answered; the program not yet printing
    verdict = classify(screen, spec(), NOW, cursor_row=cursor)
    assert verdict.prompt is None
    assert verdict.activity is not Activity.WAITING


def test_the_question_on_the_cursor_row_is_live() -> None:
    screen = "Overwrite config.yaml? [y/N] \n\n"
    verdict = classify(screen, spec(), NOW, cursor_row=0)
    assert verdict.prompt is not None and verdict.prompt.text == "Overwrite config.yaml? [y/N]"
    assert verdict.activity is Activity.WAITING


def test_a_question_above_the_cursor_row_is_history() -> None:
    screen = "Overwrite config.yaml? [y/N] \n\n"
    assert classify(screen, spec(), NOW, cursor_row=1).prompt is None


def test_a_cursor_row_off_the_screen_falls_back_to_the_last_line() -> None:
    screen = "Overwrite config.yaml? [y/N] \n\n"
    assert classify(screen, spec(), NOW, cursor_row=99).prompt is not None


AIDER_RULES: list[dict[str, Any]] = [
    {"match": r"Run shell command\?", "answer": "y"},  # not anchored: matches once answered too
    {"match": r"Add file to the chat\?", "answer": "n"},
]


def test_an_answered_aider_question_never_matches_its_rule_again() -> None:
    verdict = classify(
        fixture("aider/real-permission-answered.txt"), spec("aider", prompts=AIDER_RULES), NOW
    )
    assert verdict.prompt is None
    assert verdict.activity is not Activity.WAITING


def test_an_answered_question_does_not_mask_the_next_one() -> None:
    screen = (
        "touch e2e-tool-ran\n"
        "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: y\n"
        "Running touch e2e-tool-ran\n"
        "e2e-tool-file.txt\n"
        "Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: \n"
    )
    verdict = classify(screen, spec("aider", prompts=AIDER_RULES), NOW)
    assert verdict.prompt is not None
    assert verdict.prompt.text.startswith("Add file to the chat?")
    assert verdict.prompt.rule_index == 1


def test_an_unanswered_question_without_a_rule_waits_for_a_human_below_an_answered_one() -> None:
    screen = (
        "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: y\n"
        "Running touch e2e-tool-ran\n"
        "Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: \n"
    )
    rules = AIDER_RULES[:1]
    verdict = classify(screen, spec("aider", prompts=rules), NOW)
    assert verdict.prompt is not None
    assert (verdict.prompt.rule_index, verdict.prompt.blocked) == (None, False)


def test_the_prompt_text_is_the_topmost_matching_line_without_box_borders() -> None:
    verdict = classify(fixture("gemini/apply-change.txt"), spec("gemini"), NOW)
    assert verdict.prompt is not None and verdict.prompt.text == "Apply this change?"


def test_an_answered_aider_question_is_not_a_prompt() -> None:
    answered = "Run shell command? (Y)es/(N)o/(S)kip all/(D)on't ask again [Yes]: y\nRunning it"
    assert classify(answered, spec("aider"), NOW).prompt is None


# --- limits ----------------------------------------------------------------------------------


def test_the_newest_limit_line_wins() -> None:
    screen = "API Error: 429 rate_limit_error\nretrying\nYou've hit your limit · resets 3pm\n❯ "
    verdict = classify(screen, spec("claude"), NOW)
    assert verdict.limit is not None
    assert verdict.limit.text == "You've hit your limit · resets 3pm"
    assert verdict.limit.reset_at == datetime(2026, 7, 1, 15, 0, tzinfo=NEW_YORK)
    assert verdict.limit.pattern == r"You[’']ve hit your (?:session |weekly )?limit\b"


def test_a_limit_that_scrolled_out_of_the_bottom_region_is_history() -> None:
    screen = "You've hit your limit · resets 3pm"
    assert classify(with_lines_below(screen, LIMIT_LINES - 1), spec("claude"), NOW).limit
    assert classify(with_lines_below(screen, LIMIT_LINES), spec("claude"), NOW).limit is None


def test_a_reset_time_wrapped_onto_the_next_lines_is_read_whole() -> None:
    screen = (
        "■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or\n"
        "try again in 5 days 22 hours\n"
        "11 minutes.\n"
    )
    verdict = classify(screen, spec("codex"), NOW)
    assert verdict.limit is not None
    assert verdict.limit.reset_at == NOW + timedelta(days=5, hours=22, minutes=11)


def test_a_limit_without_a_reset_time_leaves_it_to_the_cooldown() -> None:
    verdict = classify(fixture("claude/api-error-429.txt"), spec("claude"), NOW)
    assert verdict.limit is not None and verdict.limit.reset_at is None


def test_rate_limit_patterns_in_the_spec_extend_the_profile() -> None:
    screen = "worker: org quota exhausted, pausing"
    assert classify(screen, spec(), NOW).limit is None
    verdict = classify(screen, spec(rateLimit={"patterns": ["quota exhausted"]}), NOW)
    assert verdict.limit is not None
    assert (verdict.limit.text, verdict.limit.pattern) == (screen, "quota exhausted")


# --- digest ----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["claude", "codex", "gemini", "aider", "hermes"])
def test_two_frames_of_the_same_work_have_the_same_digest(profile: str) -> None:
    first = classify(fixture(f"{profile}/working.txt"), spec(profile), NOW)
    second = classify(fixture(f"{profile}/working-next-frame.txt"), spec(profile), NOW)
    assert first.digest == second.digest


@pytest.mark.parametrize(
    ("profile", "before", "after"),
    [
        (
            "claude",
            "✳ Simplifying… (2m 59s · ↓ 9.9k tokens)",
            "✢ Simplifying… (3m 0s · ↓ 10.2k tokens)",
        ),
        (
            "claude",
            "✻ Thinking… (59s · esc to interrupt)",
            "✽ Thinking… (1m 0s · esc to interrupt)",
        ),
        ("claude", "✶ Seasoning… (10m 9s · ↑ 198 tokens)", "✳ Seasoning… (10m 10s · ↑ 198 tokens)"),
        ("codex", "• Working (59s • esc to interrupt)", "• Working (1m 00s • esc to interrupt)"),
        (
            "codex",
            "• Working (59m 59s • esc to interrupt)",
            "• Working (1h 00m 00s • esc to interrupt)",
        ),
        (
            "gemini",
            "⠋ Thinking... (esc to cancel, 9s)",
            "⠙ Warming the GPUs... (esc to cancel, 10s)",
        ),
        ("hermes", "  ⠹ (◔_◔) pondering... (9.9s)", "  ⠼ (⌐■_■) contemplating... (10.1s)"),
        ("generic", "[12:34:56] waiting", "[12:34:57] waiting"),
    ],
)
def test_spinners_timers_counters_and_clocks_do_not_change_the_digest(
    profile: str, before: str, after: str
) -> None:
    screen = "● Working on the billing module\n{}\n\n❯ \n"
    assert (
        classify(screen.format(before), spec(profile), NOW).digest
        == classify(screen.format(after), spec(profile), NOW).digest
    )


@pytest.mark.parametrize("profile", ["claude", "codex", "gemini", "aider", "hermes"])
def test_one_new_line_changes_the_digest(profile: str) -> None:
    screen = fixture(f"{profile}/working.txt")
    lines = screen.splitlines()
    moved = "\n".join([*lines[:-3], "● Wrote src/server.test.ts", *lines[-3:]])
    assert classify(screen, spec(profile), NOW).digest != classify(moved, spec(profile), NOW).digest


def test_trailing_blanks_do_not_change_the_digest() -> None:
    assert classify("a\nb", spec(), NOW).digest == classify("a   \nb\t\n\n  \n", spec(), NOW).digest


def test_ignore_patterns_in_the_spec_extend_the_noise() -> None:
    first, second = "build: 41 ticks elapsed\n$ ", "build: 42 ticks elapsed\n$ "
    assert classify(first, spec(), NOW).digest != classify(second, spec(), NOW).digest
    quiet = spec(ignore=[r"\d+ ticks elapsed"])
    assert classify(first, quiet, NOW).digest == classify(second, quiet, NOW).digest


def test_the_digest_covers_long_history_and_ignores_noise_at_the_bottom() -> None:
    history = "\n".join(f"history line {index}" for index in range(2000))
    frame = history + "\n" + fixture("claude/working.txt")
    next_frame = history + "\n" + fixture("claude/working-next-frame.txt")
    changed_history = frame.replace("history line 7\n", "history line seven\n")
    digests = {text: classify(text, spec("claude"), NOW).digest for text in (frame, next_frame)}
    assert digests[frame] == digests[next_frame]
    assert classify(changed_history, spec("claude"), NOW).digest != digests[frame]


def test_noise_is_removed_from_the_bottom_lines_and_scrollback_above_is_hashed_as_is() -> None:
    def digest(timer: str, lines_below: int) -> str:
        return classify(f"✻ Thinking… ({timer})" + "\nline" * lines_below, spec(), NOW).digest

    assert digest("12s", NOISE_LINES - 1) == digest("13s", NOISE_LINES - 1)
    assert digest("12s", NOISE_LINES) != digest("13s", NOISE_LINES)


# --- robustness ------------------------------------------------------------------------------

SNIPPETS = [
    line
    for path in sorted(FIXTURES.glob("*/*.txt"))
    for line in path.read_text().splitlines()
    if line.strip()
]
SPECS = [
    spec(
        profile,
        prompts=RULES,
        humanPatterns=[r"(?i)confirm"],
        ignore=[r"\d+ ticks"],
        rateLimit={"patterns": [r"quota"]},
    )
    for profile in ("generic", "claude", "codex", "gemini", "aider", "hermes")
]


@settings(max_examples=300)
@given(
    screen=st.one_of(
        st.text(max_size=2000),
        st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=80)), max_size=40).map(
            "\n".join
        ),
    ),
    agent_spec=st.sampled_from(SPECS),
)
def test_classify_never_raises(screen: str, agent_spec: AgentSpec) -> None:
    verdict = classify(screen, agent_spec, NOW)
    assert re.fullmatch(r"[0-9a-f]{64}", verdict.digest)
    assert verdict.limit is None or verdict.limit.reset_at is None or verdict.limit.reset_at.tzinfo


REAL_SCREENS = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("*/real-*.txt"))
HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["\x1b[201~", "\r" * 50, "[y/N] " * 200, "│" * 500, "\n" * 300, "a" * 5000]),
)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(REAL_SCREENS),
    suffix=HOSTILE,
    cursor=st.one_of(st.none(), st.integers(min_value=-3, max_value=400)),
    agent_spec=st.sampled_from(SPECS),
)
def test_real_screens_with_hostile_suffixes_never_raise(
    name: str, suffix: str, cursor: int | None, agent_spec: AgentSpec
) -> None:
    verdict = classify(fixture(name) + suffix, agent_spec, NOW, cursor_row=cursor)
    assert verdict.activity in Activity
    assert verdict.prompt is None or len(verdict.prompt.text) <= LINE_CHARS


def test_an_agent_manifest_spec_classifies_too() -> None:
    agent = Agent.model_validate(
        {
            "apiVersion": "orch/v1",
            "kind": "Agent",
            "metadata": {"name": "executor"},
            "spec": {
                "command": "claude",
                "profile": "claude",
                "prompts": [{"match": "Yes, I trust this folder", "keys": ["Enter"]}],
            },
        }
    )
    verdict = classify(fixture("claude/trust-folder.txt"), agent.spec, NOW)
    assert verdict.prompt is not None and verdict.prompt.rule_index == 0


@pytest.mark.parametrize("module", ["screen", "profiles", "resettime"])
def test_classification_imports_only_the_stdlib_and_the_manifest(module: str) -> None:
    allowed = {
        "__future__", "collections.abc", "dataclasses", "datetime", "functools", "hashlib", "re",
        "types", "zoneinfo", "reconciler.api.activity", "reconciler.api.manifest",
        "reconciler.core.profiles", "reconciler.core.resettime", "reconciler.api.regex",
    }  # fmt: skip
    source = (
        Path(__file__).resolve().parents[2] / "reconciler" / "core" / f"{module}.py"
    ).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert imported <= allowed
