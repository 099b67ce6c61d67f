"""The SQLite store under the state dir: desired objects, agent records, transitions and events.

The one adapter for persistence. The CLI writes desired objects (with a generation bumped on every
change); only the controller writes agent records. Every write is one transaction, and WAL mode
with a busy timeout keeps concurrent CLI and controller use consistent, also after a kill -9.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

from reconciler.adapters.statedir import (
    ensure_state_dir,
    make_private,
    open_private,
    read_only_folder,
)
from reconciler.api.activity import Activity
from reconciler.api.errors import InvalidInput, Unavailable
from reconciler.api.status import AgentRecord, AgentState, Condition, ConditionStatus, RunState

TYPE_CHECKING = False  # typing's constant without importing typing (the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

    # Imported where rows become these objects: `orch get agents` and `orch send` build none
    # (each costs a read command start-up time: their dataclasses, regexes and imports).
    from reconciler.adapters.store_rows import (
        Change,
        Declaration,
        Intent,
        RunSignal,
        StoredRun,
        StoredUsage,
    )
    from reconciler.api.actions import Action
    from reconciler.api.history import Event, StoredEvent, StoredTransition, Transition
    from reconciler.api.intents import AgentIntent, AnswerOutcome
    from reconciler.api.messages import QueuedMessage
    from reconciler.core.runs import RunRecord
    from reconciler.core.signals import AgentSignal
    from reconciler.core.usage import UsageTotals

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

#: A message's recipient is the agent object it was queued for (rows from before uids existed
#: go to whichever agent has the name).
_SAME_AGENT = (
    "(agent_uid = '' OR agent_uid ="
    " (SELECT uid FROM objects WHERE kind = 'Agent' AND name = messages.agent))"
)
#: Messages still on their way (the others were delivered, or ended unconfirmed or uncertain).
_OPEN = "phase NOT IN ('delivered', 'unconfirmed', 'uncertain')"


def _add_identity(conn: sqlite3.Connection) -> None:
    """Version 2: objects get a uid; messages and records name the uid of the agent they are for;
    `step done` and approvals name the attempt they are about."""
    conn.execute("ALTER TABLE objects ADD COLUMN uid TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE messages ADD COLUMN agent_uid TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE run_signals ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0")
    rows = conn.execute("SELECT kind, name FROM objects").fetchall()
    conn.executemany(
        "UPDATE objects SET uid=? WHERE kind=? AND name=?",
        [(_new_uid(), kind, name) for kind, name in rows],
    )


def _add_intents(conn: sqlite3.Connection) -> None:
    """Version 3: the write-ahead journal of side effects (see `Store.intend`)."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT, object TEXT NOT NULL, uid TEXT NOT NULL,
            actions TEXT NOT NULL, planned TEXT NOT NULL, created REAL NOT NULL,
            outcome TEXT NOT NULL DEFAULT 'intended', error TEXT NOT NULL DEFAULT '',
            settled REAL)"""
    )
    conn.execute("CREATE INDEX IF NOT EXISTS intents_open ON intents (outcome, id)")


def _add_log_marks(conn: sqlite3.Connection) -> None:
    """Version 4: the pane log position written ahead with a paste, the evidence for an unsettled
    one (a store of an orch that had them before versions existed keeps its columns)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    for column in ("log_inode", "log_offset"):
        if column not in present:
            conn.execute(f"ALTER TABLE messages ADD COLUMN {column} INTEGER")


def _label_gate_attempts(conn: sqlite3.Connection) -> None:
    """Version 5: each gate result in a run's checkpoint names the attempt it was evaluated for.
    A checkpoint written before held only its step's current attempt's results, so that is the
    attempt they are labelled with."""
    updates = []
    for name, text in conn.execute("SELECT name, record FROM runs").fetchall():
        record = json.loads(text)
        for step in record.get("steps", ()):
            for gate in step.get("gates", ()):
                gate.setdefault("attempt", step.get("attempt", 0))
        updates.append((json.dumps(record, sort_keys=True), name))
    conn.executemany("UPDATE runs SET record=? WHERE name=?", updates)


#: Schema migrations, in order: entry i takes a store from `user_version` i+1 to i+2 (SCHEMA is
#: version 1, and a store written before versions existed reads as 0, which is the same shape).
#: Add a step at the end; never edit one that shipped.
MIGRATIONS = (_add_identity, _add_intents, _add_log_marks, _label_gate_attempts)
SCHEMA_VERSION = 1 + len(MIGRATIONS)

#: How long a command waits for another process's write transaction before saying the store is
#: locked (SQLite's busy timeout); a pass or a CLI write holds it for milliseconds.
BUSY_TIMEOUT_SECONDS = 3.0

#: History kept per table; older rows are pruned so a week-long run does not grow without bound.
HISTORY_ROWS = 20_000
#: Delivered messages kept per agent (for `describe`); older ones are pruned.
DELIVERED_KEPT = 50

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
    uid: str = ""


if TYPE_CHECKING:
    P = ParamSpec("P")
    R = TypeVar("R")


def _translated(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Turn SQLite errors of a store method into one StoreUnavailable line naming the file."""

    def wrapper(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, *args, **kwargs)
        except sqlite3.Error as err:
            raise store_error(store.path, err) from None

    functools.update_wrapper(wrapper, method)
    return wrapper


class StoreUnavailable(Unavailable):
    """The store cannot be used (locked, corrupt, read-only, disk full): one line naming it."""


def store_error(path: Path, err: sqlite3.Error | OSError) -> StoreUnavailable:
    """The one-line error for a store fault, naming the file and what to do."""
    text = str(err) or type(err).__name__
    lowered = text.lower()
    errno_ = err.errno if isinstance(err, OSError) else None
    if "locked" in text or "busy" in text:
        why = "locked by another process (try again)"
    elif "not a database" in text or "malformed" in text:
        why = f"not a readable database ({text}): move it away to start afresh"
    elif "readonly" in lowered or "read-only" in lowered or isinstance(err, PermissionError):
        why = f"cannot be written ({text})"
    elif "full" in text or errno_ == errno.ENOSPC:
        why = "the disk is full"
    else:
        why = text
    return StoreUnavailable(f"store {path}: {why}")


def _connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection that only reads, for a store on a read-only file system: WAL mode reads
    through the -shm file when it exists; without one the file is read as it is (immutable)."""
    uri = "file:" + urllib.parse.quote(str(path))
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=busy_timeout)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=busy_timeout)
    conn.isolation_level = None
    return conn


class Store:
    """One connection to the store of one state dir.

    Every SQLite or file error becomes a StoreUnavailable naming the file (exit 3 at the CLI).
    """

    def __init__(self, state_dir: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = state_dir / DB_NAME
        self.commits = 0  # this connection's own commits (data_version counts the others')
        try:
            self.state_dir = ensure_state_dir(state_dir)
            if not self.path.exists():
                # Created private before SQLite opens it (a planted symlink is refused). Never
                # open and close an existing store file ourselves: closing any descriptor of it
                # drops every POSIX lock this process holds on it, another connection's included.
                os.close(open_private(self.path, os.O_CREAT | os.O_RDWR))
            if read_only_folder(self.state_dir):  # reads still work; a write says why not
                self._conn = _connect_read_only(self.path, busy_timeout)
                return
            make_private(self.path, 0o600)
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            raise store_error(self.path, err) from None

    def _migrate(self) -> None:
        """Create the tables, then bring an older store up to SCHEMA_VERSION, in one transaction."""
        if self._version() == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self._version()
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"store {self.path}: written by a newer orch (schema {version}, this one "
                    f"knows {SCHEMA_VERSION})"
                )
            from reconciler.adapters.signal_inbox import SCHEMA as SIGNALS_SCHEMA

            for statement in (SCHEMA + ";" + SIGNALS_SCHEMA).split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            for step in MIGRATIONS[max(version, 1) - 1 :]:
                step(self._conn)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

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
        self.commits += 1

    # -- desired objects (written by apply and delete) -------------------------------------------

    @_translated
    def plan_apply(
        self, declared: Sequence[Declaration], files: Iterable[str], force: bool = False
    ) -> list[Change]:
        """What applying `declared` from `files` would change, without changing anything."""
        return _changes(self._conn, declared, files, force)

    @_translated
    def apply(
        self, declared: Sequence[Declaration], files: Iterable[str], force: bool = False
    ) -> list[Change]:
        """Record `declared` as the desired state; objects `files` no longer declare are deleted.

        An object another applied file declares is a conflict (InvalidInput naming both files)
        unless `force`, which moves it to the file applied now (server-side apply's ownership).
        """
        files = list(files)
        now = time.time()
        with self.transaction() as conn:
            changes = _changes(conn, declared, files, force)
            by_key = {(d.kind, d.name): d for d in declared}
            for change in changes:
                key = (change.kind, change.name)
                if change.verb == "deleted":
                    conn.execute("DELETE FROM objects WHERE kind=? AND name=?", key)
                    continue
                decl = by_key[key]
                conn.execute(
                    """INSERT INTO objects
                       (kind, name, document, generation, source, line, created, updated, uid)
                       VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)
                       ON CONFLICT (kind, name) DO UPDATE SET
                         document=excluded.document, source=excluded.source, line=excluded.line,
                         generation=generation + (document != excluded.document),
                         updated=CASE WHEN document != excluded.document
                                      THEN excluded.updated ELSE updated END""",
                    (
                        *(decl.kind, decl.name, _dumps(decl.document), decl.source, decl.line),
                        *(now, now, _new_uid()),
                    ),
                )
            conn.executemany(
                "INSERT OR REPLACE INTO sources (file, applied) VALUES (?, ?)",
                [(f, now) for f in files],
            )
        return changes

    @_translated
    def delete_object(self, kind: str, name: str) -> bool:
        """Forget a desired object; the controller then stops what runs of it."""
        with self.transaction() as conn:
            cursor = conn.execute("DELETE FROM objects WHERE kind=? AND name=?", (kind, name))
            return cursor.rowcount > 0

    @_translated
    def objects(self, kind: str) -> list[StoredObject]:
        """Every desired object of `kind`, by name."""
        rows = self._conn.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE kind=? ORDER BY name",
            (kind,),
        ).fetchall()
        return [_stored_object(row) for row in rows]

    @_translated
    def data_version(self) -> int:
        """A number that changes whenever another connection commits to the store (SQLite's
        `PRAGMA data_version`): a reader that polls skips its queries while it stays put."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    @_translated
    def object_versions(self, kind: str) -> list[tuple[str, str, int]]:
        """(name, uid, generation) of every desired object of `kind`, by name: what a reader
        that keeps parsed specs needs to know which changed, without reading the documents."""
        rows = self._conn.execute(
            "SELECT name, uid, generation FROM objects WHERE kind=? ORDER BY name", (kind,)
        ).fetchall()
        return [(name, uid, generation) for name, uid, generation in rows]

    @_translated
    def object(self, kind: str, name: str) -> StoredObject | None:
        """One desired object, or None."""
        row = self._conn.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE kind=? AND name=?",
            (kind, name),
        ).fetchone()
        return _stored_object(row) if row else None

    @_translated
    def sources(self) -> list[str]:
        """Manifest files that were applied and still declare something: watched for live edits."""
        rows = self._conn.execute(
            "SELECT file FROM sources WHERE file IN (SELECT source FROM objects) ORDER BY file"
        ).fetchall()
        return [row[0] for row in rows]

    # -- agent records (written by the controller only) ------------------------------------------

    @_translated
    def agent_records(self) -> dict[str, AgentRecord]:
        """Every readable agent record, by name."""
        return self.agent_records_checked()[0]

    @_translated
    def agent_records_checked(self) -> tuple[dict[str, AgentRecord], dict[str, str]]:
        """Every agent record by name, and why each unreadable one could not be read: one bad
        row (an old or damaged format) concerns its own agent only."""
        rows = self._conn.execute("SELECT name, record FROM agent_records").fetchall()
        records: dict[str, AgentRecord] = {}
        unreadable: dict[str, str] = {}
        for name, text in rows:
            try:
                records[name] = _record_from_json(text)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                unreadable[name] = f"unreadable record: {type(err).__name__}: {err}"
        return records, unreadable

    @_translated
    def agent_record(self, name: str) -> AgentRecord | None:
        """One agent's record, or None if the controller never handled it."""
        row = self._conn.execute(
            "SELECT record FROM agent_records WHERE name=?", (name,)
        ).fetchone()
        return _record_from_json(row[0]) if row else None

    @_translated
    def commit_pass(
        self,
        records: Mapping[str, AgentRecord | None],
        events: Sequence[Event],
        transitions: Sequence[Transition],
        messages: Sequence[QueuedMessage] = (),
        cooldowns: Mapping[str, float | None] | None = None,
        settled: Mapping[int, tuple[str, str]] | None = None,
    ) -> None:
        """Persist one controller pass at once: changed records (None: forget), history, events,
        delivery progress, account cooldowns (None: ended) and the outcome of each intent acted
        on (id -> (done | failed, error)), so a record and the fact it rests on commit together."""
        if not (records or events or transitions or messages or cooldowns or settled):
            return
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE intents SET outcome=?, error=?, settled=? WHERE id=?",
                [(outcome, error, now, i) for i, (outcome, error) in (settled or {}).items()],
            )
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
                        (name, _to_json(record)),
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
                    (name, _to_json(record)),
                )
            if message is not None:
                _update_messages(conn, [message])

    # -- the write-ahead journal of side effects (written by the controller only) -------------

    @_translated
    def intend(
        self,
        obj: str,
        uid: str,
        actions: Sequence[Action],
        record: AgentRecord | None,
        message: QueuedMessage | None = None,
    ) -> int:
        """Record, before acting, that `actions` are about to be done for `obj`, with the record
        and message progress that hold once they are: committed before the first side effect, so
        a controller killed in between finds the intent on restart and can tell what happened."""
        planned = {"record": record, "message": message}
        kinds = [{"kind": type(a).__name__, **_fields_of(a)} for a in actions]
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO intents (object, uid, actions, planned, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (obj, uid, _to_json(kinds, sort=False), _to_json(planned, sort=False), time.time()),
            )
            return int(cursor.lastrowid or 0)

    @_translated
    def open_intents(self) -> list[Intent]:
        """Intents whose outcome was never recorded (the controller died while acting)."""
        from reconciler.adapters.store_rows import Intent

        rows = self._conn.execute(
            "SELECT id, object, uid, actions, planned, created FROM intents"
            " WHERE outcome='intended' ORDER BY id"
        ).fetchall()
        found = []
        for id_, obj, uid, actions, planned, created in rows:
            data = json.loads(planned)
            record = data.get("record")
            message = data.get("message")
            found.append(
                Intent(
                    id_,
                    obj,
                    uid,
                    tuple(json.loads(actions)),
                    _record_from_json(json.dumps(record)) if record else None,
                    _message_from_dict(message) if message else None,
                    created,
                )
            )
        return found

    # -- messages (queued by `orch send`, delivered by the controller) -----------------------

    @_translated
    def enqueue(self, agent: str, sender: str, text: str, agent_uid: str = "") -> int:
        """Queue a message for the agent object `agent_uid` (a later agent of the same name never
        receives it); once this returns it is on disk and will not be lost."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (agent, sender, text, created, agent_uid)"
                " VALUES (?, ?, ?, ?, ?)",
                (agent, sender, text, time.time(), agent_uid),
            )
            return int(cursor.lastrowid or 0)

    @_translated
    def pending_messages(self) -> dict[str, QueuedMessage]:
        """The next message for each agent: one already on its way first, then the oldest.

        Only the heads are read: a long queue of large messages costs a pass nothing.
        """
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN ("
            " SELECT COALESCE(MIN(CASE WHEN phase != 'queued' THEN id END), MIN(id))"
            f" FROM messages WHERE {_OPEN} GROUP BY agent)"
        ).fetchall()
        return {row[1]: _message(row) for row in rows}

    @_translated
    def drop_messages(self, agent: str, keep_uid: str, event: Event) -> int:
        """Drop undelivered messages queued for an earlier agent object named `agent` (not
        `keep_uid`), with `event` saying so; how many were dropped."""
        with self.transaction() as conn:
            dropped = conn.execute(
                f"DELETE FROM messages WHERE agent=? AND {_OPEN}"
                " AND agent_uid != '' AND agent_uid != ?",
                (agent, keep_uid),
            ).rowcount
            if dropped:
                _insert_events(conn, [event], time.time())
            return int(dropped)

    @_translated
    def message(self, message_id: int) -> QueuedMessage | None:
        """One message by id."""
        row = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=?", (message_id,)
        ).fetchone()
        return _message(row) if row else None

    @_translated
    def messages(self, agent: str, limit: int = 10) -> list[QueuedMessage]:
        """An agent's newest messages, delivered or not, oldest first."""
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE agent=? AND {_SAME_AGENT}"
            " ORDER BY id DESC LIMIT ?",
            (agent, limit),
        ).fetchall()
        return [_message(row) for row in reversed(rows)]

    @_translated
    def cooldowns(self) -> dict[str, float]:
        """Shared cooldown deadlines by account."""
        return dict(self._conn.execute("SELECT account, until FROM cooldowns").fetchall())

    # -- usage (read from the agents' own transcripts by the controller) ------------------------

    @_translated
    def usage_offsets(self, agent: str) -> dict[str, int]:
        """How far each of an agent's usage records has been read, by file."""
        rows = self._conn.execute("SELECT path, offset FROM usage_files WHERE agent=?", (agent,))
        return dict(rows.fetchall())

    @_translated
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

    @_translated
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
        ).fetchall()
        if not rows:  # agents that record no usage: `get agents` need not import core.usage
            return {}
        from reconciler.core.usage import UsageTotals

        return {row[0]: UsageTotals(*row[1:]) for row in rows}

    @_translated
    def usage(
        self, since: float = 0.0, agent: str | None = None, account: str | None = None
    ) -> list[StoredUsage]:
        """Recorded model calls since `since` (of one agent or account, or all), oldest first."""
        from reconciler.adapters.store_rows import StoredUsage
        from reconciler.core.usage import UsageEntry

        query = (
            "SELECT agent, key, time, model, input, output, cache_read, cost, account, run, step"
            " FROM usage WHERE time >= ?"
        )
        args: tuple[Any, ...] = (since,)
        if agent is not None:
            query += " AND agent = ?"
            args += (agent,)
        if account is not None:
            query += " AND account = ?"
            args += (account,)
        return [
            StoredUsage(
                row[0], row[2], UsageEntry(row[1], row[3], row[4], row[5], row[6], row[7]),
                row[8], row[9], row[10],
            )
            for row in self._conn.execute(query + " ORDER BY time, rowid", args)
        ]  # fmt: skip

    # -- playbook runs (created by `orch run`, advanced by the controller) ----------------------

    @_translated
    def create_run(self, record: RunRecord, spec: Mapping[str, Any]) -> None:
        """Record a new run with a snapshot of its playbook's spec (later edits do not touch it)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (name, playbook, spec, record, created) VALUES (?, ?, ?, ?, ?)",
                (record.name, record.playbook, _dumps(spec), _to_json(record), record.created),
            )

    @_translated
    def runs(self, unfinished_only: bool = False) -> list[StoredRun]:
        """Every readable run, oldest first (see `runs_checked`)."""
        return self.runs_checked(unfinished_only)[0]

    @_translated
    def runs_checked(self, unfinished_only: bool = False) -> tuple[list[StoredRun], dict[str, str]]:
        """Every run, oldest first, and why each unreadable one could not be read; with
        `unfinished_only`, those the controller still has to move (not Succeeded or Failed, or
        cancelled), so finished runs cost a pass nothing."""
        where = (
            " WHERE cancelled = 1 OR NOT json_valid(record)"
            " OR json_extract(record, '$.state') NOT IN ('Succeeded', 'Failed')"
            if unfinished_only
            else ""
        )
        rows = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs{where} ORDER BY created, name")
        runs: list[StoredRun] = []
        unreadable: dict[str, str] = {}
        for row in rows.fetchall():
            try:
                runs.append(_stored_run(row))
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                unreadable[row[0]] = f"unreadable run: {type(err).__name__}: {err}"
        return runs, unreadable

    @_translated
    def run(self, name: str) -> StoredRun | None:
        """One run, or None."""
        row = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE name=?", (name,)).fetchone()
        return _stored_run(row) if row else None

    @_translated
    def cancel_run(self, name: str) -> bool:
        """Ask the controller to cancel and forget a run."""
        with self.transaction() as conn:
            return conn.execute("UPDATE runs SET cancelled=1 WHERE name=?", (name,)).rowcount > 0

    @_translated
    def save_run(
        self,
        record: RunRecord,
        prompts: Sequence[tuple[str, str, str, str]],
        consumed: Sequence[int],
        events: Sequence[Event],
    ) -> None:
        """A run's checkpoint with the prompts it queues ((agent, agent uid, sender, text)) and
        the signals it used, all at once."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET record=? WHERE name=?", (_to_json(record), record.name))
            conn.executemany(
                "INSERT INTO messages (agent, agent_uid, sender, text, created)"
                " VALUES (?, ?, ?, ?, ?)",
                [(agent, uid, sender, text, now) for agent, uid, sender, text in prompts],
            )
            conn.executemany(
                "UPDATE run_signals SET consumed=1 WHERE id=?", [(i,) for i in consumed]
            )
            _insert_events(conn, events, now)

    @_translated
    def forget_run(self, name: str, event: Event) -> None:
        """Drop a cancelled run and the prompts it queued that were not delivered yet."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM runs WHERE name=?", (name,))
            conn.execute("DELETE FROM run_signals WHERE run=?", (name,))
            conn.execute("DELETE FROM messages WHERE sender=? AND phase='queued'", (f"run/{name}",))
            _insert_events(conn, [event], time.time())

    @_translated
    def add_signal(self, run: str, kind: str, step: str, attempt: int) -> None:
        """`orch approve` / `orch step done` about one attempt of one step: a fact for the
        controller to act on once (or to drop, once that attempt is over)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO run_signals (run, kind, step, created, attempt)"
                " VALUES (?, ?, ?, ?, ?)",
                (run, kind, step, time.time(), attempt),
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

    @_translated
    def signals(self) -> list[RunSignal]:
        """Signals not acted on yet, oldest first."""
        from reconciler.adapters.store_rows import RunSignal

        rows = self._conn.execute(
            "SELECT id, run, kind, step, created, attempt FROM run_signals WHERE consumed=0"
            " ORDER BY id"
        ).fetchall()
        return [RunSignal(*row) for row in rows]

    @_translated
    def record_event(self, event: Event) -> None:
        """Persist one event outside a pass (a broken live edit, a controller start)."""
        with self.transaction() as conn:
            _insert_events(conn, [event], time.time())

    @_translated
    def prune_history(self) -> None:
        """Keep only the newest HISTORY_ROWS events and transitions, the newest DELIVERED_KEPT
        delivered messages of each agent, and settled intents of the last HISTORY_ROWS."""
        with self.transaction() as conn:
            for table in ("events", "transitions", "intents"):
                conn.execute(
                    f"DELETE FROM {table} WHERE id <= (SELECT MAX(id) FROM {table}) - ?"
                    + (" AND outcome != 'intended'" if table == "intents" else ""),
                    (HISTORY_ROWS,),
                )
            conn.execute(
                "DELETE FROM messages WHERE delivered_at IS NOT NULL AND id NOT IN ("
                " SELECT id FROM (SELECT id, ROW_NUMBER() OVER"
                " (PARTITION BY agent ORDER BY id DESC) AS n"
                " FROM messages WHERE delivered_at IS NOT NULL) WHERE n <= ?)",
                (DELIVERED_KEPT,),
            )

    # -- history (read by the CLI) ---------------------------------------------------------------

    @_translated
    def events(
        self, obj: str | None = None, after_id: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events in order, optionally for one object and after a known id; `limit` newest."""
        from reconciler.api.history import EventType, StoredEvent

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

    @_translated
    def transitions(self, obj: str, limit: int = 20) -> list[StoredTransition]:
        """The newest `limit` transitions of one object, oldest first."""
        from reconciler.api.history import StoredTransition, Transition

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
        from reconciler.api.intents import AnswerOutcome

        row = self._conn.execute(
            "SELECT answered, detail FROM answers WHERE id=? AND done_at IS NOT NULL",
            (answer_id,),
        ).fetchone()
        return AnswerOutcome(answer_id, bool(row[0]), row[1]) if row else None

    def intents(self) -> dict[str, AgentIntent]:
        """Standing intents by agent, each with its oldest unserved answer."""
        from reconciler.api.intents import AgentIntent, PendingAnswer

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
    conn: sqlite3.Connection,
    declared: Sequence[Declaration],
    files: Iterable[str],
    force: bool = False,
) -> list[Change]:
    from reconciler.adapters.store_rows import Change

    files = list(files)
    changes = []
    declared_keys = set()
    for decl in declared:
        declared_keys.add((decl.kind, decl.name))
        row = conn.execute(
            "SELECT document, source FROM objects WHERE kind=? AND name=?", (decl.kind, decl.name)
        ).fetchone()
        if row and row[1] != decl.source and not force and Path(row[1]).exists():
            where = f"{decl.source}:{decl.line}" if decl.line else decl.source
            raise InvalidInput(
                f"{where}: {decl.kind.lower()}/{decl.name} is managed by {row[1]}; "
                "apply with --force-conflicts to take it over"
            )
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


def _stored_run(row: Sequence[Any]) -> StoredRun:
    from reconciler.adapters.store_rows import StoredRun

    return StoredRun(
        row[0], row[1], json.loads(row[2]), _run_from_json(row[3]), row[4], bool(row[5])
    )


def _known(cls: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` without the fields `cls` (a dataclass) does not have: a row written by another
    version of orch still reads."""
    return {k: v for k, v in data.items() if k in cls.__dataclass_fields__}


def _run_from_json(text: str) -> RunRecord:
    """A run's checkpoint; unknown fields (another orch version's) are dropped, as for records."""
    from reconciler.core.runs import RunRecord, StepPhase, StepStatus
    from reconciler.core.steps import GateResult

    data = json.loads(text)
    steps = tuple(
        StepStatus(
            **_known(
                StepStatus,
                {
                    **step,
                    "phase": StepPhase(step["phase"]),
                    "gates": tuple(
                        GateResult(**_known(GateResult, gate)) for gate in step.get("gates", ())
                    ),
                },
            )
        )
        for step in data.pop("steps", ())
    )
    conditions = tuple(_condition(c) for c in data.pop("conditions", ()))
    return RunRecord(
        **_known(
            RunRecord,
            {**data, "state": RunState(data["state"]), "steps": steps, "conditions": conditions},
        )
    )


MESSAGE_COLUMNS = (
    "id, agent, sender, text, created, phase, phase_at, screen_digest, enters, delivered_at,"
    " log_inode, log_offset, agent_uid"
)


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
    from reconciler.api.messages import Phase, QueuedMessage

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
        agent_uid=row[12],
    )


def _condition(data: Mapping[str, Any]) -> Condition:
    return Condition(
        data["type"],
        ConditionStatus(data["status"]),
        data["reason"],
        data["message"],
        data["last_transition_time"],
    )


def _message_from_dict(data: Mapping[str, Any]) -> QueuedMessage:
    from reconciler.api.messages import Phase, QueuedMessage

    return QueuedMessage(**_known(QueuedMessage, {**data, "phase": Phase(data["phase"])}))


def _insert_events(conn: sqlite3.Connection, events: Iterable[Event], now: float) -> None:
    conn.executemany(
        "INSERT INTO events (time, object, type, reason, message) VALUES (?, ?, ?, ?, ?)",
        [(now, e.object, e.type, e.reason, e.message) for e in events],
    )


OBJECT_COLUMNS = "kind, name, document, generation, source, line, created, updated, uid"


def _stored_object(row: Sequence[Any]) -> StoredObject:
    return StoredObject(row[0], row[1], json.loads(row[2]), *row[3:9])


def _new_uid() -> str:
    """A new object uid (a UUID4; `uuid` is loaded only by the writes that need one)."""
    import uuid

    return str(uuid.uuid4())


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _agent_signal(row: Sequence[Any]) -> AgentSignal:
    from reconciler.core.signals import AgentSignal

    try:
        payload = json.loads(row[3])
    except ValueError:
        payload = {}
    kept = {str(k): str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
    return AgentSignal(row[0], row[1], row[2], kept, row[4])


def _to_json(value: object, sort: bool = True) -> str:
    """`value` (records and intents: dataclasses, nested in tuples and dicts) as the JSON of
    `json.dumps(asdict(value))`, about 4x faster: asdict deep-copies every field first, and a
    record is written on every launch, before its process starts."""
    return json.dumps(value, default=_fields_of, sort_keys=sort)


#: Each dataclass's field names, looked up once per class.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields_of(value: object) -> dict[str, Any]:
    """A dataclass instance's fields by name (json encodes the nested ones in turn)."""
    names = _FIELD_NAMES.get(type(value))
    if names is None:
        if not is_dataclass(value) or isinstance(value, type):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
    return {name: getattr(value, name) for name in names}


@functools.lru_cache(maxsize=4096)
def _record_from_json(text: str) -> AgentRecord:
    """Records are immutable, so an unchanged row parses to the same shared object."""
    data = json.loads(text)
    data["state"] = AgentState(data["state"])
    data["activity"] = Activity(data.get("activity", Activity.UNKNOWN))
    data["crash_times"] = tuple(data.get("crash_times", ()))
    data["pending_keys"] = tuple(data.get("pending_keys", ()))
    data["conditions"] = tuple(_condition(c) for c in data.get("conditions", ()))
    return AgentRecord(**_known(AgentRecord, data))
