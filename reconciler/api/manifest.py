"""Manifests: the pydantic models of Agent and Playbook (the loader is adapters.manifest_files).

Users write Kubernetes-shaped, multi-document YAML (see CONTRACT.md, "Manifests"); the rest of orch
only ever sees the frozen models defined here. The loader is the one place where untrusted text
becomes objects, so it refuses what YAML can do but manifests never need (anchors and aliases,
object-building tags, huge or deeply nested files) and turns every problem, from an unreadable file
to a bad regex, into one `ManifestError` naming the file, the line and the dotted field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from reconciler.api.duration import DURATION_PATTERN, format_duration, parse_duration
from reconciler.api.keys import check_key
from reconciler.api.limits import (
    MAX_COUNT,
    MAX_ITEMS,
    CommandText,
    EnvValue,
    PathText,
    ShortText,
    Text,
)
from reconciler.api.regex import check_pattern

#: Larger files are refused before parsing: no manifest needs more, and it bounds the work.
MAX_FILE_BYTES = 1 << 20
#: Deeper YAML is refused while parsing (a scalar counts as a level): manifests nest about 6 deep.
MAX_DEPTH = 50

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 40
_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shown(value: object) -> str:
    """A user's value as it appears in an error message: JSON-quoted, one line, not too long."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_name(value: str) -> str:
    if len(value) > NAME_MAX_LENGTH or not _NAME.fullmatch(value):
        raise ValueError(
            f"invalid name {shown(value)}: use lowercase letters, digits and inner '-', "
            f"at most {NAME_MAX_LENGTH} characters"
        )
    return value


def _check_regex(value: str) -> str:
    try:
        return check_pattern(value)
    except ValueError as error:
        raise ValueError(f"invalid regex {shown(value)}: {error}") from None


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"invalid environment variable name {shown(value)}: "
            "use letters, digits and '_', not starting with a digit"
        )
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _check_glob(value: str) -> str:
    if value[-1:].isspace() and value[-1:] != " ":
        raise ValueError(f"{shown(value)} ends in whitespace other than a space, which globs drop")
    return value


#: What git refuses in a branch name (git check-ref-format), plus a leading "-" (an option).
_BAD_BRANCH = re.compile(
    r"(^[-/.])|(\.\.)|(@\{)|([\x00-\x20\x7f~^:?*\[\\])|([/.]$)|(\.lock$)|(//)|(/\.)"
)


def _check_branch(value: str) -> str:
    if value == "@" or _BAD_BRANCH.search(value):
        raise ValueError(f"{shown(value)} is not a valid git branch name")
    return value


#: A git branch name, checked as git would (and never an option).
Branch = Annotated[str, AfterValidator(_check_branch)]
#: A gitignore-style glob of guarded paths.
Glob = Annotated[PathText, AfterValidator(_check_glob)]
#: A DNS label naming an object (an agent, a playbook, a step).
Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH}),
]
#: Seconds; written as "500ms", "10s", "30m", "1h30m" or a number, and dumped to JSON in that form.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
#: A regular expression (RE2 syntax, linear-time matching), checked when the manifest is loaded.
Pattern = Annotated[
    str, AfterValidator(_check_regex), WithJsonSchema({"type": "string", "format": "regex"})
]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
#: A tmux key name (Enter, C-c, Up, ...) or one character: nothing else reaches `send-keys`.
Key = Annotated[str, AfterValidator(check_key)]
NonBlank = Annotated[ShortText, AfterValidator(_check_not_blank)]
ApiVersion = Literal["orch/v1"]
Profile = Literal["generic", "codex", "claude", "gemini", "aider", "hermes"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]


class _Model(BaseModel):
    """Base of every manifest model: immutable, strict about unknown fields, camelCase in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
    )


def _exactly_one(model: BaseModel, fields: Sequence[str]) -> None:
    """Raise unless exactly one of `fields` (Python names) is set on `model`."""
    if sum(getattr(model, name) is not None for name in fields) != 1:
        aliases = ", ".join(type(model).model_fields[name].alias or name for name in fields)
        raise ValueError(f"set exactly one of: {aliases}")


class ObjectMeta(_Model):
    """What identifies an object: its name, unique per kind, and free-form labels."""

    name: Name
    """DNS label: lowercase letters, digits and inner '-', at most 40 characters."""
    labels: dict[ShortText, ShortText] = Field(default={}, max_length=MAX_ITEMS)
    """Free-form key/value tags, shown by `orch describe`."""


class StartupSpec(_Model):
    """When a started agent counts as Running."""

    after: Duration = 1.0
    """Alive this long after start means Running."""
    ready: Pattern | None = None
    """Regex that, seen on screen, means Running at once."""


class StaleSpec(_Model):
    """What to do when a busy agent's screen stops changing (an idle agent is never Stale)."""

    after: Duration = 1800.0
    """Screen unchanged this long means Stale."""
    action: Literal["restart", "nudge", "none"] = "restart"
    """restart the agent, nudge it with a message, or just report it."""
    nudge: Text = "continue"
    """The message sent by the nudge action."""


class IdleSpec(_Model):
    """What to do with an agent that waits at its empty input (opt-in: quiet is not stuck)."""

    after: Duration = 1800.0
    """Idle this long calls for the action."""
    action: Literal["nudge", "none"] = "none"
    """nudge the agent with a message, or just let it wait."""
    nudge: str = "continue"
    """The message sent by the nudge action."""


class CrashLoopSpec(_Model):
    """Restart limits: too many restarts within a window back off, doubling up to a maximum."""

    max_restarts: int = Field(default=5, ge=0, le=MAX_COUNT)
    """Restarts allowed within `window` before the agent is CrashLooping."""
    window: Duration = 600.0
    """The sliding window restarts are counted in."""
    backoff: Duration = 10.0
    """The first wait in CrashLooping; it doubles on every further crash."""
    max_backoff: Duration = 300.0
    """The longest wait in CrashLooping."""
    reset_after: Duration = 600.0
    """Running this long clears the restart count and the backoff."""


class RateLimitSpec(_Model):
    """How to recognise and sit out a usage limit."""

    patterns: list[Pattern] = Field(default=[], max_length=MAX_ITEMS)
    """Extra regexes that mean: rate limited (profiles bring their own)."""
    cooldown: Duration = 900.0
    """How long to wait when the screen does not say when the limit resets."""
    resume: Text = "continue"
    """The message sent when the cooldown ends."""
    account: ShortText | None = None
    """Agents naming the same account share one cooldown."""


class BudgetSpec(_Model):
    """A limit on what an agent may spend within a sliding window."""

    tokens: int | None = Field(default=None, gt=0)
    """Tokens (input, output and cache reads) within the window."""
    usd: float | None = Field(default=None, gt=0)
    """US dollars within the window (the CLI's own figure, else the price table's)."""
    window: Duration = 86400.0
    """The sliding window the budget applies to."""
    action: Literal["cooldown", "stop", "warn"] = "cooldown"
    """What a spent budget does: cool down until the window frees up, stop, or only warn."""
    scope: Literal["agent", "account"] = "agent"
    """agent: what this agent spent; account: what every agent on its `rateLimit.account` spent
    together (the account's budget, held by each agent that declares it)."""

    @model_validator(mode="after")
    def _a_limit(self) -> Self:
        if self.tokens is None and self.usd is None:
            raise ValueError("give tokens, usd or both")
        return self


class PromptRule(_Model):
    """An automatic answer to a prompt that would otherwise wait for a human."""

    match: Pattern
    """Regex that recognises the prompt on screen."""
    answer: Text | None = None
    """Text to send (set this or `keys`)."""
    keys: list[Key] | None = Field(default=None, min_length=1, max_length=MAX_ITEMS)
    """tmux key names to send, e.g. [Down, Enter] (set this or `answer`)."""
    enter: bool = True
    """Press Enter after `answer`."""

    @model_validator(mode="after")
    def _one_reply(self) -> Self:
        _exactly_one(self, ("answer", "keys"))
        return self


class GuardSpec(_Model):
    """Paths the agent must not change."""

    protect: list[Glob] = Field(min_length=1, max_length=MAX_ITEMS)
    """Glob patterns relative to the agent's workdir."""
    action: Literal["restore", "alert"] = "restore"
    """restore the protected files, or only raise an alert."""


class WorktreeSpec(_Model):
    """A git worktree of `repo` on `branch`, made from `base` when the branch is new."""

    repo: NonBlank = "."
    """The repository; relative paths are relative to the manifest file's folder."""
    branch: Branch
    """The agent's own branch: two agents never share one."""
    base: Branch = "HEAD"
    """What a new branch starts from (a branch, tag or commit)."""


class WorkspaceSpec(_Model):
    """Where the agent works, when not in `workdir` itself."""

    worktree: WorktreeSpec
    """A git worktree under the state dir; `workdir` is then relative to it."""


class SecretSource(_Model):
    """Where a secret environment value is read from when the agent starts."""

    file: PathText
    """A file holding the value (one trailing newline dropped); relative to the manifest."""


class EnvFrom(_Model):
    """An environment value kept out of the manifest and the store: read at each launch."""

    value_from: SecretSource
    """The value's source."""


_ENV_VALUE: TypeAdapter[str] = TypeAdapter(EnvValue)


def _env_entry(value: object) -> str | EnvFrom:
    """A literal value or a {valueFrom: ...}; one error, at the variable, naming what is wrong."""
    try:
        if isinstance(value, dict | EnvFrom):
            return EnvFrom.model_validate(value)
        return _ENV_VALUE.validate_python(value, strict=True)
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"])
        message = str(detail["ctx"]["error"]) if detail["type"] == "value_error" else detail["msg"]
        got = "" if isinstance(value, dict) else f", got {shown(value)}"
        where = f"{where}: " if where else ""
        raise ValueError(f"{where}{message[0].lower()}{message[1:]}{got}") from None


def _env_entry_data(value: str | EnvFrom) -> str | dict[str, Any]:
    return value if isinstance(value, str) else value.model_dump(mode="json", by_alias=True)


#: An environment value: a string, or {valueFrom: {file: PATH}} for a secret read at launch.
EnvEntry = Annotated[
    str | EnvFrom,
    PlainValidator(_env_entry),
    PlainSerializer(_env_entry_data),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {
                        "valueFrom": {
                            "type": "object",
                            "properties": {"file": {"type": "string"}},
                            "required": ["file"],
                        }
                    },
                    "required": ["valueFrom"],
                },
            ]
        }
    ),
]


class AgentSpec(_Model):
    """The desired state of one agent: what runs in its tmux session and how it is supervised."""

    command: Annotated[CommandText, AfterValidator(_check_not_blank)]
    """Command line the user's shell runs in the agent's pane."""
    restart_command: CommandText | None = None
    """Command line used for restarts (profiles may supply one)."""
    workdir: PathText = "."
    """Working folder; relative to the manifest file's folder, or to the worktree with one."""
    workspace: WorkspaceSpec | None = None
    """A git worktree per agent (unset: the agent works in `workdir`)."""
    env: dict[EnvName, EnvEntry] = Field(default={}, max_length=MAX_ITEMS)
    """Extra environment variables for the command: a value, or {valueFrom: {file: PATH}}."""
    profile: Profile = "generic"
    """Built-in screen patterns for a known agent CLI."""
    restart_policy: RestartPolicy = "Always"
    """When an exited agent is started again."""
    startup: StartupSpec = Field(default_factory=StartupSpec)
    """When a started agent counts as Running."""
    stale: StaleSpec | None = None
    """What to do when a busy agent's screen stops changing; unset: never Stale."""
    idle: IdleSpec | None = None
    """What to do when the agent has waited at its empty input a while; unset: nothing."""
    crash_loop: CrashLoopSpec = Field(default_factory=CrashLoopSpec)
    """Restart limits and backoff."""
    rate_limit: RateLimitSpec | None = None
    """How to recognise and sit out a usage limit."""
    prompts: list[PromptRule] = Field(default=[], max_length=MAX_ITEMS)
    """Automatic answers to prompts, tried in order."""
    human_patterns: list[Pattern] = Field(default=[], max_length=MAX_ITEMS)
    """Extra regexes that mean: waiting for a human."""
    ignore: list[Pattern] = Field(default=[], max_length=MAX_ITEMS)
    """Screen regions (regexes) left out of the stale check."""
    talks_to: list[Name] = Field(default=[], max_length=MAX_ITEMS)
    """Agents that `orch send --from` this agent may address."""
    guards: list[GuardSpec] = Field(default=[], max_length=MAX_ITEMS)
    """Paths the agent must not change."""
    budget: BudgetSpec | None = None
    """A spending limit read from the CLI's own usage record (unset: none)."""
    signals: Literal["auto", "off"] = "auto"
    """auto: wire the CLI's own hooks/notifications to `orch signal` (per agent, never in the
    user's config files); off: read the screen only."""

    @field_validator("budget")
    @classmethod
    def _account_budget_names_an_account(
        cls, budget: BudgetSpec | None, info: ValidationInfo
    ) -> BudgetSpec | None:
        rate_limit = info.data.get("rate_limit")  # declared before budget: validated already
        if (
            budget is not None
            and budget.scope == "account"
            and not (rate_limit and rate_limit.account)
        ):
            raise ValueError("scope account needs rateLimit.account (the account it counts)")
        return budget


class Agent(_Model):
    """An agent CLI supervised in its own tmux session."""

    api_version: ApiVersion
    kind: Literal["Agent"]
    metadata: ObjectMeta
    spec: AgentSpec


class ParamSpec(_Model):
    """A playbook parameter, given as `orch run PLAYBOOK --param name=value`."""

    required: bool = False
    """The run cannot start without it."""
    default: Text | None = None
    """Value used when the run does not give one."""
    description: ShortText = ""
    """What the parameter is for."""


class FileMatches(_Model):
    """A file containing at least `min` lines that match a regex."""

    path: PathText
    """File path, relative to the agent's workdir."""
    pattern: Pattern
    """Regex searched for, line by line."""
    min: int = Field(default=1, ge=0, le=MAX_COUNT)
    """How many matching lines are needed."""


class Condition(_Model):
    """A check on the agent's workdir: exactly one of fileExists, fileMatches or command."""

    _checks: ClassVar[tuple[str, ...]] = ("file_exists", "file_matches", "command")
    file_exists: PathText | None = None
    """Passes when this path exists."""
    file_matches: FileMatches | None = None
    """Passes when the file has enough lines matching the pattern."""
    command: CommandText | None = None
    """Passes when this shell command exits 0 in the agent's workdir."""
    timeout: Duration = 600.0
    """How long `command` may run before it fails."""

    @model_validator(mode="after")
    def _one_check(self) -> Self:
        _exactly_one(self, self._checks)
        return self


class Gate(Condition):
    """What a step must pass before the run moves on: a Condition, or a human's approval."""

    _checks: ClassVar[tuple[str, ...]] = (*Condition._checks, "approval")
    approval: Literal["human"] | None = None
    """Waits in AwaitingHuman until `orch approve`."""


class Step(_Model):
    """One task of a playbook, given to one agent."""

    name: Name
    """Unique within the playbook."""
    agent: Name
    """The agent that does the step."""
    prompt: Text
    """The task sent to the agent; ${param} is replaced by the run's parameter."""
    outputs: list[PathText] = Field(default=[], max_length=MAX_ITEMS)
    """Files whose existence means the step is done."""
    gates: list[Gate] = Field(default=[], max_length=MAX_ITEMS)
    """Checks the step must pass, in order; a failure sends the agent a rework message."""
    max_attempts: int = Field(default=3, ge=1, le=MAX_COUNT)
    """Attempts before the run is Failed."""
    timeout: Duration | None = None
    """How long one attempt may take."""
    when: Condition | None = None
    """The step runs only when this holds; otherwise it is skipped."""


class PlaybookSpec(_Model):
    """A playbook's parameters and its steps, run in order."""

    params: dict[ShortText, ParamSpec] = Field(default={}, max_length=MAX_ITEMS)
    """Parameters a run takes."""
    steps: list[Step] = Field(min_length=1, max_length=MAX_ITEMS)
    """The steps, run in order."""

    @field_validator("steps")
    @classmethod
    def _unique_step_names(cls, steps: list[Step]) -> list[Step]:
        first: dict[str, int] = {}
        for index, step in enumerate(steps):
            if step.name in first:
                raise ValueError(
                    f"duplicate step name {shown(step.name)} "
                    f"(steps[{first[step.name]}] and steps[{index}])"
                )
            first[step.name] = index
        return steps


class Playbook(_Model):
    """A multi-step workflow that hands tasks to agents and checks their results."""

    api_version: ApiVersion
    kind: Literal["Playbook"]
    metadata: ObjectMeta
    spec: PlaybookSpec


NotifyReason = Literal[
    "AwaitingHuman",
    "CrashLooping",
    "CoolingDown",
    "ApprovalNeeded",
    "RunFailed",
    "RunSucceeded",
    "DeliveryUnconfirmed",
]


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+", value):
        raise ValueError(f"invalid URL {shown(value)}: use http:// or https://")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class WebhookSpec(_Model):
    """POST the notice as JSON to a URL."""

    url: HttpUrl
    """Where the notice is POSTed."""
    headers: dict[str, str] = {}
    """Extra request headers (tokens): never printed by get, describe or events."""


class NtfySpec(_Model):
    """Publish the notice's message to an ntfy topic URL (https://ntfy.sh/TOPIC)."""

    url: HttpUrl
    """The topic URL."""
    headers: dict[str, str] = {}
    """Extra request headers (an access token): never printed."""


class SlackSpec(_Model):
    """Post the notice to a Slack incoming webhook."""

    webhook_url: HttpUrl
    """The incoming-webhook URL (a secret: never printed)."""


class NotifierSpec(_Model):
    """When and how people are told that they are needed."""

    on: list[NotifyReason] = Field(min_length=1)
    """The transitions that send a notice."""
    selector: dict[str, str] = {}
    """Only agents with these labels (runs: their current step's agent); empty: all."""
    webhook: WebhookSpec | None = None
    """POST JSON {reason, object, state, message, time, prompt}."""
    ntfy: NtfySpec | None = None
    """Publish to an ntfy topic."""
    slack: SlackSpec | None = None
    """Post to a Slack incoming webhook."""
    command: NonBlank | None = None
    """Run by /bin/sh with ORCH_REASON, ORCH_OBJECT, ORCH_STATE, ORCH_MESSAGE, ORCH_PROMPT set."""
    throttle: Duration = 0.0
    """At most one notice per object and reason in this time."""

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        _exactly_one(self, ("webhook", "ntfy", "slack", "command"))
        return self


class Notifier(_Model):
    """Tells people when they are needed: an agent waits for a human, a run fails, ..."""

    api_version: ApiVersion
    kind: Literal["Notifier"]
    metadata: ObjectMeta
    spec: NotifierSpec


Manifest = Annotated[Agent | Playbook | Notifier, Field(discriminator="kind")]
MANIFEST: TypeAdapter[Agent | Playbook | Notifier] = TypeAdapter(Manifest)


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of one manifest document (an Agent, a Playbook or a Notifier), for editors."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orch manifest",
        **MANIFEST.json_schema(by_alias=True),
    }
