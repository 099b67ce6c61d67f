"""Built-in profiles: one per manifest profile name, each pattern aimed at the texts it names.

The texts come from agents-in-the-wild.md, section 5 (the catalogue of what each CLI prints).
"""

from __future__ import annotations

from typing import get_args

import pytest

from reconciler.api.manifest import Profile as ProfileName
from reconciler.api.regex import compile_pattern
from reconciler.core.profiles import PROFILES, Profile, profile_for

CLI_PROFILES = [name for name in PROFILES if name != "generic"]
PATTERN_FIELDS = ("human_patterns", "never_answer", "rate_limit_patterns", "noise_patterns")


def matches(patterns: tuple[str, ...], text: str) -> bool:
    return any(compile_pattern(pattern).search(text) for pattern in patterns)


def test_there_is_a_profile_for_every_name_a_manifest_accepts() -> None:
    assert set(PROFILES) == set(get_args(ProfileName))
    assert all(PROFILES[name].name == name for name in PROFILES)


def test_profile_for_returns_the_named_profile() -> None:
    assert profile_for("codex") is PROFILES["codex"]


def test_profile_for_an_unknown_name_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown profile 'vim': use one of generic, claude"):
        profile_for("vim")


def test_profiles_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        PROFILES["vim"] = PROFILES["generic"]  # type: ignore[index]


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("field", [*PATTERN_FIELDS, "busy_patterns", "idle_patterns", "ready"])
def test_every_pattern_compiles_under_re2(name: str, field: str) -> None:
    value = getattr(PROFILES[name], field)
    for pattern in (value,) if isinstance(value, str) else value or ():
        compile_pattern(pattern)


def test_codex_streaming_reply_reads_busy_until_the_turn_is_closed() -> None:
    """The RE2 spelling of "a line not starting with Worked for, ■ or ›" keeps its meaning."""
    busy = PROFILES["codex"].busy_patterns
    streaming = "› fix the bug\n\n• Looking at the code\n  Worked out the cause\n\n› \n"
    assert matches(busy, streaming)
    assert not matches(busy, "› fix the bug\n\n• Fixed it\n\n  Worked for 12s\n\n› \n")
    assert not matches(busy, "› fix the bug\n\n■ Conversation interrupted\n\n› \n")


@pytest.mark.parametrize("name", CLI_PROFILES)
@pytest.mark.parametrize("field", PATTERN_FIELDS)
def test_every_cli_profile_ends_with_the_generic_patterns(name: str, field: str) -> None:
    generic: tuple[str, ...] = getattr(PROFILES["generic"], field)
    assert getattr(PROFILES[name], field)[-len(generic) :] == generic


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("field", ["human_patterns", "rate_limit_patterns", "noise_patterns"])
def test_patterns_start_with_a_literal_or_a_class_so_searches_stay_fast(
    name: str, field: str
) -> None:
    for pattern in getattr(PROFILES[name], field):
        escaped_punctuation = pattern[0] == "\\" and not pattern[1].isalnum()
        assert pattern[0] not in "^(\\" or escaped_punctuation, pattern


@pytest.mark.parametrize(
    ("name", "restart"),
    [
        ("claude", "claude --model opus --continue"),
        ("codex", "claude --model opus resume --last"),
        ("aider", "claude --model opus --restore-chat-history"),
        ("hermes", "claude --model opus --continue"),
        ("gemini", "claude --model opus --resume latest"),
        ("generic", "claude --model opus"),
    ],
)
def test_restart_command_resumes_the_last_conversation(name: str, restart: str) -> None:
    assert PROFILES[name].restart_command("claude --model opus") == restart


def test_the_generic_profile_restarts_the_same_command() -> None:
    assert PROFILES["generic"].restart_suffix is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("generic", "Do you want to continue? [Y/n] "),
        ("generic", "Overwrite config.yaml? [y/N]"),
        ("generic", "Delete the branch (yes/no)"),
        ("generic", "Press Enter to continue"),
        ("generic", "[sudo] password for dev: "),
        ("claude", "Do you want to proceed?"),
        ("claude", "Do you want to make this edit to server.ts?"),
        ("claude", "Do you want to create migrations/0042_invoices.sql?"),
        ("claude", "Do you want to allow Claude to fetch this content?"),
        ("claude", "  3. Deny, and tell Claude what to do differently (esc)"),
        ("gemini", "Do you trust the files in this folder?"),
        ("claude", " Quick safety check: Is this a project you created or one you trust?"),
        ("claude", " ❯ 1. Yes, I trust this folder"),
        ("claude", 'Use skill "pdf"?'),
        ("claude", "Claude in Chrome wants to run JavaScript on localhost:8787"),
        ("claude", "Enter to select · ↑/↓ to navigate · Esc to cancel"),
        ("claude", " Resume from summary (recommended)"),
        ("claude", "Do you want to use this API key?"),
        ("codex", "  Would you like to run the following command?"),
        ("codex", "  Would you like to make the following edits?"),
        ("codex", "  Would you like to grant these permissions?"),
        ("codex", "Allow command?"),
        ("codex", "  3. No, and tell Codex what to do differently (esc)"),
        ("codex", "Do you trust the contents of this directory?"),
        ("codex", "  Press enter to confirm or esc to cancel"),
        ("gemini", "│ Apply this change?  │"),
        ("gemini", "│ Allow execution of: 'npm'?  │"),
        ("gemini", 'Allow execution of MCP tool "search" from server "docs"?'),
        ("gemini", "Does this plan sound good to you?"),
        ("gemini", "Waiting for user confirmation..."),
        ("gemini", "│ ● 1. Yes, allow once"),
        ("aider", "Add file to the chat? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: "),
        ("aider", "Run shell command? (Y)es/(N)o/(S)kip all/(D)on't ask again [Yes]: "),
        ("aider", "Create new file? (Y)es/(N)o [Yes]:"),
        ("hermes", "      Choice [o/s/a/D]: "),
        ("hermes", "      Choice [o/s/D]: "),
    ],
)
def test_human_patterns_recognise_each_cli_waiting_for_a_human(name: str, text: str) -> None:
    assert matches(PROFILES[name].human_patterns, text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("claude", "  ? for shortcuts"),
        ("claude", "❯ "),
        ("claude", "✻ Thinking… (12s · esc to interrupt)"),
        ("codex", "› Ask Codex to do anything"),
        ("gemini", "│ >   Type your message or @path/to/file │"),
        ("aider", "Run shell command? (Y)es/(N)o/(S)kip all/(D)on't ask again [Yes]: y"),
        ("aider", "Tokens: 8.0k sent, 1.3k received. Cost: $0.0076 message, $0.0076 session."),
        ("hermes", "      Choice [o/s/a/D]: o"),
        ("hermes", "  ⚠️  DANGEROUS COMMAND: recursive delete"),
    ],
)
def test_human_patterns_leave_idle_working_and_answered_screens_alone(name: str, text: str) -> None:
    assert not matches(PROFILES[name].human_patterns, text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("claude", " Enter to set as default · Esc to exit"),
        ("claude", " What do you want to do?"),
        ("claude", "   2. Switch to usage credits"),
        ("claude", "   3. Upgrade your plan"),
        ("generic", "  2. Buy more credits"),
        ("generic", "  Turn on extra usage to keep working"),
    ],
)
def test_never_answer_covers_the_model_picker_and_menus_that_spend_money(
    name: str, text: str
) -> None:
    assert matches(PROFILES[name].never_answer, text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("claude", "Claude usage limit reached. Your limit will reset at 9am (America/Chicago)."),
        ("claude", "Claude AI usage limit reached|1760000400"),
        ("claude", "5-hour limit reached ∙ resets 5am"),
        ("claude", "You've hit your limit · resets 3pm"),
        ("claude", "You’ve hit your session limit · resets 11:50pm (America/Los_Angeles)"),
        ("claude", "You've hit your weekly limit · resets Aug 3 at 12am (Asia/Tokyo)"),
        ("claude", "You've reached your Opus limit. Switch to another model"),
        ("claude", "Server is temporarily limiting requests (not your usage limit)"),
        ("claude", "Request rejected (429)"),
        ("claude", 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}'),
        ("codex", "■ You've hit your usage limit. Upgrade to Pro or try again in 5 days."),
        ("codex", '{"error":{"type":"usage_limit_reached","resets_in_seconds":3600}}'),
        ("gemini", "You have reached your daily gemini-2.5-pro quota limit"),
        ("gemini", "[API Error: got status 429 RESOURCE_EXHAUSTED]"),
        ("aider", "litellm.RateLimitError: AnthropicException - rate_limit_error"),
        ("aider", "The API provider has rate limited you. Try again later or check your quotas."),
        ("hermes", "API call failed: RateLimitError: Error code: 429"),
        ("generic", "Error: rate limit exceeded"),
        ("generic", "HTTP 429 Too Many Requests"),
    ],
)
def test_rate_limit_patterns_recognise_each_cli_limit_text(name: str, text: str) -> None:
    assert matches(PROFILES[name].rate_limit_patterns, text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("claude", "  ? for shortcuts          Approaching usage limit · resets at 2am"),
        ("claude", "❯ 1. Default (recommended)  Opus for up to 50% of usage limits"),
        ("gemini", "Possible quota limitations in place or slow response times detected."),
        ("generic", "RATE_LIMIT = 429  # HTTP status sent when a client is over its rate limit"),
        ("generic", "def over_usage_limit(client): return client.used >= client.rate_limit"),
        ("generic", "  429 |     return totals"),
        ("generic", "the retry loop reached the limit of 10 attempts"),
    ],
)
def test_rate_limit_patterns_leave_code_and_warnings_alone(name: str, text: str) -> None:
    assert not matches(PROFILES[name].rate_limit_patterns, text)


@pytest.mark.parametrize(
    ("name", "noisy", "quiet"),
    [
        ("claude", "✳ Simplifying… (2m 18s · ↓ 4.8k tokens)", " Simplifying… (   )"),
        ("claude", "✶ Seasoning… (10m 9s · ↑ 198 tokens)", " Seasoning… (   )"),
        ("claude", "✻ Thinking… (12s · esc to interrupt)", " Thinking… (  )"),
        ("codex", "• Working (1h 02m 05s • esc to interrupt)", " ( • )"),
        ("codex", "◦ Working (1h 02m 05s • esc to interrupt)", " ( • )"),
        ("codex", "gpt-5.4 · ~/projects/webapp · 92% left", "gpt-5.4  ~/projects/webapp  "),
        ("gemini", "⠏ Counting electrons... (esc to cancel, 12s)", ""),
        ("aider", "░░█▓▒░░░░░ Waiting for LLM", "Waiting for LLM"),
        ("hermes", "  ⠹ (｡•́︿•̀｡) pondering... (3.2s)", "  "),
        ("hermes", "  Ctrl+C to interrupt…", "  …"),
        ("generic", "[12:34:56] build started", "[] build started"),
    ],
)
def test_noise_patterns_remove_what_changes_while_nothing_happens(
    name: str, noisy: str, quiet: str
) -> None:
    assert noise_removed(PROFILES[name], noisy) == quiet


def noise_removed(profile: Profile, text: str) -> str:
    for pattern in profile.noise_patterns:
        text = compile_pattern(pattern).sub("", text)
    return text


def test_gemini_limit_patterns_read_its_debug_log_retry_lines() -> None:
    # Gemini CLI 0.61 retries a per-minute 429 silently (screen and title say only "Thinking" /
    # "Working"); its GEMINI_DEBUG_LOG_FILE says "Attempt N failed: … Quota exceeded for …".
    from pathlib import Path

    from reconciler.api.regex import compile_pattern

    log = Path(__file__).resolve().parent.parent / "fixtures" / "signals" / "gemini"
    text = (log / "debug-log-429.txt").read_text()
    patterns = [compile_pattern(p) for p in PROFILES["gemini"].rate_limit_patterns]
    attempts = [line for line in text.splitlines() if "Quota exceeded for" in line]
    assert len(attempts) == 2
    assert all(any(p.search(line) for p in patterns) for line in attempts)
