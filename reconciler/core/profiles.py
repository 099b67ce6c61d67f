"""Built-in screen patterns for each agent CLI a manifest's `profile` can name.

Pure data: which screen texts mean the agent waits for a human, which menus must never get an
automatic answer, which texts mean a usage or rate limit, which screen parts are noise for the
stale check, and how the CLI resumes its last conversation after a restart. The texts come from
agents-in-the-wild.md, section 5, and are checked against the screens in tests/fixtures/screens;
CLIs restyle their screens often, so a new CLI version means a new fixture first.

Every pattern is compiled with RE2 (reconciler.api.regex: linear time, no look-around) and
searched with `^` and `$` anchoring lines. Every CLI profile carries the generic profile's
patterns too, after its own. Patterns run on every capture of
every agent, so those for prompts, limits and noise start with a literal or a character class,
never with `\\b`, `^`, `\\d`, a group or a lookbehind: Python's regex engine then skips ahead fast
(a leading `\\b` makes a search about 40 times slower).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Profile:
    """The built-in screen patterns of one agent CLI."""

    name: str
    human_patterns: tuple[str, ...]
    """On screen: the agent waits for a human (approval, permission, trust, y/N)."""
    never_answer: tuple[str, ...]
    """On screen: no automatic answer, whatever the rules say (billing menus, model pickers)."""
    rate_limit_patterns: tuple[str, ...]
    """On screen: a usage or rate limit stops the agent."""
    noise_patterns: tuple[str, ...]
    """Screen parts that change while nothing happens (spinners, timers); left out of the digest."""
    restart_suffix: str | None
    """Appended to the command to resume the last conversation; None: restart the same command."""
    ready: str | None = None
    """In the last lines of the screen: the CLI has drawn its input and can take a message (None:
    any screen will do). `spec.startup.ready` overrides it."""
    busy_patterns: tuple[str, ...] = ()
    """At the bottom of the screen: a turn is in progress (spinners, "esc to interrupt")."""
    idle_patterns: tuple[str, ...] = ()
    """At the bottom of the screen, with no busy marker: the empty input waiting for a task."""
    line_mode: bool = True
    """The program asks on the cursor's line (a shell, aider): only that line and what follows
    it can be the live question. False for full-screen CLIs that draw their dialogs at the
    bottom and erase them once answered."""
    input_prefixes: tuple[str, ...] = ()
    """How a line the user typed starts (after blanks): such a line is never a limit, whatever
    it says ("am I rate limited")."""
    retry_enter: bool = True
    """Whether a delivery may press Enter once more when the first seems not taken (a TUI can
    drop an Enter that comes too soon after a paste). False for a CLI that reads its input line
    by line and takes every Enter, however slowly it shows it: a second one there would be
    read later, as the answer to its next question."""
    empty_input: str | None = None
    """In the last lines of the screen: the CLI's input, drawn and empty (None: cannot tell).
    With it, a delivery presses Enter only once the message shows in the input, and (for a
    full-screen CLI, whose input stays in place) counts it taken only once the input is empty
    again."""

    def restart_command(self, command: str) -> str:
        """The default command line that restarts `command` and resumes where it stopped."""
        return f"{command} {self.restart_suffix}" if self.restart_suffix else command


_GENERIC = Profile(
    name="generic",
    human_patterns=(
        r"[\[(](?i:y(?:es)?/n(?:o)?)[\])]",  # [y/N], [Y/n], (y/n), (yes/no)
        r"[Pp]ress [Ee]nter to continue",
        r"[Pp]ass(?:word|phrase)(?: for [^\n:]+)?:[ \t]*$",
    ),
    never_answer=(
        r"(?i)\b(?:switch to|buy|purchase|add|manage) (?:more |extra )?(?:usage )?credits\b",
        r"(?i)\bupgrade your plan\b",
        r"(?i)\bextra usage\b",
    ),
    rate_limit_patterns=(
        r"[Uu]sage limit (?:reached|exceeded)\b",
        r"hit your (?:usage |rate |session |weekly )?limit\b",
        r"reached your (?:usage |rate |session |weekly )?limit\b",
        r"[Rr]ate[- ]limit(?:ed\b| exceeded| reached)",
        r"rate_limit_error",
        r"RateLimitError",  # the openai and litellm clients (aider, hermes)
        r"[Tt]oo [Mm]any [Rr]equests",
        r"[Ee]rror(?: code)?:? 429\b",
        r"[Ss]tatus(?: code)?:? 429\b",
        r"HTTP(?:/[0-9.]+)? 429\b",
        # Billing and quota: the OpenAI API's texts, which Codex and aider (litellm) show.
        r"insufficient_quota",
        r"exceeded your current quota",
        r"[Qq]uota exceeded",
    ),
    noise_patterns=(
        r"[\u2800-\u28ff✻✳✶✢✽·*↑↓]",  # spinner frames (braille dots, Claude's stars), arrows
        r"esc to interrupt",
        # elapsed 12s, 2m 18s, 1h 5m; 4.8k tokens; 92% left, 100% context left; clocks 12:34:56
        (
            r"[0-9][0-9.,]*(?:h ?[0-9]+m(?: ?[0-9]+s)?|m(?: ?[0-9]+s)?|s|[kKmM]? tokens"
            r"|% (?:context )?left|(?::[0-9]{2}){2})\b"
        ),
    ),
    restart_suffix=None,
    line_mode=True,
)


def _line_not_starting(*words: str) -> str:
    """A line (up to its newline) whose text after leading blanks starts with none of `words`.

    RE2 has no negative look-ahead (`(?![ \t]*(?:w1|w2))[^\n]*`), so the complement is spelled
    out letter by letter: any other first letter, or a word's prefix followed by anything else.
    """
    return r"[ \t]*" + _not_prefixed(words, r" \t")


def _not_prefixed(words: tuple[str, ...], also_not_first: str) -> str:
    """Text up to the line's end that starts with none of `words` (none empty), nor with a
    character of `also_not_first`."""
    heads = sorted({word[0] for word in words})
    excluded = "".join(_escaped(head, "]\\^-") for head in heads)
    options = [rf"[^\n{also_not_first}{excluded}][^\n]*"]
    for head in heads:
        tails = tuple(word[1:] for word in words if word[0] == head)
        if "" not in tails:  # a whole word here: the line starts with it, whatever follows
            options.append(_escaped(head, "\\.^$|?*+()[]{}") + _not_prefixed(tails, ""))
    return "(?:" + "|".join(options) + ")?"


def _escaped(char: str, special: str) -> str:
    """`char` as a pattern writes it where the characters in `special` have a meaning."""
    return "\\" + char if char in special else char


def _cli(
    name: str,
    *,
    human: tuple[str, ...],
    never: tuple[str, ...] = (),
    limits: tuple[str, ...] = (),
    noise: tuple[str, ...] = (),
    busy: tuple[str, ...],
    idle: tuple[str, ...],
    line_mode: bool,
    input_prefixes: tuple[str, ...],
    restart_suffix: str,
    ready: str | None = None,
    empty_input: str | None = None,
    retry_enter: bool = True,
) -> Profile:
    """A CLI's profile: its own patterns first, then the generic ones."""
    return Profile(
        name=name,
        human_patterns=human + _GENERIC.human_patterns,
        never_answer=never + _GENERIC.never_answer,
        rate_limit_patterns=limits + _GENERIC.rate_limit_patterns,
        noise_patterns=noise + _GENERIC.noise_patterns,
        restart_suffix=restart_suffix,
        ready=ready,
        busy_patterns=busy,
        idle_patterns=idle,
        line_mode=line_mode,
        input_prefixes=input_prefixes,
        empty_input=empty_input,
        retry_enter=retry_enter,
    )


_CLAUDE = _cli(
    "claude",
    human=(
        r"Do you want to (?:proceed|make this edit|create|allow|use this API key)\b",
        r", and tell Claude what to do differently",  # No, … / Deny, …
        r"Is this a project you created or one you trust\?",
        r"Yes, I trust this folder",
        r"Use skill \"[^\"\n]*\"\?",
        r"Claude in Chrome wants to",
        r"Resume from summary",
        r"Select model",
        r"What do you want to do\?",
        r"Enter to (?:select|confirm|set as default)",  # pickers and menus
    ),
    never=(
        r"Enter to set as default",  # the /model picker changes the default model
        r"What do you want to do\?",  # the weekly-limit menu, whose options spend money
        r"Stop and wait for limit to reset",
    ),
    limits=(
        r"You[’']ve hit your (?:session |weekly )?limit\b",
        r"5-hour limit reached",
        r"You[’']ve reached your [^\n]{1,60}? limit\b",
        r"Server is temporarily limiting requests",
        r"Request rejected \(429\)",
        r"Credit balance (?:is )?too low",  # 2.1.332: "⎿  Credit balance too low · Add funds: …"
    ),
    busy=(
        r"esc to interrupt",
        # The spinner line, "✶ Julienning… (2s · ↓ 5 tokens)", or "✻ Clauding…" alone while a
        # stream stalls; a finished turn reads "✻ Brewed for 2s · done 10:58 AM" (no "…").
        r"[✻✳✶✢✽] [A-Z][a-z]+…",
    ),
    idle=(
        r"❯[ \t\u00a0]*$",  # the empty input between two rules (2.1.332: "❯" + NBSP)
        # Placeholders in the empty input after an error or with queued messages.
        r"❯[ \u00a0](?:Once fixed, resend your message|Resend your message to try again)",
        r"❯[ \u00a0]Press up to edit queued messages",
    ),
    line_mode=False,
    input_prefixes=("❯", ">"),
    restart_suffix="--continue",
    ready=r"^[ \t│]*❯|\? for shortcuts",  # the input line between its rules, or the hint below
)

_CODEX = _cli(
    "codex",
    human=(
        r"Would you like to (?:run the following command|make the following edits)\?",
        r"Would you like to grant these permissions\?",
        r"Allow command\?",
        r"Approve and run now",
        r", and tell Codex what to do differently",
        r"No, and block this host in the future",
        r"Do you trust the contents of this directory",
        r"Yes, allow Codex to work in this folder",
        r"Trust this folder\?",  # 0.171: "Folder access … › 1. Trust and continue"
        r"Hooks need review",  # 0.171: new hooks need trust before they run
        r"Sign in with ChatGPT",  # the login menu
        r"Press enter to save",  # the API key form
        r"Press enter to confirm or esc to cancel",
    ),
    limits=(
        r"You[’']ve hit your usage limit",
        r"usage_limit_reached",
    ),
    # The working header's bullet blinks between • and ◦ even when nothing else moves.
    noise=(r"[•◦] Working",),
    busy=(
        r"Working \(",
        r"esc to interrupt",
        # While a reply streams there is no status line: the last message typed (`› …`) is not
        # yet closed by "Worked for …" or a "■ …" notice when the composer comes.
        r"› [^\n]*\n(?:" + _line_not_starting("Worked for", "■ ", "›") + r"\n)+›(?: |$)",
    ),
    idle=(r"›(?: |$)",),  # the composer (tmux drops its trailing blank); drawn while busy too
    line_mode=False,
    input_prefixes=("›",),
    restart_suffix="resume --last",
    ready=r"^[ \t]*›|\? for shortcuts",  # the composer's prompt, or its footer hint
)

_GEMINI = _cli(
    "gemini",
    human=(
        r"Apply this change\?",
        r"Allow execution of\b",
        r"Do you want to proceed\?",
        r"Does this plan sound good to you\?",
        r"Waiting for user confirmation",
        r"Yes, allow once",
        r"No, (?:suggest changes|keep planning)",
        r"Do you trust the files in this folder\?",  # the folder-trust dialog
        r"Trust (?:parent )?folder \(",
        r"\(Use Enter to select\)",  # the first-start auth menu
        r"Enter Gemini API Key",
        r"Usage limit reached for ",  # the quota dialog: 1. Keep trying / 2. Stop
    ),
    limits=(
        r"[Qq]uota limit\b",
        r"RESOURCE_EXHAUSTED",
        r"[Qq]uota exceeded for",
        r"exhausted your (?:daily )?quota",
    ),
    noise=(r"[\u2800-\u28ff] [^\n]*\(esc to cancel, [^)\n]*\)",),  # loading line, rotating quip
    busy=(r"esc to cancel, ", r"Executing Hooks:"),
    idle=(r"Type your message or @path/to/file",),  # drawn while busy too
    line_mode=False,
    input_prefixes=(">",),
    restart_suffix="--resume latest",
    ready=r"Type your message",
    # The composer's placeholder, drawn only while the composer is empty (busy or not).
    empty_input=r"Type your message or @path/to/file",
)

_AIDER = _cli(
    "aider",
    # Only an unanswered question: aider leaves "[Yes]: y" on screen once answered.
    human=(
        r"\(Y\)es/\(N\)o\b[^\n]*\[[^\]\n]+\]:[ \t]*$",
        # aider 0.86's spinner can overwrite the start of the question line it shares.
        r"D\)on't ask again \[[^\]\n]+\]:[ \t]*$",
    ),
    # The spinner line, "   ░█      Waiting for openai/gpt-4o": the blocks move within their
    # field. Blocks and blanks are noise, the words are not: the line showing up after an Enter
    # is the screen moving (a line left blank would vanish from the digest).
    noise=(r"[ \t]*[░▒▓█][ \t░▒▓█]*",),
    busy=(r"Waiting for ",),
    idle=(r">[ \t]*\Z",),  # the input prompt, empty, as the last line
    line_mode=True,
    input_prefixes=(">",),
    restart_suffix="--restore-chat-history",
    ready=r"^\S*> ?\Z",  # "> " (or "architect> ") as the very last line
    empty_input=r"^\S*> ?\Z",
    retry_enter=False,  # under load its spinner comes seconds after the Enter
)

_HERMES = _cli(
    "hermes",
    # Only an unanswered choice: "Choice [o/s/a/D]: o" stays on screen once answered.
    human=(r"Choice \[o/s(?:/a)?/D\]:[ \t]*$",),
    noise=(
        r"[\u2800-\u28ff] [^\n]*\([0-9.]+s\)",  # spinner line: frame, kawaii face, verb, time
        r"Ctrl\+C to interrupt",
    ),
    busy=(r"Ctrl\+C to interrupt",),
    idle=(r"❯[ \t]*\Z",),
    line_mode=True,
    input_prefixes=("❯",),
    restart_suffix="--continue",
)

#: Every built-in profile, by the name a manifest's `profile` field uses.
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {profile.name: profile for profile in (_GENERIC, _CLAUDE, _CODEX, _GEMINI, _AIDER, _HERMES)}
)


def resume_command(command: str, profile: str, restart_command: str | None) -> str:
    """The command that restarts an agent with its conversation: the spec's, else the profile's.

    Plain fields, not the Agent model: `orch describe agent` shows it from the stored document
    without building the manifest models."""
    return restart_command or profile_for(profile).restart_command(command)


def profile_for(name: str) -> Profile:
    """The built-in profile called `name`; ValueError names the known ones when there is none."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}") from None
