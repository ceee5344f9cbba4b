"""The PostgreSQL dialect of the SQL store: one database shared by many workers.

What differs from SQLite is how work is shared and found, not what is written:

- a claim takes due rows with FOR UPDATE SKIP LOCKED, so concurrent workers never wait on, nor
  both take, the same run;
- a write transaction is sent as a pipeline: the statements of a step (or of a batch of steps)
  go out together with BEGIN and COMMIT, one network round trip;
- creating a run, a signal, a cancel and a child's result NOTIFY `tideflow_<schema>` in the same
  transaction; a worker LISTENs (`subscribe`) and falls back to a slow poll.

JSON columns are TEXT: the run state is rewritten at every step, and TEXT skips jsonb's parse
and re-encode on every write; nothing queries inside the JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from interpreter.errors import NotAStore, StoreError
from interpreter.store._pg import Database, Listener, psycopg, redact, server_message
from interpreter.store.base import check_version
from interpreter.store.migrations import SCHEMA_VERSION
from interpreter.store.sql import SQLStore
from interpreter.store.sqlcore import Cursor, Session

T = TypeVar("T")
Conn = psycopg.Connection[Any]


def _channel(schema: str, database: str) -> str:
    # NOTIFY is per database already; the schema keeps stores that share one apart.
    return ("tideflow_" + (database if schema == "public" else schema))[:63]


class _Session:
    """A connection, in a pipeline when `pipeline` is given (a write transaction)."""

    def __init__(self, store: PostgresStore, conn: Conn, pipeline: Any = None) -> None:
        self.store = store
        self.conn = conn
        self.pipeline = pipeline
        self.unsynced = False  # statements sent whose results have not come back yet

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        cursor = self.store._exec(self.conn, sql, args)
        if self.pipeline is None:
            self.store.db.round_trips += 1
            return cursor
        self.unsynced = True  # in a pipeline, a statement's result waits for the next sync
        return _PipelinedCursor(self, cursor)

    def sync(self) -> None:
        if self.unsynced:
            self.store.db.round_trips += 1
            self.pipeline.sync()
            self.unsynced = False


class _PipelinedCursor:
    """A cursor whose results are read only after its pipeline synced: reading one inside the
    transaction syncs first (a round trip); after COMMIT every result is in."""

    def __init__(self, session: _Session, cursor: psycopg.Cursor[Any]) -> None:
        self.session = session
        self.cursor = cursor

    @property
    def rowcount(self) -> int:
        self.session.sync()
        return self.cursor.rowcount

    def fetchone(self) -> Any:
        self.session.sync()
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        self.session.sync()
        return self.cursor.fetchall()


class PostgresStore(SQLStore):
    DIALECT = "postgresql"
    TYPES = {
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "false": "FALSE",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "text_list": "TEXT[]",
        "runs_storage": "WITH (fillfactor = 80)",  # room for HOT updates of the run row
        "without_rowid": "",
        # Migration 11's copy of fork links out of run states.
        "is_fork": 'strpos(state, \'"forked_from":{"run"\') > 0',
        "fork_run": "(CAST(state AS jsonb) #>> '{run,forked_from,run}')",
        "fork_state": "(CAST(state AS jsonb) #>> '{run,forked_from,state}')",
    }
    TOKENS = {
        "needs_param": "CAST(? AS TEXT[])",
        # Not `needs IS NULL OR needs <@ ...`: before statistics exist (a freshly filled
        # table) the planner took that OR for rare and scanned every running run (8 ms at
        # 50,000 sleeping runs instead of 0.2 ms walking the due index).
        "offers_needs": "COALESCE(r.needs <@ CAST(? AS TEXT[]), TRUE)",
        "skip_locked": "FOR UPDATE SKIP LOCKED",
        "for_update": "FOR UPDATE",
        # The type of a run's error (a JSON object, or JSON null).
        "error_type": "(CAST(r.error AS jsonb)->>'type')",
        # A failed run whose compensations are held (core/saga.py keeps them under `held`);
        # only failed runs' states are parsed, as json: one lookup needs no jsonb tree.
        "held_compensation": "(CASE WHEN r.status = 'failed' THEN "
        "CAST(r.state AS json)->'held' IS NOT NULL ELSE FALSE END)",
    }

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        super().__init__()
        self.url = redact(url)
        self.db = Database(url, max_size=max_connections)
        with self.db.connect() as conn:
            try:
                self.schema, self.database = self._location(conn)
                version = check_version(self._version(_Session(self, conn)), self._where())
                if version != SCHEMA_VERSION:
                    with conn.transaction():
                        self._migrate(_Session(self, conn), self._where())
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
        self.db.open()

    def _where(self) -> str:
        return f"at {self.db.target} (schema {self.schema})"

    def close(self) -> None:
        self._listener.close()
        self.db.close()

    def subscribe(
        self, callback: Callable[[], None], *, ignore: frozenset[str] = frozenset()
    ) -> Callable[[], None]:
        """Call `callback` (from another thread) whenever new work may be there: a new run, a
        signal, a cancel, a child's result, a run's end (each NOTIFY names which, see the
        store's `_notify` calls), except the kinds in `ignore`. Returns the function that
        unsubscribes."""
        return self._listener.subscribe(callback, ignore)

    # ----------------------------------------------------------------- dialect hooks
    def _translate(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def _exec(self, conn: Conn, query: str, params: Any = None) -> psycopg.Cursor[Any]:
        """Every statement goes through here (the tests break connections in it)."""
        return conn.execute(query, params)

    def _read(self, op: Callable[[Session], T]) -> T:
        return self.db.run(lambda conn: op(_Session(self, conn)))

    def _write(
        self,
        op: Callable[[Session], T],
        *,
        resolve: Callable[[Session], tuple[bool, T]] | None = None,
    ) -> T:
        def transaction(conn: Conn) -> T:
            self.db.round_trips += 1  # the pipeline's last sync, with COMMIT
            with conn.pipeline() as pipeline:
                session = _Session(self, conn, pipeline)
                with conn.transaction():
                    result = op(session)
            session.unsynced = False  # the pipeline synced as it closed
            return result

        def resolved(conn: Conn) -> tuple[bool, T]:
            assert resolve is not None
            return resolve(_Session(self, conn))

        return self.db.run(transaction, resolve=None if resolve is None else resolved)

    def _notify(self, q: Session, what: str) -> None:
        q.execute("SELECT pg_notify(%s, %s)", (self.channel, what))

    def _lock_migration(self, q: Session) -> None:
        # Workers started together on an empty database: one migrates, the others wait.
        q.execute("SELECT pg_advisory_xact_lock(hashtext('tideflow-migrate:' || current_schema()))")

    def _needs_value(self, needs: list[str] | None) -> Any:
        return needs

    def _location(self, conn: Conn) -> tuple[str, str]:
        row = conn.execute("SELECT current_schema(), current_database()").fetchone()
        assert row is not None
        if row[0] is None:
            raise StoreError(
                f"PostgreSQL at {self.db.target}: the search_path names no schema that exists",
                hint="create the schema (CREATE SCHEMA name) or fix options=-csearch_path=... in the URL",
            )
        return str(row[0]), str(row[1])

    def _version(self, q: Session) -> int:
        tables = {
            r[0]
            for r in q.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchall()
        }
        if not tables:
            return 0
        not_ours = NotAStore(
            f"schema {self.schema!r} of {self.db.target} holds tables that are not a tideflow store",
            hint="point --db at an empty database, or choose a schema with ?options=-csearch_path%3Dname",
        )
        if "meta" not in tables:
            raise not_ours
        assert isinstance(q, _Session)
        try:
            with q.conn.transaction():
                row = q.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except psycopg.errors.UndefinedColumn:
            raise not_ours from None
        if row is None or not str(row[0]).isdigit():
            raise not_ours
        return int(row[0])
