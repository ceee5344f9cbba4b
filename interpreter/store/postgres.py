"""The PostgreSQL store: the same engine on a shared database, run by many workers.

It behaves like the SQLite store (same schema versions, same fenced commit, same leases and
dead-owner takeover); what differs is how work is shared and found:

- a claim takes due rows with FOR UPDATE SKIP LOCKED, so concurrent workers never wait on, nor
  both take, the same run;
- a plain step (the common case) is one statement, a data-modifying CTE: one round trip and one
  commit that updates the run, appends its events, marks inbox items consumed;
- creating a run, a signal, a cancel and a child's result NOTIFY `tideflow_<schema>` in the same
  transaction; a worker LISTENs (`subscribe`) and falls back to a slow poll.

JSON columns are TEXT: the run state is rewritten at every step, and TEXT skips jsonb's parse
and re-encode on every write; nothing queries inside the JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from interpreter.core.records import TERMINAL_STATUSES, Event
from interpreter.errors import NotAStore, StoreError
from interpreter.store._pg import Database, Listener, psycopg, redact, server_message
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

Conn = psycopg.Connection[Any]

EVENT_PAGE = 1000

# Numbered migrations, as in the SQLite store: index i brings a store from version i to i + 1.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE definitions (
        hash TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT, file TEXT,
        source TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, workflow TEXT NOT NULL, def_hash TEXT NOT NULL,
        status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, state TEXT NOT NULL,
        parent_id TEXT, root_id TEXT NOT NULL, depth INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION, due_at DOUBLE PRECISION, lease_owner TEXT,
        lease_expires DOUBLE PRECISION, lease_token BIGINT NOT NULL DEFAULT 0,
        attention BOOLEAN NOT NULL DEFAULT FALSE,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        next_seq BIGINT NOT NULL DEFAULT 1
    ) WITH (fillfactor = 80);
    CREATE INDEX runs_due ON runs(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX runs_status ON runs(status, created_at);
    CREATE INDEX runs_workflow ON runs(workflow, created_at);
    CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX runs_attention ON runs(lease_owner) WHERE attention;
    CREATE INDEX runs_leased ON runs(lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE TABLE events (
        run_id TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL, state TEXT, attempt INTEGER, payload TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE inbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id TEXT NOT NULL,
        kind TEXT NOT NULL, name TEXT NOT NULL, payload TEXT,
        created_at DOUBLE PRECISION NOT NULL, consumed BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX inbox_pending ON inbox(run_id, id) WHERE NOT consumed;
    CREATE TABLE heartbeats (
        run_id TEXT NOT NULL, task_id TEXT NOT NULL, details TEXT,
        at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, task_id)
    );
    """,
    # The activities a run's pending tasks name, so a worker only claims what it can execute.
    """
    ALTER TABLE runs ADD COLUMN needs TEXT[];
    """,
    # Map items and iteration results, written once each instead of inside every state write.
    """
    CREATE TABLE map_rows (
        run_id TEXT NOT NULL, frame TEXT NOT NULL, kind TEXT NOT NULL, idx INTEGER NOT NULL,
        value TEXT, PRIMARY KEY (run_id, frame, kind, idx)
    );
    """,
    # Version 4 moved SQLite's run inputs out of `runs`; PostgreSQL keeps large values out of
    # line (TOAST) already, so nothing changes here.
    """
    SELECT 1
    """,
]

_RUN_COLUMNS = (
    "r.id, r.workflow, r.def_hash, r.status, r.input, r.output, r.error, r.state, "
    "r.parent_id, r.root_id, r.depth, r.created_at, r.updated_at, r.ended_at, r.next_seq, "
    "r.lease_owner, r.lease_token, r.cancel_requested, d.version"
)
_RUN_FROM = "runs r JOIN definitions d ON d.hash = r.def_hash"

# A step: fenced update, events, consumed inbox items and (at the end) heartbeats, one statement.
_COMMIT = """
WITH upd AS (
    UPDATE runs SET state=%(state)s, status=%(status)s, output=%(output)s, error=%(error)s,
        due_at=%(due_at)s, updated_at=%(now)s, ended_at=%(ended_at)s,
        next_seq=next_seq + %(n)s, needs=%(needs)s::text[],
        cancel_requested = cancel_requested AND NOT %(ended)s
    WHERE id=%(id)s AND lease_owner=%(owner)s AND lease_token=%(token)s AND status='running'
    RETURNING id
), ev AS (
    INSERT INTO events(run_id, seq, type, time, state, attempt, payload)
    SELECT upd.id, e.seq, e.type, %(now)s, e.state, e.attempt, e.payload
    FROM upd, unnest(%(seqs)s::bigint[], %(types)s::text[], %(states)s::text[],
                     %(attempts)s::int[], %(payloads)s::text[]) AS e(seq, type, state, attempt, payload)
), con AS (
    UPDATE inbox SET consumed=TRUE
    WHERE id = ANY(%(consumed)s::bigint[]) AND run_id IN (SELECT id FROM upd)
), hb AS (
    DELETE FROM heartbeats WHERE %(ended)s AND run_id IN (SELECT id FROM upd)
), mr AS (
    DELETE FROM map_rows WHERE %(ended)s AND run_id IN (SELECT id FROM upd)
)
SELECT count(*) FROM upd
"""

# Map rows of one step (see interpreter/map_rows.py); only after _COMMIT, in its transaction.
_MAP_ROWS = """
WITH gone AS (
    DELETE FROM map_rows WHERE run_id=%(id)s AND frame = ANY(%(done)s::text[])
)
INSERT INTO map_rows(run_id, frame, kind, idx, value)
SELECT %(id)s, r.frame, r.kind, r.idx, r.value
FROM unnest(%(frames)s::text[], %(kinds)s::text[], %(idxs)s::int[], %(values)s::text[])
    AS r(frame, kind, idx, value)
ON CONFLICT (run_id, frame, kind, idx) DO UPDATE SET value = EXCLUDED.value
"""

_INSERT_RUN = """
WITH d AS (
    INSERT INTO definitions(hash, name, version, file, source, created_at)
    VALUES (%(def_hash)s, %(workflow)s, %(def_version)s, %(def_file)s, %(def_source)s, %(now)s)
    ON CONFLICT (hash) DO NOTHING
), r AS (
    INSERT INTO runs(id, workflow, def_hash, status, input, output, error, state, parent_id,
        root_id, depth, created_at, updated_at, ended_at, due_at, next_seq, needs)
    VALUES (%(id)s, %(workflow)s, %(def_hash)s, %(status)s, %(input)s, %(output)s, %(error)s,
        %(state)s, %(parent_id)s, %(root_id)s, %(depth)s, %(now)s, %(now)s, %(ended_at)s,
        %(due_at)s, %(next_seq)s, %(needs)s::text[])
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), ev AS (
    INSERT INTO events(run_id, seq, type, time, state, attempt, payload)
    SELECT r.id, e.seq, e.type, %(now)s, e.state, e.attempt, e.payload
    FROM r, unnest(%(seqs)s::bigint[], %(types)s::text[], %(states)s::text[],
                   %(attempts)s::int[], %(payloads)s::text[]) AS e(seq, type, state, attempt, payload)
), n AS (
    SELECT pg_notify(%(channel)s, 'run') FROM r
)
SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM n)
"""


def _event_params(first_seq: int, events: list[Event]) -> dict[str, Any]:
    return {
        "seqs": [first_seq + i for i in range(len(events))],
        "types": [e.type for e in events],
        "states": [e.state for e in events],
        "attempts": [e.attempt for e in events],
        "payloads": [dumps(e.payload) for e in events],
    }


def _channel(schema: str, database: str) -> str:
    # NOTIFY is per database already; the schema keeps stores that share one apart.
    return ("tideflow_" + (database if schema == "public" else schema))[:63]


class PostgresStore:
    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = redact(url)
        self.db = Database(url, max_size=max_connections)
        with self.db.connect() as conn:
            try:
                self.schema, self.database = self._location(conn)
                self._migrate(conn)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise StoreError(
                    f"PostgreSQL at {self.db.target}: {server_message(exc)}",
                    hint="grant this user CREATE on the schema, or use a schema it owns "
                    "(?options=-csearch_path%3Dname)",
                ) from None
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL at {self.db.target}: {server_message(exc)}") from None
        self.channel = _channel(self.schema, self.database)
        self._listener = Listener(url, self.db.kwargs, self.channel)
        self._dead = DeadOwners()
        self.db.open()

    # ----------------------------------------------------------------- plumbing
    def close(self) -> None:
        self._listener.close()
        self.db.close()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from another thread) whenever new work may be there: a new run, a
        signal, a cancel, a child's result. Returns the function that unsubscribes."""
        return self._listener.subscribe(callback)

    def _exec(self, conn: Conn, query: str, params: Any = None) -> psycopg.Cursor[Any]:
        self.db.round_trips += 1
        return conn.execute(query, params)

    @contextmanager
    def _tx(self, conn: Conn) -> Iterator[None]:
        self.db.round_trips += 2  # BEGIN and COMMIT
        with conn.transaction():
            yield

    def _notify(self, conn: Conn, what: str) -> None:
        self._exec(conn, "SELECT pg_notify(%s, %s)", (self.channel, what))

    def _location(self, conn: Conn) -> tuple[str, str]:
        row = conn.execute("SELECT current_schema(), current_database()").fetchone()
        assert row is not None
        if row[0] is None:
            raise StoreError(
                f"PostgreSQL at {self.db.target}: the search_path names no schema that exists",
                hint="create the schema (CREATE SCHEMA name) or fix options=-csearch_path=... in the URL",
            )
        return str(row[0]), str(row[1])

    def _version(self, conn: Conn) -> int:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        if not tables:
            return 0
        not_ours = NotAStore(
            f"schema {self.schema!r} of {self.db.target} holds tables that are not a tideflow store",
            hint="point --db at an empty database, or choose a schema with ?options=-csearch_path%3Dname",
        )
        if "meta" not in tables:
            raise not_ours
        try:
            with conn.transaction():
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except psycopg.errors.UndefinedColumn:
            raise not_ours from None
        if row is None or not str(row[0]).isdigit():
            raise not_ours
        return int(row[0])

    def _migrate(self, conn: Conn) -> None:
        version = self._version(conn)
        if version == SCHEMA_VERSION:
            return
        with conn.transaction():
            # Workers started together on an empty database: one migrates, the others wait.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('tideflow-migrate:' || current_schema()))"
            )
            version = check_version(
                self._version(conn), f"at {self.db.target} (schema {self.schema})"
            )
            for index in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[index].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(SCHEMA_VERSION),),
            )

    def _insert_params(self, run: NewRun, now: float) -> dict[str, Any]:
        state = run.state
        return {
            "def_hash": run.def_hash,
            "workflow": run.workflow,
            "def_version": run.def_version,
            "def_file": run.def_file,
            "def_source": run.def_source,
            "now": now,
            "id": run.id,
            "status": state["status"],
            "input": dumps(run.input),
            "output": dumps(state.get("output")),
            "error": dumps(state.get("error")),
            "state": dumps(state),
            "parent_id": run.parent_id,
            "root_id": run.root_id or run.id,
            "depth": run.depth,
            "ended_at": now if state["status"] in TERMINAL_STATUSES else None,
            "due_at": run.due_at,
            "next_seq": len(run.events) + 1,
            "needs": needs_of(state),
            "channel": self.channel,
            **_event_params(1, run.events),
        }

    # ----------------------------------------------------------------- definitions and runs
    def load_definition(self, def_hash: str) -> tuple[str, str | None]:
        row = self.db.run(
            lambda conn: self._exec(
                conn, "SELECT source, file FROM definitions WHERE hash=%s", (def_hash,)
            ).fetchone()
        )
        if row is None:
            raise definition_missing(def_hash)
        return row[0], row[1]

    def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        now = time.time()
        params = self._insert_params(run, now)

        def op(conn: Conn) -> bool:
            row = self._exec(conn, _INSERT_RUN, params).fetchone()
            return bool(row and row[0])

        def resolve(conn: Conn) -> tuple[bool, bool]:
            row = self._exec(conn, "SELECT created_at FROM runs WHERE id=%s", (run.id,)).fetchone()
            return (row is not None and row[0] == now), True

        created = self.db.run(op, resolve=resolve)
        record = self.get_run(run.id)
        if record is None:
            raise StoreError(f"run {run.id} vanished right after it was created")
        return record, created

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.db.run(
            lambda conn: self._exec(
                conn, f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.id=%s", (run_id,)
            ).fetchone()
        )
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
            "%s", status=status, workflow=workflow, parent_id=parent_id, limit=limit
        )
        query = f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM}{tail}"
        rows = self.db.run(lambda conn: self._exec(conn, query, args).fetchall())
        return [run_from_row(row) for row in rows]

    def iter_events(self, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        # Page by page: a long history never holds a pooled connection while the caller reads.
        def page(last: int) -> list[tuple[Any, ...]]:
            return self.db.run(
                lambda conn: self._exec(
                    conn,
                    f"SELECT {EVENT_COLUMNS} FROM events "
                    "WHERE run_id=%s AND seq>%s ORDER BY seq LIMIT %s",
                    (run_id, last, EVENT_PAGE),
                ).fetchall()
            )

        last = after
        while True:
            rows = page(last)
            for row in rows:
                yield event_from_row(row)
            if len(rows) < EVENT_PAGE:
                return
            last = rows[-1][0]

    # ----------------------------------------------------------------- work distribution
    def _dead_owners(self, now: float) -> list[str]:
        """Lease holders on this host whose process is gone (their runs are free at once)."""
        return self._dead.get(lambda: [owner for (owner,) in self._live_local_holders(now)])

    def _live_local_holders(self, now: float) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.db.run(
            lambda conn: self._exec(
                conn,
                "SELECT DISTINCT lease_owner FROM runs WHERE lease_owner IS NOT NULL "
                "AND starts_with(lease_owner, %s) AND lease_expires >= %s AND status='running'",
                (HOST_PREFIX, now),
            ).fetchall()
        )
        return rows

    def _claimable(
        self,
        now: float,
        dead: list[str],
        root_id: str | None,
        activities: frozenset[str] | set[str] | None,
    ) -> tuple[str, dict[str, Any]]:
        where = (
            "r.status='running' AND (r.lease_owner IS NULL OR r.lease_expires IS NULL "
            "OR r.lease_expires < %(now)s OR r.lease_owner = ANY(%(dead)s::text[]))"
        )
        params: dict[str, Any] = {"now": now, "dead": dead}
        if root_id is not None:
            where += " AND r.root_id = %(root_id)s"
            params["root_id"] = root_id
        if activities is not None:
            where += " AND (r.needs IS NULL OR r.needs <@ %(offered)s::text[])"
            params["offered"] = sorted(activities)
        return where, params

    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        *,
        run_id: str | None = None,
        root_id: str | None = None,
        limit: int = 1,
        activities: frozenset[str] | set[str] | None = None,
    ) -> list[RunRecord]:
        if run_id is not None:
            row = self.db.run(
                lambda conn: self._exec(
                    conn,
                    "SELECT lease_owner FROM runs WHERE id=%s AND lease_expires >= %s",
                    (run_id, now),
                ).fetchone()
            )
            dead = [row[0]] if row and row[0] and owner_is_dead(row[0]) else []
        else:
            dead = self._dead_owners(now)
        where, params = self._claimable(now, dead, root_id, activities)
        if run_id is not None:
            where += " AND r.id = %(run_id)s"
        else:
            where += " AND r.due_at IS NOT NULL AND r.due_at <= %(now)s"
        expires = now + lease_seconds
        params.update(run_id=run_id, limit=limit, owner=owner, expires=expires)
        query = (
            f"WITH c AS (SELECT r.id FROM runs r WHERE {where} "
            "ORDER BY r.due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
            "UPDATE runs r SET lease_owner=%(owner)s, lease_expires=%(expires)s, "
            "lease_token=r.lease_token + 1, attention=FALSE "
            f"FROM c, definitions d WHERE r.id = c.id AND d.hash = r.def_hash RETURNING {_RUN_COLUMNS}"
        )

        def op(conn: Conn) -> list[tuple[Any, ...]]:
            return self._exec(conn, query, params).fetchall()

        def resolve(conn: Conn) -> tuple[bool, list[tuple[Any, ...]]]:
            # The lost answer's runs carry our owner id and this exact expiry.
            rows = self._exec(
                conn,
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.lease_owner=%s AND r.lease_expires=%s AND r.status='running'",
                (owner, expires),
            ).fetchall()
            return bool(rows), rows

        rows = self.db.run(op, resolve=resolve)
        return sorted((run_from_row(row) for row in rows), key=lambda r: r.id)

    def renew(self, run_id: str, owner: str, token: int, until: float) -> bool:
        return self.db.run(
            lambda conn: (
                self._exec(
                    conn,
                    "UPDATE runs SET lease_expires=%s WHERE id=%s AND lease_owner=%s AND lease_token=%s AND status='running'",
                    (until, run_id, owner, token),
                ).rowcount
                == 1
            )
        )

    def release(self, run_id: str, owner: str, token: int, due_at: float | None) -> None:
        # Something may have arrived (signal, cancel) since we last looked: keep it due.
        self.db.run(
            lambda conn: self._exec(
                conn,
                "UPDATE runs SET lease_owner=NULL, lease_expires=NULL, "
                "due_at=CASE WHEN attention THEN %s ELSE %s END, attention=FALSE "
                "WHERE id=%s AND lease_owner=%s AND lease_token=%s",
                (time.time(), due_at, run_id, owner, token),
            )
        )

    def commit(self, run: RunRecord, owner: str, commit: Commit, now: float) -> None:
        ended = commit.status in TERMINAL_STATUSES
        params = {
            "state": dumps(commit.state),
            "status": commit.status,
            "output": dumps(commit.output),
            "error": dumps(commit.error),
            "due_at": None if ended else commit.due_at,
            "now": now,
            "ended_at": now if ended else None,
            "n": len(commit.events),
            "needs": needs_of(commit.state),
            "ended": ended,
            "id": run.id,
            "owner": owner,
            "token": run.lease_token,
            "consumed": list(commit.consumed),
            **_event_params(run.next_seq, commit.events),
        }
        tell_parent = commit.notify_parent is not None and run.parent_id is not None
        map_rows = not ended and bool(commit.map_rows or commit.map_frames_done)
        simple = not (commit.new_runs or commit.cancel_runs or tell_parent or map_rows)

        def step(conn: Conn) -> None:
            row = self._exec(conn, _COMMIT, params).fetchone()
            if row is None or row[0] != 1:
                raise LeaseLost(run.id)

        def op(conn: Conn) -> None:
            if simple:
                step(conn)
                return
            with self._tx(conn):
                step(conn)
                if map_rows:
                    self._exec(
                        conn,
                        _MAP_ROWS,
                        {
                            "id": run.id,
                            "done": list(commit.map_frames_done),
                            "frames": [r[0] for r in commit.map_rows],
                            "idxs": [r[1] for r in commit.map_rows],
                            "kinds": [r[2] for r in commit.map_rows],
                            "values": [dumps(r[3]) for r in commit.map_rows],
                        },
                    )
                for new_run in commit.new_runs:
                    self._exec(conn, _INSERT_RUN, self._insert_params(new_run, now))
                for child_id in commit.cancel_runs:
                    self._request_cancel(conn, child_id, now)
                if tell_parent:
                    assert run.parent_id is not None
                    self._post(conn, run.parent_id, "child", run.id, commit.notify_parent, now)
                self._notify(conn, "step")

        def resolve(conn: Conn) -> tuple[bool, None]:
            # Our lost commit, if it landed, left exactly this trace.
            row = self._exec(
                conn,
                "SELECT 1 FROM runs WHERE id=%s AND lease_owner=%s AND lease_token=%s AND next_seq=%s AND updated_at=%s",
                (run.id, owner, run.lease_token, run.next_seq + len(commit.events), now),
            ).fetchone()
            return row is not None, None

        self.db.run(op, resolve=resolve)
        run.next_seq += len(commit.events)
        run.status = commit.status
        run.state = commit.state

    def needs_attention(self, owner: str) -> set[str]:
        rows = self.db.run(
            lambda conn: self._exec(
                conn, "SELECT id FROM runs WHERE attention AND lease_owner=%s", (owner,)
            ).fetchall()
        )
        return {r[0] for r in rows}

    def load_map_rows(self, run_id: str) -> list[tuple[str, int, str, Any]]:
        rows = self.db.run(
            lambda conn: self._exec(
                conn, "SELECT frame, idx, kind, value FROM map_rows WHERE run_id=%s", (run_id,)
            ).fetchall()
        )
        return [(r[0], int(r[1]), r[2], loads(r[3])) for r in rows]

    def read_inbox(self, run_id: str) -> tuple[list[InboxItem], bool]:
        rows = self.db.run(
            lambda conn: self._exec(
                conn,
                "WITH a AS (UPDATE runs SET attention=FALSE WHERE id=%(id)s AND attention) "
                "SELECT r.cancel_requested, i.id, i.kind, i.name, i.payload FROM runs r "
                "LEFT JOIN inbox i ON i.run_id = r.id AND NOT i.consumed "
                "WHERE r.id=%(id)s ORDER BY i.id",
                {"id": run_id},
            ).fetchall()
        )
        cancel = bool(rows and rows[0][0])
        items = [InboxItem(r[1], r[2], r[3], loads(r[4])) for r in rows if r[1] is not None]
        return items, cancel

    def next_due(
        self,
        root_id: str | None = None,
        owner: str | None = None,
        *,
        activities: frozenset[str] | set[str] | None = None,
    ) -> float | None:
        """The earliest due time among runs a claim could take now. Runs leased by a live worker
        (`owner` included) do not count: their holder wakes for them."""
        now = time.time()
        where, params = self._claimable(now, self._dead_owners(now), root_id, activities)
        row = self.db.run(
            lambda conn: self._exec(
                conn,
                f"SELECT MIN(r.due_at) FROM runs r WHERE r.due_at IS NOT NULL AND {where}",
                params,
            ).fetchone()
        )
        return None if row is None else row[0]

    # ----------------------------------------------------------------- requests from outside
    def _post(self, conn: Conn, run_id: str, kind: str, name: str, payload: Any, now: float) -> int:
        row = self._exec(
            conn,
            "INSERT INTO inbox(run_id, kind, name, payload, created_at) VALUES (%s,%s,%s,%s,%s) RETURNING id",
            (run_id, kind, name, dumps(payload), now),
        ).fetchone()
        self._exec(
            conn,
            "UPDATE runs SET attention=TRUE, due_at=%s WHERE id=%s AND status='running'",
            (now, run_id),
        )
        assert row is not None
        return int(row[0])

    def _require_running(self, conn: Conn, run_id: str) -> None:
        row = self._exec(conn, "SELECT status FROM runs WHERE id=%s", (run_id,)).fetchone()
        check_running(run_id, None if row is None else row[0])

    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> int:
        def op(conn: Conn) -> int:
            with self._tx(conn):
                self._require_running(conn, run_id)
                item = self._post(conn, run_id, "signal", name, payload, now)
                self._notify(conn, "signal")
                return item

        def resolve(conn: Conn) -> tuple[bool, int]:
            row = self._exec(
                conn,
                "SELECT id FROM inbox WHERE run_id=%s AND kind='signal' AND name=%s AND created_at=%s",
                (run_id, name, now),
            ).fetchone()
            return row is not None, int(row[0]) if row else 0

        return self.db.run(op, resolve=resolve)

    def _request_cancel(self, conn: Conn, run_id: str, now: float) -> None:
        self._exec(
            conn,
            "UPDATE runs SET cancel_requested=TRUE, attention=TRUE, due_at=%s WHERE id=%s AND status='running'",
            (now, run_id),
        )

    def request_cancel(self, run_id: str, now: float) -> None:
        def op(conn: Conn) -> None:
            with self._tx(conn):
                self._require_running(conn, run_id)
                self._request_cancel(conn, run_id, now)
                self._notify(conn, "cancel")

        def resolve(conn: Conn) -> tuple[bool, None]:
            row = self._exec(
                conn, "SELECT cancel_requested FROM runs WHERE id=%s", (run_id,)
            ).fetchone()
            return bool(row and row[0]), None

        self.db.run(op, resolve=resolve)

    def terminate(self, run_id: str, reason: str, now: float) -> RunRecord:
        error = termination(reason)

        def op(conn: Conn) -> None:
            with self._tx(conn):
                self._require_running(conn, run_id)
                pending = [run_id]
                while pending:
                    current = pending.pop()
                    row = self._exec(
                        conn,
                        "SELECT state, next_seq, parent_id FROM runs WHERE id=%s AND status='running' FOR UPDATE",
                        (current,),
                    ).fetchone()
                    if row is None:
                        continue
                    state = terminated_state(row[0], error)
                    self._exec(
                        conn,
                        "UPDATE runs SET status='terminated', error=%s, state=%s, ended_at=%s, updated_at=%s, "
                        "due_at=NULL, lease_owner=NULL, lease_expires=NULL, next_seq=next_seq+1, needs=NULL WHERE id=%s",
                        (dumps(error), dumps(state), now, now, current),
                    )
                    event = Event("RunTerminated", payload={"error": error})
                    self._exec(conn, "DELETE FROM map_rows WHERE run_id=%s", (current,))
                    self._exec(
                        conn,
                        "INSERT INTO events(run_id, seq, type, time, state, attempt, payload) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                        (
                            current,
                            row[1],
                            event.type,
                            now,
                            event.state,
                            event.attempt,
                            dumps(event.payload),
                        ),
                    )
                    # A parent terminated with it needs no news; the run's own parent does.
                    if current == run_id and row[2]:
                        self._post(conn, row[2], "child", current, terminated_news(error), now)
                    children = self._exec(
                        conn,
                        "SELECT id FROM runs WHERE parent_id=%s AND status='running'",
                        (current,),
                    ).fetchall()
                    pending += [r[0] for r in children]
                self._notify(conn, "terminate")

        def resolve(conn: Conn) -> tuple[bool, None]:
            row = self._exec(
                conn, "SELECT status, ended_at FROM runs WHERE id=%s", (run_id,)
            ).fetchone()
            return bool(row and row[0] == "terminated" and row[1] == now), None

        self.db.run(op, resolve=resolve)
        record = self.get_run(run_id)
        assert record is not None
        return record

    def record_heartbeat(self, run_id: str, task_id: str, details: Any, now: float) -> None:
        self.db.run(
            lambda conn: self._exec(
                conn,
                "INSERT INTO heartbeats(run_id, task_id, details, at) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (run_id, task_id) DO UPDATE SET details=EXCLUDED.details, at=EXCLUDED.at",
                (run_id, task_id, dumps(details), now),
            )
        )

    def heartbeat_details(self, run_id: str, task_id: str) -> Any:
        row = self.db.run(
            lambda conn: self._exec(
                conn,
                "SELECT details FROM heartbeats WHERE run_id=%s AND task_id=%s",
                (run_id, task_id),
            ).fetchone()
        )
        return None if row is None else loads(row[0])
