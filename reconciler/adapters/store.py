"""The SQLite store under the state dir: desired objects, agent records, transitions and events.

The one adapter for persistence. The CLI writes desired objects (with a generation bumped on every
change); only the controller writes agent records. Every write is one transaction, and WAL mode
with a busy timeout keeps concurrent CLI and controller use consistent, also after a kill -9.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reconciler.adapters.signal_inbox import SCHEMA as SIGNALS_SCHEMA
from reconciler.adapters.statedir import ensure_state_dir, open_private
from reconciler.api.activity import Activity
from reconciler.api.intents import AgentIntent, AnswerOutcome, PendingAnswer
from reconciler.api.status import (
    AgentRecord,
    AgentState,
    Condition,
    ConditionStatus,
    Event,
    EventType,
    RunState,
    Transition,
)
from reconciler.core.signals import AgentSignal
from reconciler.core.usage import UsageEntry, UsageTotals

if TYPE_CHECKING:
    # Imported where rows become these objects: `orch get agents` and `orch send` build none.
    from reconciler.core.delivery import QueuedMessage
    from reconciler.core.runs import RunRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    generation INTEGER NOT NULL,
    source TEXT NOT NULL,
    line INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS sources (file TEXT PRIMARY KEY, applied REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agent_records (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL, object TEXT NOT NULL, source TEXT NOT NULL, dest TEXT NOT NULL,
    trigger TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL, object TEXT NOT NULL, type TEXT NOT NULL,
    reason TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,
    created REAL NOT NULL,
    phase TEXT NOT NULL DEFAULT 'queued', phase_at REAL, screen_digest TEXT NOT NULL DEFAULT '',
    enters INTEGER NOT NULL DEFAULT 0, delivered_at REAL
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages (agent, delivered_at, id);
CREATE INDEX IF NOT EXISTS messages_open ON messages (phase, agent, id);
CREATE TABLE IF NOT EXISTS cooldowns (account TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY, playbook TEXT NOT NULL, spec TEXT NOT NULL, record TEXT NOT NULL,
    created REAL NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS run_signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL, kind TEXT NOT NULL,
    step TEXT NOT NULL, created REAL NOT NULL, consumed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS usage (
    agent TEXT NOT NULL, key TEXT NOT NULL, time REAL NOT NULL, model TEXT NOT NULL,
    input INTEGER NOT NULL, output INTEGER NOT NULL, cache_read INTEGER NOT NULL, cost REAL,
    account TEXT, run TEXT, step TEXT,
    PRIMARY KEY (agent, key)
);
CREATE INDEX IF NOT EXISTS usage_time ON usage (time);
CREATE TABLE IF NOT EXISTS usage_files (
    agent TEXT NOT NULL, path TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (agent, path)
);
CREATE TABLE IF NOT EXISTS agent_intents (
    name TEXT PRIMARY KEY, held_by TEXT, held_at REAL,
    request_seq INTEGER NOT NULL DEFAULT 0, request_verb TEXT NOT NULL DEFAULT '',
    request_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, text TEXT NOT NULL,
    keys TEXT NOT NULL, enter INTEGER NOT NULL, by TEXT NOT NULL, created REAL NOT NULL,
    done_at REAL, answered INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_object ON events (object, id);
CREATE INDEX IF NOT EXISTS transitions_object ON transitions (object, id);
"""

#: Columns added after a table was first shipped: (table, column, declaration). A store made by an
#: older orch gets them when it is opened.
ADDED_COLUMNS = (
    # The pane log position written ahead with a paste: the evidence for an unsettled one.
    ("messages", "log_inode", "INTEGER"),
    ("messages", "log_offset", "INTEGER"),
    # The recipient's identity: its object's creation time, so a message queued to a deleted
    # agent never reaches a new agent of the same name.
    ("messages", "agent_created", "REAL"),
)

#: A message's recipient is the agent object it was queued for (rows from before
#: agent_created existed go to whichever agent has the name).
_SAME_AGENT = (
    "(agent_created IS NULL OR agent_created ="
    " (SELECT created FROM objects WHERE kind = 'Agent' AND name = messages.agent))"
)
#: The recipient's creation time, looked up when a message is queued.
_AGENT_CREATED = "(SELECT created FROM objects WHERE kind = 'Agent' AND name = ?)"
_OPEN = "phase NOT IN ('delivered', 'unconfirmed', 'uncertain')"

#: History kept per table; older rows are pruned so a week-long run does not grow without bound.
HISTORY_ROWS = 20_000

DB_NAME = "orch.db"


@dataclass(frozen=True)
class StoredObject:
    """A desired object as applied: its manifest document and where it came from."""

    kind: str
    name: str
    document: dict[str, Any]
    generation: int
    source: str
    line: int | None
    created: float
    updated: float


@dataclass(frozen=True)
class Change:
    """What an apply does (or would do) to one object."""

    kind: str
    name: str
    verb: str  # created | configured | unchanged | deleted
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True)
class StoredEvent:
    """An event as persisted, with its id and time."""

    id: int
    time: float
    object: str
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class StoredTransition:
    """A machine transition as persisted, with its time."""

    id: int
    time: float
    transition: Transition


@dataclass(frozen=True)
class Declaration:
    """An object an apply declares: kind, name, its document and where it is written."""

    kind: str
    name: str
    document: dict[str, Any]
    source: str
    line: int | None


class Store:
    """One connection to the store of one state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = ensure_state_dir(state_dir)
        self.path = state_dir / DB_NAME
        if not self.path.exists():
            # Created private before SQLite opens it (a planted symlink is refused). Never open
            # and close an existing store file ourselves: closing any descriptor of it drops every
            # POSIX lock this process holds on it, the locks of another connection included.
            os.close(open_private(self.path, os.O_CREAT | os.O_RDWR))
        os.chmod(self.path, 0o600)
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self.transaction():
            for statement in (SCHEMA + ";" + SIGNALS_SCHEMA).split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            _add_columns(self._conn)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- desired objects (written by apply and delete) -------------------------------------------

    def plan_apply(self, declared: Sequence[Declaration], files: Iterable[str]) -> list[Change]:
        """What applying `declared` from `files` would change, without changing anything."""
        return _changes(self._conn, declared, files)

    def apply(self, declared: Sequence[Declaration], files: Iterable[str]) -> list[Change]:
        """Record `declared` as the desired state; objects `files` no longer declare are deleted."""
        files = list(files)
        now = time.time()
        with self.transaction() as conn:
            changes = _changes(conn, declared, files)
            by_key = {(d.kind, d.name): d for d in declared}
            for change in changes:
                key = (change.kind, change.name)
                if change.verb == "deleted":
                    conn.execute("DELETE FROM objects WHERE kind=? AND name=?", key)
                    continue
                decl = by_key[key]
                conn.execute(
                    """INSERT INTO objects
                       (kind, name, document, generation, source, line, created, updated)
                       VALUES (?, ?, ?, 1, ?, ?, ?, ?)
                       ON CONFLICT (kind, name) DO UPDATE SET
                         document=excluded.document, source=excluded.source, line=excluded.line,
                         generation=generation + (document != excluded.document),
                         updated=CASE WHEN document != excluded.document
                                      THEN excluded.updated ELSE updated END""",
                    (decl.kind, decl.name, _dumps(decl.document), decl.source, decl.line, now, now),
                )
            conn.executemany(
                "INSERT OR REPLACE INTO sources (file, applied) VALUES (?, ?)",
                [(f, now) for f in files],
            )
        return changes

    def delete_object(self, kind: str, name: str) -> bool:
        """Forget a desired object; the controller then stops what runs of it."""
        with self.transaction() as conn:
            cursor = conn.execute("DELETE FROM objects WHERE kind=? AND name=?", (kind, name))
            return cursor.rowcount > 0

    def objects(self, kind: str) -> list[StoredObject]:
        """Every desired object of `kind`, by name."""
        rows = self._conn.execute(
            "SELECT kind, name, document, generation, source, line, created, updated"
            " FROM objects WHERE kind=? ORDER BY name",
            (kind,),
        ).fetchall()
        return [_stored_object(row) for row in rows]

    def object(self, kind: str, name: str) -> StoredObject | None:
        """One desired object, or None."""
        row = self._conn.execute(
            "SELECT kind, name, document, generation, source, line, created, updated"
            " FROM objects WHERE kind=? AND name=?",
            (kind, name),
        ).fetchone()
        return _stored_object(row) if row else None

    def sources(self) -> list[str]:
        """Manifest files that were applied and still declare something: watched for live edits."""
        rows = self._conn.execute(
            "SELECT file FROM sources WHERE file IN (SELECT source FROM objects) ORDER BY file"
        ).fetchall()
        return [row[0] for row in rows]

    # -- agent records (written by the controller only) ------------------------------------------

    def agent_records(self) -> dict[str, AgentRecord]:
        """Every agent record, by name."""
        rows = self._conn.execute("SELECT name, record FROM agent_records").fetchall()
        return {name: _record_from_json(text) for name, text in rows}

    def agent_record(self, name: str) -> AgentRecord | None:
        """One agent's record, or None if the controller never handled it."""
        row = self._conn.execute(
            "SELECT record FROM agent_records WHERE name=?", (name,)
        ).fetchone()
        return _record_from_json(row[0]) if row else None

    def commit_pass(
        self,
        records: Mapping[str, AgentRecord | None],
        events: Sequence[Event],
        transitions: Sequence[Transition],
        messages: Sequence[QueuedMessage] = (),
        cooldowns: Mapping[str, float | None] | None = None,
    ) -> None:
        """Persist one controller pass at once: changed records (None: forget), history, events,
        delivery progress and account cooldowns (None: ended)."""
        if not (records or events or transitions or messages or cooldowns):
            return
        now = time.time()
        with self.transaction() as conn:
            _update_messages(conn, messages)
            for account, until in (cooldowns or {}).items():
                if until is None:
                    conn.execute("DELETE FROM cooldowns WHERE account=?", (account,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO cooldowns (account, until) VALUES (?, ?)",
                        (account, until),
                    )
            for name, record in records.items():
                if record is None:
                    conn.execute("DELETE FROM agent_records WHERE name=?", (name,))
                    conn.execute("DELETE FROM agent_signals WHERE agent=?", (name,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO agent_records (name, record) VALUES (?, ?)",
                        (name, _record_to_json(record)),
                    )
            conn.executemany(
                "INSERT INTO transitions (time, object, source, dest, trigger, reason, message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (now, t.object, t.source, t.dest, t.trigger, t.reason, t.message)
                    for t in transitions
                ],
            )
            _insert_events(conn, events, now)

    def write_ahead(
        self, name: str, record: AgentRecord | None, message: QueuedMessage | None
    ) -> None:
        """Commit an agent's record and its message's delivery phase now, outside the pass's
        commit: before a keystroke (the intent) and right after it (what happened)."""
        with self.transaction() as conn:
            if record is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO agent_records (name, record) VALUES (?, ?)",
                    (name, _record_to_json(record)),
                )
            if message is not None:
                _update_messages(conn, [message])

    # -- messages (queued by `orch send`, delivered by the controller) -----------------------

    def enqueue(self, agent: str, sender: str, text: str) -> int:
        """Queue a message for the agent of that name as it exists now; once this returns it is
        on disk and will not be lost."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (agent, sender, text, created, agent_created)"
                f" VALUES (?, ?, ?, ?, {_AGENT_CREATED})",
                (agent, sender, text, time.time(), agent),
            )
            return int(cursor.lastrowid or 0)

    def pending_messages(self) -> dict[str, QueuedMessage]:
        """The next message for each agent: one already on its way first, then the oldest.

        Messages queued to an earlier agent of the same name (deleted since) are left out.
        """
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {_OPEN} AND {_SAME_AGENT}"
            " ORDER BY agent, phase = 'queued', id"
        ).fetchall()
        heads: dict[str, QueuedMessage] = {}
        for row in rows:
            heads.setdefault(row[1], _message(row))
        return heads

    def message(self, message_id: int) -> QueuedMessage | None:
        """One message by id."""
        row = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=?", (message_id,)
        ).fetchone()
        return _message(row) if row else None

    def messages(self, agent: str, limit: int = 10) -> list[QueuedMessage]:
        """An agent's newest messages, delivered or not, oldest first."""
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE agent=? AND {_SAME_AGENT}"
            " ORDER BY id DESC LIMIT ?",
            (agent, limit),
        ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def cooldowns(self) -> dict[str, float]:
        """Shared cooldown deadlines by account."""
        return dict(self._conn.execute("SELECT account, until FROM cooldowns").fetchall())

    # -- usage (read from the agents' own transcripts by the controller) ------------------------

    def usage_offsets(self, agent: str) -> dict[str, int]:
        """How far each of an agent's usage records has been read, by file."""
        rows = self._conn.execute("SELECT path, offset FROM usage_files WHERE agent=?", (agent,))
        return dict(rows.fetchall())

    def record_usage(
        self, agent: str, calls: Sequence[StoredUsage], offsets: Mapping[str, int]
    ) -> int:
        """Add calls not seen before and move the read offsets, in one transaction; count new."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO usage (agent, key, time, model, input, output, cache_read,"
                " cost, account, run, step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (agent, c.entry.key, c.time, c.entry.model, c.entry.input_tokens,
                     c.entry.output_tokens, c.entry.cache_read_tokens, c.entry.cost_usd,
                     c.account, c.run, c.step)
                    for c in calls
                ],
            )  # fmt: skip
            added = conn.total_changes - before
            conn.executemany(
                "INSERT OR REPLACE INTO usage_files (agent, path, offset) VALUES (?, ?, ?)",
                [(agent, path, offset) for path, offset in offsets.items()],
            )
        return added

    def usage_totals(
        self, by: Literal["agent", "account", "run", "step"] = "agent", since: float = 0.0
    ) -> dict[str, UsageTotals]:
        """Usage summed per agent, account, run or run step (`run/step`) since `since`."""
        key = USAGE_GROUPS[by]
        rows = self._conn.execute(
            f"SELECT {key}, SUM(input), SUM(output), SUM(cache_read), SUM(COALESCE(cost, 0)),"
            f" COUNT(*) FROM usage WHERE time >= ? AND {key} IS NOT NULL"
            f" GROUP BY {key} ORDER BY {key}",
            (since,),
        )
        return {row[0]: UsageTotals(*row[1:]) for row in rows}

    def usage(self, since: float = 0.0, agent: str | None = None) -> list[StoredUsage]:
        """Recorded model calls since `since` (of one agent, or all), oldest first."""
        query = (
            "SELECT agent, key, time, model, input, output, cache_read, cost, account, run, step"
            " FROM usage WHERE time >= ?"
        )
        args: tuple[Any, ...] = (since,)
        if agent is not None:
            query += " AND agent = ?"
            args += (agent,)
        return [
            StoredUsage(
                row[0], row[2], UsageEntry(row[1], row[3], row[4], row[5], row[6], row[7]),
                row[8], row[9], row[10],
            )
            for row in self._conn.execute(query + " ORDER BY time, rowid", args)
        ]  # fmt: skip

    # -- playbook runs (created by `orch run`, advanced by the controller) ----------------------

    def create_run(self, record: RunRecord, spec: Mapping[str, Any]) -> None:
        """Record a new run with a snapshot of its playbook's spec (later edits do not touch it)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (name, playbook, spec, record, created) VALUES (?, ?, ?, ?, ?)",
                (record.name, record.playbook, _dumps(spec), _run_to_json(record), record.created),
            )

    def runs(self, unfinished_only: bool = False) -> list[StoredRun]:
        """Every run, oldest first; with `unfinished_only`, those the controller still has to
        move (not Succeeded or Failed, or cancelled), so finished runs cost a pass nothing."""
        where = (
            " WHERE cancelled = 1 OR json_extract(record, '$.state') NOT IN ('Succeeded', 'Failed')"
            if unfinished_only
            else ""
        )
        rows = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs{where} ORDER BY created, name")
        return [_stored_run(row) for row in rows.fetchall()]

    def run(self, name: str) -> StoredRun | None:
        """One run, or None."""
        row = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE name=?", (name,)).fetchone()
        return _stored_run(row) if row else None

    def cancel_run(self, name: str) -> bool:
        """Ask the controller to cancel and forget a run."""
        with self.transaction() as conn:
            return conn.execute("UPDATE runs SET cancelled=1 WHERE name=?", (name,)).rowcount > 0

    def save_run(
        self,
        record: RunRecord,
        prompts: Sequence[tuple[str, str, str]],
        consumed: Sequence[int],
        events: Sequence[Event],
    ) -> None:
        """A run's checkpoint with the prompts it queues and the signals it used, all at once."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET record=? WHERE name=?", (_run_to_json(record), record.name)
            )
            conn.executemany(
                "INSERT INTO messages (agent, sender, text, created, agent_created)"
                f" VALUES (?, ?, ?, ?, {_AGENT_CREATED})",
                [(agent, sender, text, now, agent) for agent, sender, text in prompts],
            )
            conn.executemany(
                "UPDATE run_signals SET consumed=1 WHERE id=?", [(i,) for i in consumed]
            )
            _insert_events(conn, events, now)

    def forget_run(self, name: str, event: Event) -> None:
        """Drop a cancelled run and the prompts it queued that were not delivered yet."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM runs WHERE name=?", (name,))
            conn.execute("DELETE FROM run_signals WHERE run=?", (name,))
            conn.execute("DELETE FROM messages WHERE sender=? AND phase='queued'", (f"run/{name}",))
            _insert_events(conn, [event], time.time())

    def add_signal(self, run: str, kind: str, step: str) -> None:
        """`orch approve` / `orch step done`: a fact for the controller to act on once."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO run_signals (run, kind, step, created) VALUES (?, ?, ?, ?)",
                (run, kind, step, time.time()),
            )

    def agent_signals_after(self, last_id: int) -> list[AgentSignal]:
        """Agents' own signals (`orch signal`) with ids above `last_id`, oldest first."""
        rows = self._conn.execute(
            "SELECT id, agent, event, payload, created FROM agent_signals WHERE id > ? ORDER BY id",
            (last_id,),
        ).fetchall()
        return [_agent_signal(row) for row in rows]

    def recent_agent_signals(self, agent: str, count: int) -> list[AgentSignal]:
        """The last `count` signals of `agent`, newest first (for describe)."""
        rows = self._conn.execute(
            "SELECT id, agent, event, payload, created FROM agent_signals WHERE agent = ?"
            " ORDER BY id DESC LIMIT ?",
            (agent, count),
        ).fetchall()
        return [_agent_signal(row) for row in rows]

    def signals(self) -> list[RunSignal]:
        """Signals not acted on yet, oldest first."""
        rows = self._conn.execute(
            "SELECT id, run, kind, step, created FROM run_signals WHERE consumed=0 ORDER BY id"
        ).fetchall()
        return [RunSignal(*row) for row in rows]

    def record_event(self, event: Event) -> None:
        """Persist one event outside a pass (a broken live edit, a controller start)."""
        with self.transaction() as conn:
            _insert_events(conn, [event], time.time())

    def prune_history(self) -> None:
        """Keep only the newest HISTORY_ROWS events and transitions."""
        with self.transaction() as conn:
            for table in ("events", "transitions"):
                conn.execute(
                    f"DELETE FROM {table} WHERE id <= (SELECT MAX(id) FROM {table}) - ?",
                    (HISTORY_ROWS,),
                )

    # -- history (read by the CLI) ---------------------------------------------------------------

    def events(
        self, obj: str | None = None, after_id: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events in order, optionally for one object and after a known id; `limit` newest."""
        query = "SELECT id, time, object, type, reason, message FROM events WHERE id > ?"
        params: list[Any] = [after_id]
        if obj:
            query += " AND object = ?"
            params.append(obj)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._conn.execute(query, params).fetchall()
        return [
            StoredEvent(row[0], row[1], row[2], EventType(row[3]), row[4], row[5])
            for row in reversed(rows)
        ]

    def transitions(self, obj: str, limit: int = 20) -> list[StoredTransition]:
        """The newest `limit` transitions of one object, oldest first."""
        rows = self._conn.execute(
            "SELECT id, time, object, source, dest, trigger, reason, message FROM transitions"
            " WHERE object=? ORDER BY id DESC LIMIT ?",
            (obj, limit),
        ).fetchall()
        return [
            StoredTransition(
                row[0],
                row[1],
                Transition(row[2], AgentState(row[3]), AgentState(row[4]), *row[5:8]),
            )
            for row in reversed(rows)
        ]

    # -- operator intents (written by `orch stop|start|restart|answer`, served by the controller) --

    def hold_agent(self, name: str, by: str) -> None:
        """`orch stop`: keep the agent Stopped until `orch start`."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO agent_intents (name, held_by, held_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET held_by=excluded.held_by,"
                " held_at=excluded.held_at",
                (name, by, time.time()),
            )

    def request_start(self, name: str, verb: str, by: str) -> int:
        """`orch restart|start`: lift any hold and ask for one (re)start; returns its number."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO agent_intents (name, request_seq, request_verb, request_by)"
                " VALUES (?, 1, ?, ?) ON CONFLICT (name) DO UPDATE SET held_by=NULL,"
                " held_at=NULL, request_seq=request_seq + 1, request_verb=excluded.request_verb,"
                " request_by=excluded.request_by",
                (name, verb, by),
            )
            row = conn.execute(
                "SELECT request_seq FROM agent_intents WHERE name=?", (name,)
            ).fetchone()
            return int(row[0])

    def add_answer(self, agent: str, text: str, keys: Sequence[str], enter: bool, by: str) -> int:
        """`orch answer`: queue an answer to the agent's live prompt."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO answers (agent, text, keys, enter, by, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (agent, text, json.dumps(list(keys)), int(enter), by, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def answer_outcome(self, answer_id: int) -> AnswerOutcome | None:
        """What became of an answer, or None while the controller has not served it."""
        row = self._conn.execute(
            "SELECT answered, detail FROM answers WHERE id=? AND done_at IS NOT NULL",
            (answer_id,),
        ).fetchone()
        return AnswerOutcome(answer_id, bool(row[0]), row[1]) if row else None

    def intents(self) -> dict[str, AgentIntent]:
        """Standing intents by agent, each with its oldest unserved answer."""
        found: dict[str, AgentIntent] = {}
        for name, held_by, held_at, seq, verb, by in self._conn.execute(
            "SELECT name, held_by, held_at, request_seq, request_verb, request_by"
            " FROM agent_intents"
        ):
            found[name] = AgentIntent(held_by, held_at, seq, verb, by)
        for id_, agent, text, keys, enter, by in self._conn.execute(
            "SELECT id, agent, text, keys, enter, by FROM answers WHERE done_at IS NULL"
            " ORDER BY id DESC"
        ):
            answer = PendingAnswer(id_, text, tuple(json.loads(keys)), bool(enter), by)
            found[agent] = replace(found.get(agent, AgentIntent()), answer=answer)
        return found

    def finish_answers(self, outcomes: Sequence[AnswerOutcome]) -> None:
        """Mark answers served, before their keys are typed: an answer is never typed twice."""
        if not outcomes:
            return
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE answers SET done_at=?, answered=?, detail=? WHERE id=?",
                [(time.time(), int(o.answered), o.detail, o.id) for o in outcomes],
            )

    def forget_intents(self, name: str) -> None:
        """A deleted agent's holds and answers go with it."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM agent_intents WHERE name=?", (name,))
            conn.execute("DELETE FROM answers WHERE agent=? AND done_at IS NULL", (name,))


def _changes(
    conn: sqlite3.Connection, declared: Sequence[Declaration], files: Iterable[str]
) -> list[Change]:
    files = list(files)
    changes = []
    declared_keys = set()
    for decl in declared:
        declared_keys.add((decl.kind, decl.name))
        row = conn.execute(
            "SELECT document FROM objects WHERE kind=? AND name=?", (decl.kind, decl.name)
        ).fetchone()
        old = json.loads(row[0]) if row else None
        if old is None:
            verb = "created"
        elif old == decl.document:
            verb = "unchanged"
        else:
            verb = "configured"
        changes.append(Change(decl.kind, decl.name, verb, old, decl.document))
    if files:
        marks = ",".join("?" * len(files))
        rows = conn.execute(
            f"SELECT kind, name, document FROM objects WHERE source IN ({marks})"
            " ORDER BY kind, name",
            files,
        ).fetchall()
        changes.extend(
            Change(kind, name, "deleted", json.loads(doc), None)
            for kind, name, doc in rows
            if (kind, name) not in declared_keys
        )
    return changes


RUN_COLUMNS = "name, playbook, spec, record, created, cancelled"


#: What `usage_totals` can group by, as SQL over the usage table (a fixed set: never user text).
USAGE_GROUPS = {"agent": "agent", "account": "account", "run": "run", "step": "run || '/' || step"}


@dataclass(frozen=True)
class StoredUsage:
    """One model call of an agent, with what it was working for when it made it."""

    agent: str
    time: float
    entry: UsageEntry
    account: str | None = None
    run: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class StoredRun:
    """A run as stored: its playbook snapshot and its checkpoint."""

    name: str
    playbook: str
    spec: dict[str, Any]
    record: RunRecord
    created: float
    cancelled: bool


@dataclass(frozen=True)
class RunSignal:
    """An `orch approve` or `orch step done` not acted on yet."""

    id: int
    run: str
    kind: str  # approve | done
    step: str
    created: float


def _stored_run(row: Sequence[Any]) -> StoredRun:
    return StoredRun(
        row[0], row[1], json.loads(row[2]), _run_from_json(row[3]), row[4], bool(row[5])
    )


def _run_to_json(record: RunRecord) -> str:
    return json.dumps(asdict(record), sort_keys=True)


def _run_from_json(text: str) -> RunRecord:
    from reconciler.core.runs import RunRecord, StepPhase, StepStatus
    from reconciler.core.steps import GateResult

    data = json.loads(text)
    steps = tuple(
        StepStatus(
            **{
                **step,
                "phase": StepPhase(step["phase"]),
                "gates": tuple(GateResult(**gate) for gate in step.get("gates", ())),
            }
        )
        for step in data.pop("steps", ())
    )
    return RunRecord(**{**data, "state": RunState(data["state"]), "steps": steps})


MESSAGE_COLUMNS = (
    "id, agent, sender, text, created, phase, phase_at, screen_digest, enters, delivered_at,"
    " log_inode, log_offset"
)


def _add_columns(conn: sqlite3.Connection) -> None:
    """Add the ADDED_COLUMNS a store made by an older orch lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _update_messages(conn: sqlite3.Connection, messages: Iterable[QueuedMessage]) -> None:
    conn.executemany(
        "UPDATE messages SET phase=?, phase_at=?, screen_digest=?, enters=?, delivered_at=?,"
        " log_inode=?, log_offset=? WHERE id=?",
        [
            (
                m.phase,
                m.phase_at,
                m.screen_digest,
                m.enters,
                m.delivered_at,
                m.log_inode,
                m.log_offset,
                m.id,
            )
            for m in messages
        ],
    )


def _message(row: Sequence[Any]) -> QueuedMessage:
    from reconciler.core.delivery import Phase, QueuedMessage

    return QueuedMessage(
        id=row[0],
        agent=row[1],
        sender=row[2],
        text=row[3],
        created=row[4],
        phase=Phase(row[5]),
        phase_at=row[6],
        screen_digest=row[7],
        enters=row[8],
        delivered_at=row[9],
        log_inode=row[10],
        log_offset=row[11],
    )


def _insert_events(conn: sqlite3.Connection, events: Iterable[Event], now: float) -> None:
    conn.executemany(
        "INSERT INTO events (time, object, type, reason, message) VALUES (?, ?, ?, ?, ?)",
        [(now, e.object, e.type, e.reason, e.message) for e in events],
    )


def _stored_object(row: Sequence[Any]) -> StoredObject:
    return StoredObject(row[0], row[1], json.loads(row[2]), *row[3:8])


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _agent_signal(row: Sequence[Any]) -> AgentSignal:
    try:
        payload = json.loads(row[3])
    except ValueError:
        payload = {}
    kept = {str(k): str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
    return AgentSignal(row[0], row[1], row[2], kept, row[4])


def _record_to_json(record: AgentRecord) -> str:
    return json.dumps(asdict(record), sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _record_from_json(text: str) -> AgentRecord:
    """Records are immutable, so an unchanged row parses to the same shared object."""
    data = json.loads(text)
    data["state"] = AgentState(data["state"])
    data["activity"] = Activity(data.get("activity", Activity.UNKNOWN))
    data["crash_times"] = tuple(data.get("crash_times", ()))
    data["activity"] = Activity(data.get("activity", Activity.UNKNOWN))
    data["pending_keys"] = tuple(data.get("pending_keys", ()))
    data["conditions"] = tuple(
        Condition(
            c["type"],
            ConditionStatus(c["status"]),
            c["reason"],
            c["message"],
            c["last_transition_time"],
        )
        for c in data.get("conditions", ())
    )
    known = AgentRecord.__dataclass_fields__
    return AgentRecord(**{k: v for k, v in data.items() if k in known})
