"""The SQLite store (the embedded default).

Durability: WAL with synchronous=NORMAL. A committed transaction survives any crash of the
process (kill -9 included) because it is in the WAL before COMMIT returns; only an OS crash or
power cut can lose the last few commits, and never corrupts the file. FULL would add an fsync
per step (several ms here) for that last case; users who need it set TIDEFLOW_SQLITE_SYNC=FULL.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interpreter.core.records import TERMINAL_STATUSES, Event
from interpreter.errors import NotAStore, StoreBusy, StoreError
from interpreter.store.base import (
    EVENT_COLUMNS,
    SCHEMA_VERSION,
    Commit,
    InboxItem,
    LeaseLost,
    NewRun,
    RunRecord,
    check_running,
    check_version,
    definition_missing,
    dumps,
    event_from_row,
    list_runs_filter,
    loads,
    needs_of,
    run_from_row,
    terminated_news,
    terminated_state,
    termination,
)
from interpreter.store.leases import HOST_PREFIX, DeadOwners, owner_is_dead

BUSY_TIMEOUT_MS = 10_000


def _busy_timeout_ms() -> int:
    """How long a write waits for another process's lock: TIDEFLOW_SQLITE_BUSY_TIMEOUT_MS
    (tests lower it), else BUSY_TIMEOUT_MS."""
    raw = os.environ.get("TIDEFLOW_SQLITE_BUSY_TIMEOUT_MS", "").strip()
    return int(raw) if raw.isdigit() else BUSY_TIMEOUT_MS


# Numbered migrations: index i brings a store from version i to i + 1.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE definitions (
        hash TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT, file TEXT,
        source TEXT NOT NULL, created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, workflow TEXT NOT NULL, def_hash TEXT NOT NULL,
        status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, state TEXT NOT NULL,
        parent_id TEXT, root_id TEXT NOT NULL, depth INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, ended_at REAL,
        due_at REAL, lease_owner TEXT, lease_expires REAL,
        lease_token INTEGER NOT NULL DEFAULT 0,
        attention INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX runs_due ON runs(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX runs_status ON runs(status, created_at);
    CREATE INDEX runs_workflow ON runs(workflow, created_at);
    CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX runs_attention ON runs(lease_owner) WHERE attention = 1;
    CREATE TABLE events (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, time REAL NOT NULL,
        state TEXT, attempt INTEGER, payload TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, payload TEXT, created_at REAL NOT NULL,
        consumed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX inbox_pending ON inbox(run_id, id) WHERE consumed = 0;
    CREATE TABLE heartbeats (
        run_id TEXT NOT NULL, task_id TEXT NOT NULL, details TEXT, at REAL NOT NULL,
        PRIMARY KEY (run_id, task_id)
    ) WITHOUT ROWID;
    """,
    # The activities a run's tasks name (JSON array), so a worker only claims what it can run.
    """
    ALTER TABLE runs ADD COLUMN needs TEXT;
    """,
    # Map items and iteration results, written once each instead of inside every state write.
    """
    CREATE TABLE map_rows (
        run_id TEXT NOT NULL, frame TEXT NOT NULL, kind TEXT NOT NULL, idx INTEGER NOT NULL,
        value TEXT, PRIMARY KEY (run_id, frame, kind, idx)
    ) WITHOUT ROWID;
    """,
    # Run inputs in their own table: SQLite rewrites a whole row (overflow pages included) on
    # every UPDATE, so a large input in `runs` made every step of its run cost O(input).
    """
    CREATE TABLE run_inputs (run_id TEXT PRIMARY KEY, input TEXT);
    INSERT INTO run_inputs(run_id, input) SELECT id, input FROM runs;
    UPDATE runs SET input = NULL;
    """,
]

# A run is claimable by a worker that offers every activity its tasks need.
_OFFERS_NEEDS = (
    "(r.needs IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(r.needs) n "
    "WHERE n.value NOT IN (SELECT value FROM json_each(?))))"
)


def _needs_json(state: dict[str, Any]) -> str | None:
    needs = needs_of(state)
    return None if needs is None else dumps(needs)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _friendly(exc: sqlite3.Error, path: str) -> StoreError:
    text = str(exc)
    if _is_busy(exc):
        return StoreBusy(
            f"the store {path} stayed locked for more than {_busy_timeout_ms() / 1000:g} s",
            hint="another process holds a long write transaction; retry, or stop it",
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"the store {path} is read-only",
            hint="give this user write access to the file and its directory (WAL needs both)",
        )
    if "not a database" in text or "malformed" in text:
        return NotAStore(
            f"{path} is not a tideflow store (not an SQLite database)",
            hint="point --db at a tideflow store, or at a new file",
        )
    return StoreError(f"store {path}: {text}")


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path
        self._dead = DeadOwners()
        if path != ":memory:":
            parent = Path(path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store directory {parent}: {exc.strerror}"
                ) from None
        busy_ms = _busy_timeout_ms()
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout={busy_ms}")
        except sqlite3.Error as exc:
            raise _friendly(exc, path) from None
        # Processes opening one new store together can meet in SQLite's lock-upgrade deadlock
        # (rollback mode, before WAL is on), where SQLite answers BUSY at once instead of
        # calling the busy handler; so the opening steps retry for the busy timeout.
        give_up = time.monotonic() + busy_ms / 1000
        while True:
            try:
                self._prepare()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= give_up:
                    raise _friendly(exc, path) from None
            except sqlite3.Error as exc:
                raise _friendly(exc, path) from None
            time.sleep(0.01 + 0.04 * random.random())

    def _prepare(self) -> None:
        # Before switching to WAL: that rewrites the header of another program's database.
        self._version()
        sync = os.environ.get("TIDEFLOW_SQLITE_SYNC", "NORMAL").upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            sync = "NORMAL"
        if self._db.execute("PRAGMA journal_mode=WAL").fetchone() is None:
            raise NotAStore(f"{self.path} is not a tideflow store")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._migrate()

    # ----------------------------------------------------------------- plumbing
    def close(self) -> None:
        self._db.close()

    def _tx(self, immediate: bool = True) -> _Transaction:
        return _Transaction(self._db)

    def _version(self) -> int:
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if tables and "meta" not in tables:
            raise NotAStore(
                f"{self.path} is an SQLite database but not a tideflow store",
                hint="point --db at a tideflow store, or at a new file",
            )
        if "meta" not in tables:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return check_version(int(row[0]) if row else 0, self.path)

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return
        with self._tx():
            # Processes opening a new store together: the first takes the write lock and
            # migrates; the others wait for it, then read the version it left behind.
            version = self._version()
            for index in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[index].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            if version != SCHEMA_VERSION:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    _RUN_COLUMNS = (
        "r.id, r.workflow, r.def_hash, r.status, "
        "(SELECT i.input FROM run_inputs i WHERE i.run_id = r.id), r.output, r.error, r.state, "
        "r.parent_id, r.root_id, r.depth, r.created_at, r.updated_at, r.ended_at, r.next_seq, "
        "r.lease_owner, r.lease_token, r.cancel_requested, d.version"
    )
    _RUN_FROM = "runs r JOIN definitions d ON d.hash = r.def_hash"

    def _append_events(self, run_id: str, first_seq: int, events: list[Event], now: float) -> None:
        self._db.executemany(
            "INSERT INTO events(run_id, seq, type, time, state, attempt, payload) VALUES (?,?,?,?,?,?,?)",
            [
                (run_id, first_seq + i, e.type, now, e.state, e.attempt, dumps(e.payload))
                for i, e in enumerate(events)
            ],
        )

    def _insert_run(self, run: NewRun, now: float) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO definitions(hash, name, version, file, source, created_at) VALUES (?,?,?,?,?,?)",
            (run.def_hash, run.workflow, run.def_version, run.def_file, run.def_source, now),
        )
        state = run.state
        self._db.execute(
            "INSERT INTO runs(id, workflow, def_hash, status, input, output, error, state, parent_id, "
            "root_id, depth, created_at, updated_at, ended_at, due_at, next_seq, needs) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run.id,
                run.workflow,
                run.def_hash,
                state["status"],
                None,  # in run_inputs
                dumps(state.get("output")),
                dumps(state.get("error")),
                dumps(state),
                run.parent_id,
                run.root_id or run.id,
                run.depth,
                now,
                now,
                now if state["status"] in TERMINAL_STATUSES else None,
                run.due_at,
                len(run.events) + 1,
                _needs_json(state),
            ),
        )
        self._db.execute(
            "INSERT INTO run_inputs(run_id, input) VALUES (?, ?)", (run.id, dumps(run.input))
        )
        self._append_events(run.id, 1, run.events, now)

    # ----------------------------------------------------------------- definitions and runs
    def load_definition(self, def_hash: str) -> tuple[str, str | None]:
        row = self._db.execute(
            "SELECT source, file FROM definitions WHERE hash=?", (def_hash,)
        ).fetchone()
        if row is None:
            raise definition_missing(def_hash)
        return row[0], row[1]

    def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        now = time.time()
        try:
            with self._tx():
                exists = self._db.execute("SELECT 1 FROM runs WHERE id=?", (run.id,)).fetchone()
                if not exists:
                    self._insert_run(run, now)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        record = self.get_run(run.id)
        assert record is not None
        return record, not exists

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM {self._RUN_FROM} WHERE r.id=?", (run_id,)
        ).fetchone()
        return None if row is None else run_from_row(row)

    def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        tail, args = list_runs_filter(
            "?", status=status, workflow=workflow, parent_id=parent_id, limit=limit
        )
        sql = f"SELECT {self._RUN_COLUMNS} FROM {self._RUN_FROM}{tail}"
        return [run_from_row(row) for row in self._db.execute(sql, args)]

    def iter_events(self, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        cursor = self._db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id=? AND seq>? ORDER BY seq",
            (run_id, after),
        )
        for row in cursor:
            yield event_from_row(row)

    # ----------------------------------------------------------------- work distribution
    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        *,
        run_id: str | None = None,
        root_id: str | None = None,
        limit: int = 1,
        activities: frozenset[str] | None = None,
    ) -> list[RunRecord]:
        # Claimable: unleased, lease expired, or leased by a process on this host that is gone.
        free, args = self._free_lease(now, run_id)
        where = ["r.status='running'", free]
        if run_id is not None:
            where.append("r.id=?")
            args.append(run_id)
        else:
            where.append("r.due_at IS NOT NULL AND r.due_at<=?")
            args.append(now)
        if root_id is not None:
            where.append("r.root_id=?")
            args.append(root_id)
        if activities is not None:
            where.append(_OFFERS_NEEDS)
            args.append(dumps(sorted(activities)))
        claimed: list[RunRecord] = []
        try:
            with self._tx(immediate=True):
                rows = self._db.execute(
                    f"SELECT {self._RUN_COLUMNS} FROM {self._RUN_FROM} WHERE "
                    + " AND ".join(where)
                    + " ORDER BY r.due_at LIMIT ?",
                    [*args, limit],
                ).fetchall()
                for row in rows:
                    record = run_from_row(row)
                    token = record.lease_token + 1
                    self._db.execute(
                        "UPDATE runs SET lease_owner=?, lease_expires=?, lease_token=?, attention=0 WHERE id=?",
                        (owner, now + lease_seconds, token, record.id),
                    )
                    record.lease_owner, record.lease_token = owner, token
                    claimed.append(record)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        return claimed

    def _free_lease(self, now: float, run_id: str | None) -> tuple[str, list[Any]]:
        """SQL (and its arguments) for "nobody alive holds this run's lease"."""
        if run_id is not None:
            row = self._db.execute("SELECT lease_owner FROM runs WHERE id=?", (run_id,)).fetchone()
            holders = [row[0]] if row and row[0] and row[0].startswith(HOST_PREFIX) else []
            dead = [h for h in holders if owner_is_dead(h)]
        else:
            dead = self._dead.get(
                lambda: [
                    r[0]
                    for r in self._db.execute(
                        "SELECT DISTINCT lease_owner FROM runs WHERE status='running' "
                        "AND lease_expires >= ? AND lease_owner LIKE ?",
                        (now, HOST_PREFIX + "%"),
                    )
                ]
            )
        marks = ",".join("?" * len(dead))
        sql = "(r.lease_owner IS NULL OR r.lease_expires < ?"
        sql += f" OR r.lease_owner IN ({marks}))" if dead else ")"
        return sql, [now, *dead]

    def renew(self, run_id: str, owner: str, token: int, until: float) -> bool:
        cursor = self._db.execute(
            "UPDATE runs SET lease_expires=? WHERE id=? AND lease_owner=? AND lease_token=? AND status='running'",
            (until, run_id, owner, token),
        )
        return cursor.rowcount == 1

    def release(self, run_id: str, owner: str, token: int, due_at: float | None) -> None:
        # Something may have arrived (signal, cancel) since we last looked: keep it due.
        self._db.execute(
            "UPDATE runs SET lease_owner=NULL, lease_expires=NULL, "
            "due_at=CASE WHEN attention=1 THEN ? ELSE ? END, attention=0 "
            "WHERE id=? AND lease_owner=? AND lease_token=?",
            (time.time(), due_at, run_id, owner, token),
        )

    def commit(self, run: RunRecord, owner: str, commit: Commit, now: float) -> None:
        ended = commit.status in TERMINAL_STATUSES
        try:
            with self._tx():
                cursor = self._db.execute(
                    "UPDATE runs SET state=?, status=?, output=?, error=?, due_at=?, updated_at=?, "
                    "ended_at=?, next_seq=next_seq+?, cancel_requested=CASE WHEN ? THEN 0 ELSE cancel_requested END, needs=? "
                    "WHERE id=? AND lease_owner=? AND lease_token=? AND status='running'",
                    (
                        dumps(commit.state),
                        commit.status,
                        dumps(commit.output),
                        dumps(commit.error),
                        None if ended else commit.due_at,
                        now,
                        now if ended else None,
                        len(commit.events),
                        ended,
                        _needs_json(commit.state),
                        run.id,
                        owner,
                        run.lease_token,
                    ),
                )
                if cursor.rowcount != 1:
                    raise LeaseLost(run.id)
                self._append_events(run.id, run.next_seq, commit.events, now)
                for new_run in commit.new_runs:
                    if not self._db.execute(
                        "SELECT 1 FROM runs WHERE id=?", (new_run.id,)
                    ).fetchone():
                        self._insert_run(new_run, now)
                for child_id in commit.cancel_runs:
                    self._request_cancel(child_id, now)
                if commit.consumed:
                    self._db.executemany(
                        "UPDATE inbox SET consumed=1 WHERE id=?", [(i,) for i in commit.consumed]
                    )
                if commit.map_frames_done and not ended:
                    self._db.executemany(
                        "DELETE FROM map_rows WHERE run_id=? AND frame=?",
                        [(run.id, frame) for frame in commit.map_frames_done],
                    )
                if commit.map_rows and not ended:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO map_rows(run_id, frame, kind, idx, value) VALUES (?,?,?,?,?)",
                        [(run.id, f, kind, i, dumps(v)) for f, i, kind, v in commit.map_rows],
                    )
                if ended:
                    self._db.execute("DELETE FROM heartbeats WHERE run_id=?", (run.id,))
                    self._db.execute("DELETE FROM map_rows WHERE run_id=?", (run.id,))
                if commit.notify_parent is not None and run.parent_id is not None:
                    self._post(run.parent_id, "child", run.id, commit.notify_parent, now)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        run.next_seq += len(commit.events)
        run.status = commit.status
        run.state = commit.state

    def needs_attention(self, owner: str) -> set[str]:
        rows = self._db.execute(
            "SELECT id FROM runs WHERE attention=1 AND lease_owner=?", (owner,)
        ).fetchall()
        return {r[0] for r in rows}

    def read_inbox(self, run_id: str) -> tuple[list[InboxItem], bool]:
        self._db.execute("UPDATE runs SET attention=0 WHERE id=? AND attention=1", (run_id,))
        flag = self._db.execute(
            "SELECT cancel_requested FROM runs WHERE id=?", (run_id,)
        ).fetchone()
        rows = self._db.execute(
            "SELECT id, kind, name, payload FROM inbox WHERE run_id=? AND consumed=0 ORDER BY id",
            (run_id,),
        ).fetchall()
        return [InboxItem(r[0], r[1], r[2], loads(r[3])) for r in rows], bool(flag and flag[0])

    def load_map_rows(self, run_id: str) -> list[tuple[str, int, str, Any]]:
        rows = self._db.execute(
            "SELECT frame, idx, kind, value FROM map_rows WHERE run_id=?", (run_id,)
        ).fetchall()
        return [(r[0], int(r[1]), r[2], loads(r[3])) for r in rows]

    def next_due(
        self,
        root_id: str | None = None,
        owner: str | None = None,
        *,
        activities: frozenset[str] | None = None,
    ) -> float | None:
        free, free_args = self._free_lease(time.time(), None)
        sql = f"SELECT MIN(due_at) FROM runs r WHERE status='running' AND due_at IS NOT NULL AND {free}"
        args: tuple[Any, ...] = tuple(free_args)
        if activities is not None:
            sql += " AND " + _OFFERS_NEEDS
            args += (dumps(sorted(activities)),)
        if root_id is not None:
            sql += " AND root_id=?"
            args += (root_id,)
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # ----------------------------------------------------------------- requests from outside
    def _post(self, run_id: str, kind: str, name: str, payload: Any, now: float) -> int:
        cursor = self._db.execute(
            "INSERT INTO inbox(run_id, kind, name, payload, created_at) VALUES (?,?,?,?,?)",
            (run_id, kind, name, dumps(payload), now),
        )
        self._db.execute(
            "UPDATE runs SET attention=1, due_at=? WHERE id=? AND status='running'", (now, run_id)
        )
        return int(cursor.lastrowid or 0)

    def _require_running(self, run_id: str) -> None:
        row = self._db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        check_running(run_id, None if row is None else row[0])

    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> int:
        try:
            with self._tx():
                self._require_running(run_id)
                return self._post(run_id, "signal", name, payload, now)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None

    def _request_cancel(self, run_id: str, now: float) -> None:
        self._db.execute(
            "UPDATE runs SET cancel_requested=1, attention=1, due_at=? WHERE id=? AND status='running'",
            (now, run_id),
        )

    def request_cancel(self, run_id: str, now: float) -> None:
        try:
            with self._tx():
                self._require_running(run_id)
                self._request_cancel(run_id, now)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None

    def terminate(self, run_id: str, reason: str, now: float) -> RunRecord:
        error = termination(reason)
        try:
            with self._tx():
                self._require_running(run_id)
                pending = [run_id]
                while pending:
                    current = pending.pop()
                    row = self._db.execute(
                        "SELECT state, next_seq, parent_id FROM runs WHERE id=? AND status='running'",
                        (current,),
                    ).fetchone()
                    if row is None:
                        continue
                    state = terminated_state(row[0], error)
                    self._db.execute(
                        "UPDATE runs SET status='terminated', error=?, state=?, ended_at=?, updated_at=?, "
                        "due_at=NULL, lease_owner=NULL, lease_expires=NULL, next_seq=next_seq+1, "
                        "needs=NULL WHERE id=?",
                        (dumps(error), dumps(state), now, now, current),
                    )
                    self._append_events(
                        current, row[1], [Event("RunTerminated", payload={"error": error})], now
                    )
                    self._db.execute("DELETE FROM map_rows WHERE run_id=?", (current,))
                    # A parent terminated with it needs no news; the run's own parent does.
                    if current == run_id and row[2]:
                        self._post(row[2], "child", current, terminated_news(error), now)
                    pending += [
                        r[0]
                        for r in self._db.execute(
                            "SELECT id FROM runs WHERE parent_id=? AND status='running'", (current,)
                        )
                    ]
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        record = self.get_run(run_id)
        assert record is not None
        return record

    def record_heartbeat(self, run_id: str, task_id: str, details: Any, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO heartbeats(run_id, task_id, details, at) VALUES (?,?,?,?)",
            (run_id, task_id, dumps(details), now),
        )

    def heartbeat_details(self, run_id: str, task_id: str) -> Any:
        row = self._db.execute(
            "SELECT details FROM heartbeats WHERE run_id=? AND task_id=?", (run_id, task_id)
        ).fetchone()
        return None if row is None else loads(row[0])


class _Transaction:
    # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction never
    # fails half-way with SQLITE_BUSY; the busy timeout covers the wait.
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
