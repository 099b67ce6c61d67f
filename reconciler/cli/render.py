"""What the CLI shows of each kind, one renderer per kind: an agent (from its desired object and
its record), a run, a playbook or notifier, an event, usage totals — as `get` rows, `-o json`
items and `describe` pages."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from reconciler.api.activity import Activity
from reconciler.api.duration import human_duration, human_size
from reconciler.api.localtime import local_time
from reconciler.api.status import AgentRecord, AgentState, Condition
from reconciler.cli.output import age, iso, table, to_yaml
from reconciler.core.secrets import notifier_transport, redacted

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any

    # types only: building their dataclasses and regexes costs every read command's start-up
    from reconciler.adapters.git import WorktreeStatus
    from reconciler.adapters.store import StoredObject
    from reconciler.adapters.store_rows import StoredRun
    from reconciler.api.history import StoredEvent, StoredTransition
    from reconciler.api.messages import QueuedMessage
    from reconciler.core.runs import StepStatus
    from reconciler.core.signals import AgentSignal
    from reconciler.core.steps import GateResult
    from reconciler.core.usage import UsageTotals

#: Columns of `orch get agents`, and the extra ones of `-o wide`.
AGENT_COLUMNS = ("name", "state", "restarts", "age", "reason")
AGENT_WIDE_COLUMNS = ("activity", "since", "pid", "profile", "tokens", "cost", "command", "message")
#: Least widths `get -w` gives the columns, so rows printed later line up with the header: the
#: longest state (AwaitingHuman), a restart count, an age, a reason, an activity (Waiting).
AGENT_MIN_WIDTHS = (12, 13, 8, 5, 20, 8, 5, 7, 7, 6, 6, 24)


def agent_status(record: AgentRecord | None, usage: UsageTotals | None = None) -> dict[str, Any]:
    """The `status` block of an agent; an agent the controller has not handled yet is Starting."""
    status = _record_status(record)
    if usage is not None:
        status["usage"] = usage.to_json()
    return status


def _record_status(record: AgentRecord | None) -> dict[str, Any]:
    if record is None:
        return {
            "state": AgentState.STARTING.value,
            "activity": Activity.UNKNOWN.value,
            "restarts": 0,
            "reason": "Pending",
            "message": "waiting for the controller",
            "since": None,
            "conditions": [],
        }
    status: dict[str, Any] = {
        "state": record.state.value,
        "activity": record.activity.value,
        "restarts": record.restarts,
        "manualRestarts": record.manual_restarts,
        "reason": record.reason,
        "message": record.message,
        "since": iso(record.since),
        "pid": record.pid,
        "exitCode": record.exit_code,
        "observedGeneration": record.generation,
        "conditions": _conditions(record.conditions),
    }
    status["signals"] = record.signals
    if record.session_id:
        status["sessionId"] = record.session_id
    if record.backoff_until is not None:
        status["backoffUntil"] = iso(record.backoff_until)
    if record.cooldown_until is not None:
        status["cooldownUntil"] = iso(record.cooldown_until)
    return status


def _conditions(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    """Conditions as the `status` block of an agent or a run lists them."""
    return [
        {
            "type": c.type,
            "status": c.status.value,
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": iso(c.last_transition_time),
        }
        for c in conditions
    ]


#: What `get` and `describe` show instead of an environment value: it may be a secret.
MASK = "********"


def masked_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """An agent's spec with its env values masked (a `valueFrom` source is shown: not a secret)."""
    env = spec.get("env")
    if not env:
        return spec
    masked = {name: value if isinstance(value, dict) else MASK for name, value in env.items()}
    return {**spec, "env": masked}


def agent_item(
    stored: StoredObject, record: AgentRecord | None, usage: UsageTotals | None = None
) -> dict[str, Any]:
    """One agent as `-o json` shows it: its manifest plus metadata and status."""
    document = stored.document
    metadata = {
        **document["metadata"],
        "uid": stored.uid,
        "generation": stored.generation,
        "creationTimestamp": iso(stored.created),
        "source": f"{stored.source}:{stored.line}" if stored.line else stored.source,
    }
    return {
        "apiVersion": document["apiVersion"],
        "kind": document["kind"],
        "metadata": metadata,
        "spec": masked_spec(document["spec"]),
        "status": agent_status(record, usage),
    }


def agent_row(
    stored: StoredObject, record: AgentRecord | None, wide: bool, usage: UsageTotals | None = None
) -> list[Any]:
    """One row of `orch get agents`."""
    status = agent_status(record)
    row = [stored.name, status["state"], status["restarts"], age(stored.created), status["reason"]]
    if wide:
        spec = stored.document["spec"]
        row += [
            status["activity"],
            age(record.since) if record else "",
            record.pid if record else "",
            spec.get("profile", "generic"),
            *usage_cells(usage),
            spec["command"],
            live_message(record, time.time()) if record else status["message"],
        ]
    return row


def usage_cells(usage: UsageTotals | None) -> tuple[str, str]:
    """The TOKENS and COST cells of an agent (`get -o wide`, `orch top`); empty when none."""
    if usage is None:
        return "", ""
    return count(usage.tokens), f"${usage.cost_usd:.2f}"


def describe_agent(
    stored: StoredObject,
    record: AgentRecord | None,
    transitions: list[StoredTransition],
    events: list[StoredEvent],
    messages: list[QueuedMessage],
    backups: list[Path],
    worktree: tuple[Path, WorktreeStatus | None] | None = None,
    usage: UsageTotals | None = None,
    signals: Sequence[AgentSignal] = (),
) -> str:
    """`orch describe agent NAME`: spec, status, conditions, transitions, messages and events.

    `worktree` is the agent's worktree and where it stands, for an agent with a workspace;
    `signals` the agent's last own signals, newest first.
    """
    from reconciler.core.profiles import resume_command

    now = time.time()
    spec = stored.document["spec"]
    labels = stored.document["metadata"].get("labels") or {}
    status = agent_status(record)
    fields: list[tuple[str, Any]] = [
        ("Name", stored.name),
        ("Labels", ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"),
        ("Source", f"{stored.source}:{stored.line}" if stored.line else stored.source),
        ("Generation", stored.generation),
        ("Command", spec["command"]),
        (
            "Restart Command",
            resume_command(
                spec["command"], spec.get("profile", "generic"), spec.get("restartCommand")
            ),
        ),
        ("Workdir", spec.get("workdir")),
        ("Profile", spec.get("profile", "generic")),
        ("Restart Policy", spec.get("restartPolicy", "Always")),
        *_worktree_fields(spec, worktree),
        ("Usage", _usage_line(usage)),
        *_supervision(spec),
        ("State", status["state"]),
        ("Activity", status["activity"]),
        ("Reason", status["reason"]),
        ("Message", live_message(record, now) if record else status["message"]),
    ]
    if record is not None:
        fields += [
            ("Since", f"{local_time(record.since)} ({age(record.since, now)} ago)"),
            ("Restarts", f"{record.restarts} (manual: {record.manual_restarts})"),
            ("PID", record.pid if record.pid is not None else "<none>"),
            ("Last Exit Code", record.exit_code if record.exit_code is not None else "<none>"),
            ("Signals", record.signals),
            ("Session ID", record.session_id or "<none>"),
        ]
        if record.backoff_until is not None:
            fields.append(("Backoff Until", local_time(record.backoff_until)))
        if record.cooldown_until is not None:
            fields.append(("Cooldown Until", local_time(record.cooldown_until)))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label + ':':<{width}}{value}" for label, value in fields]
    lines += _rules(spec)
    conditions = record.conditions if record else ()
    lines.append("Conditions:")
    lines.append(
        _indent(
            table(
                ("type", "status", "reason", "age", "message"),
                [
                    (c.type, c.status, c.reason, age(c.last_transition_time, now), c.message)
                    for c in conditions
                ],
            )
        )
        if conditions
        else "  <none>"
    )
    lines.append("Transitions:")
    lines.append(
        _indent(
            table(
                ("age", "from", "to", "trigger", "reason"),
                [
                    (
                        age(t.time, now),
                        t.transition.source,
                        t.transition.dest,
                        t.transition.trigger,
                        t.transition.reason,
                    )
                    for t in transitions
                ],
            )
        )
        if transitions
        else "  <none>"
    )
    lines.append("Messages:")
    lines.append(
        _indent(
            table(
                ("id", "from", "size", "queued", "state", "delivered"),
                [
                    (
                        m.id,
                        m.sender,
                        human_size(len(m.text.encode())),
                        age(m.created, now),
                        "Uncertain" if m.phase == "uncertain" else m.phase,
                        local_time(m.delivered_at) if m.delivered_at else "",
                    )
                    for m in messages
                ],
            )
        )
        if messages
        else "  <none>"
    )
    lines.append("Signals:")
    lines.append(
        _indent(
            table(
                ("age", "event", "detail"),
                [(age(s.at, now), s.event, _signal_detail(s)) for s in signals],
            )
        )
        if signals
        else "  <none>"
    )
    lines.append("Guard Backups:")
    lines.extend(f"  {backup}" for backup in backups[-10:])
    if not backups:
        lines.append("  <none>")
    lines.append("Events:")
    lines.append(_indent(event_table(events, now)) if events else "  <none>")
    return "\n".join(lines)


def _worktree_fields(
    spec: dict[str, Any], worktree: tuple[Path, WorktreeStatus | None] | None
) -> list[tuple[str, Any]]:
    """Worktree, branch against its base, and uncommitted files of an agent with a workspace."""
    if worktree is None or "workspace" not in spec:
        return []
    path, status = worktree
    base = spec["workspace"]["worktree"].get("base", "HEAD")
    if status is None:
        return [("Worktree", f"{path} (missing)")]
    dirty = ", ".join(status.dirty[:10]) + (" …" if len(status.dirty) > 10 else "")
    return [
        ("Worktree", str(path)),
        ("Branch", f"{status.branch} ({status.ahead} ahead, {status.behind} behind {base})"),
        ("Uncommitted", f"{len(status.dirty)} files: {dirty}" if status.dirty else "<none>"),
    ]


def _usage_line(usage: UsageTotals | None) -> str:
    if usage is None:
        return "<none recorded>"
    return (
        f"{count(usage.input_tokens)} in, {count(usage.output_tokens)} out, "
        f"{count(usage.cache_read_tokens)} cache read, ${usage.cost_usd:.4f} in {usage.calls} calls"
    )


def _step_usage(run: str, usage: dict[str, UsageTotals]) -> str:
    """Tokens and cost per step of one run, and their sum."""
    from reconciler.core.usage import UsageTotals

    steps = {key.split("/", 1)[1]: t for key, t in usage.items() if key.startswith(f"{run}/")}
    if not steps:
        return "<none recorded>"
    steps["(total)"] = UsageTotals(
        sum(t.input_tokens for t in steps.values()),
        sum(t.output_tokens for t in steps.values()),
        sum(t.cache_read_tokens for t in steps.values()),
        sum(t.cost_usd for t in steps.values()),
        sum(t.calls for t in steps.values()),
    )
    return usage_table(steps, "step")


def count(n: int) -> str:
    """A token count as people read it: 950, 12.3k, 4.5M."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def usage_table(totals: dict[str, UsageTotals], by: str) -> str:
    """`orch usage`: one row per agent, account or run."""
    rows = [
        (key, t.calls, count(t.input_tokens), count(t.output_tokens), count(t.cache_read_tokens),
         f"${t.cost_usd:.4f}")
        for key, t in totals.items()
    ]  # fmt: skip
    return table((by, "calls", "input", "output", "cache read", "cost"), rows)


#: Columns of `orch events`, and the least widths `events -w` gives them so later rows align.
EVENT_COLUMNS = ("last seen", "type", "reason", "object", "message")
EVENT_MIN_WIDTHS = (9, 7, 20, 24, 0)


def event_row(event: StoredEvent, now: float | None = None) -> list[Any]:
    """One event as a row of `orch events`."""
    return [age(event.time, now), event.type, event.reason, event.object, event.message]


def live_message(record: AgentRecord, now: float) -> str:
    """The status message, with "alive for" computed now rather than when it was written."""
    if record.state is AgentState.RUNNING and record.reason == "Started":
        started = record.started_at if record.started_at is not None else record.since
        return f"running: alive for {human_duration(now - started)}"
    return record.message


def _supervision(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    """One line each for stale, idle, crash-loop, rate-limit and talksTo settings."""
    fields: list[tuple[str, Any]] = []
    stale = spec.get("stale")
    if stale:
        nudge = f" (nudge {stale.get('nudge')!r})" if stale.get("action") == "nudge" else ""
        fields.append(("Stale", f"after {stale.get('after')}: {stale.get('action')}{nudge}"))
    idle = spec.get("idle")
    if idle:
        fields.append(("Idle", f"after {idle.get('after')}: {idle.get('action')}"))
    loop = spec.get("crashLoop") or {}
    if loop:
        fields.append(
            (
                "Crash Loop",
                (
                    f"{loop.get('maxRestarts')} restarts within {loop.get('window')}, backoff "
                    f"{loop.get('backoff')} up to {loop.get('maxBackoff')}"
                ),
            )
        )
    limit = spec.get("rateLimit")
    if limit:
        account = f", account {limit['account']}" if limit.get("account") else ""
        fields.append(
            (
                "Rate Limit",
                f"cooldown {limit.get('cooldown')}, resume {limit.get('resume')!r}{account}"
                + (f", patterns {limit['patterns']}" if limit.get("patterns") else ""),
            )
        )
    fields.append(("Talks To", ", ".join(spec.get("talksTo") or []) or "<anyone>"))
    return fields


def _rules(spec: dict[str, Any]) -> list[str]:
    """Prompt rules, human patterns, ignored regions and guards, one per line."""
    lines = ["Prompts:"]
    for rule in spec.get("prompts") or []:
        reply = f"keys {' '.join(rule['keys'])}" if rule.get("keys") else repr(rule.get("answer"))
        enter = "" if rule.get("keys") or rule.get("enter", True) else " (no Enter)"
        lines.append(f"  {rule['match']!r} -> {reply}{enter}")
    if len(lines) == 1:
        lines.append("  <none>")
    for title, key in (("Human Patterns", "humanPatterns"), ("Ignore", "ignore")):
        if spec.get(key):
            lines.append(f"{title}:")
            lines.extend(f"  {pattern!r}" for pattern in spec[key])
    lines.append("Guards:")
    guards = spec.get("guards") or []
    lines.extend(f"  {g.get('action', 'restore')}: {', '.join(g['protect'])}" for g in guards)
    if not guards:
        lines.append("  <none>")
    return lines


def event_table(events: list[StoredEvent], now: float | None = None) -> str:
    """Events as `orch events` lists them."""
    return table(EVENT_COLUMNS, [event_row(e, now) for e in events])


def event_item(event: StoredEvent) -> dict[str, Any]:
    """One event in `orch events -o json`."""
    return {
        "time": iso(event.time),
        "object": event.object,
        "type": event.type.value,
        "reason": event.reason,
        "message": event.message,
    }


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def run_item(run: StoredRun) -> dict[str, Any]:
    """One playbook run as `-o json` shows it."""
    record = run.record
    current = record.steps[min(record.step, len(record.steps) - 1)] if record.steps else None
    return {
        "apiVersion": "orch/v1",
        "kind": "Run",
        "metadata": {"name": run.name, "creationTimestamp": iso(run.created)},
        "spec": {"playbook": run.playbook, "params": record.params},
        "status": {
            "state": record.state.value,
            "step": current.name if current else None,
            "attempt": current.attempt if current else 0,
            "reason": record.reason,
            "message": record.message,
            "since": iso(record.since),
            "conditions": _conditions(record.conditions),
            "steps": [
                {
                    "name": s.name,
                    "agent": s.agent,
                    "phase": s.phase.value,
                    "attempt": s.attempt,
                    "startedAt": iso(s.started_at),
                    "finishedAt": iso(s.finished_at),
                    "reason": s.reason,
                    "gates": [_gate_item(g) for g in s.current_gates],
                    "earlierGates": [_gate_item(g) for g in s.gates if g.attempt != s.attempt],
                }
                for s in record.steps
            ],
        },
    }


def _gate_item(gate: GateResult) -> dict[str, Any]:
    """One gate result as `-o json` shows it, with the attempt it was evaluated for."""
    return {
        "name": gate.name,
        "attempt": gate.attempt,
        "passed": gate.passed,
        "pending": gate.pending,
        "output": gate.output,
        "seconds": round(gate.duration, 3),
    }


RUN_COLUMNS = ("name", "playbook", "state", "step", "attempt", "age", "reason")
RUN_MIN_WIDTHS = (20, 12, 13, 12, 7, 5, 16)


def run_row(run: StoredRun) -> list[Any]:
    """One row of `orch get runs`."""
    status = run_item(run)["status"]
    return [
        run.name,
        run.playbook,
        status["state"],
        status["step"],
        status["attempt"],
        age(run.created),
        status["reason"],
    ]


def describe_run(
    run: StoredRun, events: list[StoredEvent], usage: dict[str, UsageTotals] | None = None
) -> str:
    """`orch describe run NAME`: every step, attempt and gate result with its output, and what
    each step cost (`usage`: totals by `run/step`)."""
    now = time.time()
    record = run.record
    status = run_item(run)["status"]
    params = ", ".join(f"{k}={v}" for k, v in record.params.items()) or "<none>"
    lines = [
        f"Name:       {run.name}",
        f"Playbook:   {run.playbook}",
        f"Params:     {params}",
        f"State:      {status['state']}",
        f"Reason:     {record.reason}",
        f"Message:    {record.message}",
        f"Since:      {local_time(record.since)} ({age(record.since, now)} ago)",
        f"Step:       {status['step']} (attempt {status['attempt']})",
        *(f"Condition:  {c.type}={c.status} {c.reason}: {c.message}" for c in record.conditions),
        "Steps:",
        _indent(
            table(
                ("step", "agent", "phase", "attempt", "started", "finished", "reason"),
                [
                    (
                        s.name,
                        s.agent,
                        s.phase,
                        s.attempt,
                        local_time(s.started_at) if s.started_at else "",
                        local_time(s.finished_at) if s.finished_at else "",
                        s.reason,
                    )
                    for s in record.steps
                ],
            )
        ),
        "Usage:",
        _indent(_step_usage(run.name, usage or {})),
        "Gates:",
    ]
    lines.extend(_gate_lines(record.steps) or ["  <none>"])
    lines.append("Events:")
    lines.append(_indent(event_table(events, now)) if events else "  <none>")
    return "\n".join(lines)


def _gate_lines(steps: Iterable[StepStatus]) -> list[str]:
    """Each step's gate results grouped by the attempt they were evaluated for, the current
    attempt's marked as such (a `when` is attempt 0: checked before the first attempt)."""
    lines: list[str] = []
    for step in steps:
        for attempt in sorted({g.attempt for g in step.gates}, reverse=True):
            label = f"attempt {attempt}" if attempt else "when"
            current = " (current)" if attempt == step.attempt else ""
            lines.append(f"  {step.name} {label}{current}:")
            for gate in (g for g in step.gates if g.attempt == attempt):
                verdict = "pending" if gate.pending else ("passed" if gate.passed else "FAILED")
                lines.append(f"    {gate.name}: {verdict} ({gate.duration:.1f}s)")
                lines.extend(f"        {line}" for line in gate.output.splitlines()[-20:])
    return lines


#: Columns of `orch get playbooks` and `orch get notifiers`.
PLAYBOOK_COLUMNS = ("name", "steps", "agents", "age")
NOTIFIER_COLUMNS = ("name", "transport", "on", "age")


def playbook_row(stored: StoredObject) -> list[Any]:
    """One row of `orch get playbooks`."""
    steps = stored.document["spec"]["steps"]
    agents = ",".join(sorted({s["agent"] for s in steps}))
    return [stored.name, len(steps), agents, age(stored.created)]


def notifier_row(stored: StoredObject) -> list[Any]:
    """One row of `orch get notifiers`."""
    spec = stored.document["spec"]
    transport = notifier_transport(stored.document)
    return [stored.name, transport, ",".join(spec["on"]), age(stored.created)]


def object_item(stored: StoredObject) -> dict[str, Any]:
    """A playbook or notifier as `-o json` shows it (secrets redacted)."""
    document = redacted(stored.document)
    return {
        **document,
        "metadata": {
            **document["metadata"],
            "uid": stored.uid,
            "generation": stored.generation,
            "creationTimestamp": iso(stored.created),
        },
    }


def describe_document(stored: StoredObject, events: list[StoredEvent]) -> str:
    """`describe playbook|notifier NAME`: where it comes from, its spec as written (secrets
    redacted; multi-line prompts printed with their real line breaks), and its events."""
    now = time.time()
    document = redacted(stored.document)
    lines = [
        f"Name:        {stored.name}",
        f"Kind:        {stored.kind}",
        f"Source:      {stored.source}:{stored.line}"
        if stored.line
        else f"Source: {stored.source}",
        f"Generation:  {stored.generation}",
        f"Created:     {local_time(stored.created)} ({age(stored.created, now)} ago)",
        "Spec:",
        _indent(to_yaml(document["spec"]).rstrip("\n")),
        "Events:",
        _indent(event_table(events, now)) if events else "  <none>",
    ]
    return "\n".join(lines)


def _signal_detail(signal: AgentSignal) -> str:
    """The telling fields of a signal's payload, on one line (they are hostile: made printable)."""
    shown = ("notification_type", "error", "source", "reason", "type", "tool_name")
    words = [f"{k}={signal.payload[k]}" for k in shown if signal.payload.get(k)]
    return "".join(c if c.isprintable() else "?" for c in " ".join(words))[:80]
