"""Reading what each agent spent from its CLI's own records, and holding agents to their budgets.

Runs inside the controller's pass, but at most every `USAGE_INTERVAL_SECONDS`: spend is a slow
fact, and each look is a few `stat`s plus reading the bytes added since the last one. A call is
attributed to the agent whose workdir (and HOME) the record belongs to, to its rateLimit account,
and to the playbook run and step the agent was working on when orch read it.

A spent budget with `action: cooldown` becomes a cooldown deadline under `budget_key(agent)` in
the same table as account cooldowns, so the health machine sits it out like a usage limit and
resumes the agent when the window frees up; `action: stop` is a deadline under
`budget_stop_key(agent)`, until which the planner keeps the agent Stopped (its spec and any
`orch stop` hold untouched; `orch start agent` starts it at once); `warn` only raises the events.
A budget with `scope: account` counts every call of the agents on its `rateLimit.account`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.adapters.store import Store
from reconciler.adapters.store_rows import StoredUsage
from reconciler.adapters.transcripts import read_new_lines, transcript_files
from reconciler.api.history import Event, EventType
from reconciler.api.manifest import AgentSpec
from reconciler.core.agent_plan import DesiredAgent
from reconciler.core.usage import (
    USAGE_PROFILES,
    budget_key,
    budget_stop_key,
    budget_verdict,
    parse_line,
)

log = logging.getLogger(__name__)

#: How often the agents' usage records are read.
USAGE_INTERVAL_SECONDS = 5.0


@dataclass
class UsageCollector:
    """Turns new lines of the agents' usage records into stored calls, and budgets into events."""

    store: Store
    _next: float = 0.0
    _budget_state: dict[str, str] | None = None

    def collect(
        self, desired: Mapping[str, DesiredAgent], now: float
    ) -> tuple[list[Event], dict[str, float | None]]:
        """Read new usage if it is time; return budget events and budget cooldowns to record."""
        if now < self._next:
            return [], {}
        self._next = now + USAGE_INTERVAL_SECONDS
        recording = {n: a for n, a in desired.items() if a.agent.spec.profile in USAGE_PROFILES}
        if recording:  # the queries only for agents whose CLI keeps usage records
            created = {o.name: o.created for o in self.store.objects("Agent")}
            working = self._working_on()
            for name, agent in recording.items():
                spec = agent.agent.spec
                try:
                    self._read(name, spec, created.get(name, now), working.get(name), now)
                except OSError as err:  # a record we may not read is not a failed pass
                    log.warning("usage of agent/%s: %s", name, err)
        return self._budgets(desired, now)

    def _read(
        self,
        name: str,
        spec: AgentSpec,
        since: float,
        working: tuple[str, str] | None,
        now: float,
    ) -> None:
        offsets = self.store.usage_offsets(name)
        account = spec.rate_limit.account if spec.rate_limit else None
        run, step = working or (None, None)
        calls: list[StoredUsage] = []
        moved: dict[str, int] = {}
        env = {key: value for key, value in spec.env.items() if isinstance(value, str)}
        for path in transcript_files(spec.profile, spec.workdir, env, since):
            key = str(path)
            start = offsets.get(key)
            if start is None and path.stat().st_mtime < since:
                start = path.stat().st_size  # a record from before the agent: only what follows
            lines, end = read_new_lines(path, start or 0)
            for offset, line in lines:
                entry = parse_line(spec.profile, line, f"{key}:{offset}")
                if entry is not None:
                    calls.append(StoredUsage(name, now, entry, account, run, step))
            if end != offsets.get(key):
                moved[key] = end
        if calls or moved:
            self.store.record_usage(name, calls, moved)

    def _working_on(self) -> dict[str, tuple[str, str]]:
        """The run and step each agent works on now (the current step of an unfinished run)."""
        working = {}
        for run in self.store.runs(unfinished_only=True):
            record = run.record
            if record.step < len(record.steps):
                step = record.steps[record.step]
                working[step.agent] = (record.name, step.name)
        return working

    def _recorded_states(self, desired: Mapping[str, DesiredAgent]) -> dict[str, str]:
        """Budgets spent before this controller started: their deadlines are in the store, so
        a restarted controller neither says BudgetExhausted again nor stops an agent a person
        started meanwhile (a start leaves its deadline expired, not gone)."""
        recorded = self.store.cooldowns()
        return {
            name: "exhausted"
            for name in desired
            if budget_key(name) in recorded or budget_stop_key(name) in recorded
        }

    def _budgets(
        self, desired: Mapping[str, DesiredAgent], now: float
    ) -> tuple[list[Event], dict[str, float | None]]:
        events: list[Event] = []
        cooldowns: dict[str, float | None] = {}
        if self._budget_state is None:
            self._budget_state = self._recorded_states(desired)
        for name in [n for n in self._budget_state if n not in desired]:
            if self._budget_state.pop(name) == "exhausted":  # deleted: its deadlines go too
                cooldowns.update({budget_key(name): None, budget_stop_key(name): None})
        for name, agent in desired.items():
            spec = agent.agent.spec
            budget = spec.budget
            if budget is None:
                if self._budget_state.pop(name, "ok") == "exhausted":  # the budget was removed
                    cooldowns.update({budget_key(name): None, budget_stop_key(name): None})
                continue
            account = spec.rate_limit.account if spec.rate_limit else None
            if budget.scope == "account" and account is not None:
                calls = self.store.usage(now - budget.window, account=account)
                whose = f"account {account}'s budget"
            else:
                calls = self.store.usage(now - budget.window, name)
                whose = "budget"
            verdict = budget_verdict(
                budget.tokens, budget.usd, budget.window, [(c.time, c.entry) for c in calls], now
            )
            before = self._budget_state.get(name, "ok")
            self._budget_state[name] = verdict.state
            if verdict.state == before:
                continue
            if before == "exhausted":  # under budget again (the window freed up, or it was raised)
                cooldowns.update({budget_key(name): None, budget_stop_key(name): None})
            obj = f"agent/{name}"
            if verdict.state == "warning":
                events.append(
                    Event(obj, EventType.WARNING, "BudgetWarning", f"80% spent: {verdict.spent}")
                )
            elif verdict.state == "exhausted":
                what = {"cooldown": "cooling down", "warn": "warning only", "stop": "stopping"}
                events.append(
                    Event(
                        obj,
                        EventType.WARNING,
                        "BudgetExhausted",
                        f"{whose} spent: {verdict.spent}; {what[budget.action]}",
                    )
                )
                frees_at = verdict.frees_at or now + budget.window
                if budget.action == "cooldown":
                    cooldowns[budget_key(name)] = frees_at
                elif budget.action == "stop":
                    cooldowns[budget_stop_key(name)] = frees_at
        return events, cooldowns
