"""The SQL store: every store operation's SQL, written once for every dialect.

A dialect (`sqlite.py`, `postgres.py`) supplies only how it talks to its database: a session
that executes statements (`Session`), what a read and a write transaction are, and a few words
it spells differently (`TOKENS`, `TYPES`). The SQL here uses `?` placeholders, standard
upserts (`ON CONFLICT`), `RETURNING` and `TRUE`/`FALSE`; a dialect rewrites `{token}`s once
per statement text.

A step's commit is fenced by the lease: the run's row is updated only while this owner holds
the token it claimed with, and every other write of the step is guarded by the row that update
leaves behind (`_GUARD`), so the statements of many runs' steps can be sent together (one
transaction, and one round trip on PostgreSQL's pipeline) and a run whose lease was lost
writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from interpreter.core.records import TERMINAL_STATUSES, Event
from interpreter.store.base import (
    EVENT_COLUMNS,
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
from interpreter.store.migrations import SCHEMA_VERSION, statements

T = TypeVar("T")

EVENT_PAGE = 1000  # events per read: a long history never holds a connection while read
VALUES_ROWS = 500  # rows per multi-row INSERT: under every dialect's parameter limit


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Session(Protocol):
    """One connection inside a read or a write transaction."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def sync(self) -> None:
        """Make the results of the statements sent so far readable (a pipeline flush)."""


def _run_columns(table: str) -> str:
    """The run columns in RUN_COLUMN_NAMES order, for a query on `runs` named `table`."""
    return (
        f"{table}.id, {table}.workflow, {table}.def_hash, {table}.status, "
        f"(SELECT i.input FROM run_inputs i WHERE i.run_id = {table}.id), "
        f"{table}.output, {table}.error, {table}.state, {table}.parent_id, {table}.root_id, "
        f"{table}.depth, {table}.created_at, {table}.updated_at, {table}.ended_at, "
        f"{table}.next_seq, {table}.lease_owner, {table}.lease_token, "
        f"{table}.cancel_requested, "
        f"(SELECT d.version FROM definitions d WHERE d.hash = {table}.def_hash)"
    )


_SELECT_RUN = f"SELECT {_run_columns('r')} FROM runs r"

# Holds once this owner's fenced update of the run landed in this transaction (its token and
# the run's new next_seq): what every other write of a step is conditioned on.
_GUARD = (
    "EXISTS (SELECT 1 FROM runs g WHERE g.id=? AND g.lease_owner=? AND g.lease_token=? "
    "AND g.next_seq=?)"
)

_UPDATE_STEP = (
    "UPDATE runs SET state=?, status=?, output=?, error=?, due_at=?, updated_at=?, ended_at=?, "
    "next_seq=next_seq+?, cancel_requested=(cancel_requested AND NOT ?), needs={needs_param} "
    "WHERE id=? AND lease_owner=? AND lease_token=? AND status='running'"
)

_EVENT_ROW = "(?,?,?,?,?,CAST(? AS INTEGER),?)"


def _events_insert(rows: int, guarded: bool) -> str:
    sql = (
        "INSERT INTO events(run_id, seq, type, time, state, attempt, payload) "
        "SELECT column1, column2, column3, column4, column5, column6, column7 FROM (VALUES "
        + ",".join([_EVENT_ROW] * rows)
        + ") AS v"
    )
    return sql + (f" WHERE {_GUARD}" if guarded else "")


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLStore:
    """The Store (interpreter.store.base.Store) on an SQL database; see the module docstring."""

    DIALECT: ClassVar[str]
    # Column types the migrations name (interpreter/store/migrations.py).
    TYPES: ClassVar[dict[str, str]]
    # Words the queries name: `needs_param` (how a needs list is bound), `offers_needs` (the
    # run's needs are within the bound list of offered activities), `skip_locked` (claim
    # passes over rows another transaction holds), `for_update` (lock the rows read).
    TOKENS: ClassVar[dict[str, str]]

    url: str

    def __init__(self) -> None:
        self._dead = DeadOwners()
        self._sql_cache: dict[str, str] = {}

    # ----------------------------------------------------------------- dialect hooks
    def _read(self, op: Callable[[Session], T]) -> T:
        """Run `op` outside a write transaction."""
        raise NotImplementedError

    def _write(
        self,
        op: Callable[[Session], T],
        *,
        resolve: Callable[[Session], tuple[bool, T]] | None = None,
    ) -> T:
        """Run `op` in one write transaction. `resolve` tells, after a connection broke during
        the commit, whether the write landed (`(True, value)`); dialects that cannot lose a
        commit's answer ignore it."""
        raise NotImplementedError

    def _version(self, q: Session) -> int:
        """The store's schema version (0: empty), refusing a database that is not a store."""
        raise NotImplementedError

    def _lock_migration(self, q: Session) -> None:
        """Keep processes that open one new store together from migrating it twice."""

    def _notify(self, q: Session, what: str) -> None:
        """Tell listening workers that new work may be there (a new run, a signal...)."""

    def _needs_value(self, needs: list[str] | None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------------- plumbing
    def sql(self, text: str) -> str:
        """`text` with the dialect's tokens filled in (cached: the same texts come back)."""
        done = self._sql_cache.get(text)
        if done is None:
            done = self._sql_cache[text] = self._translate(text.format_map(self.TOKENS))
        return done

    def _translate(self, text: str) -> str:
        """The dialect's placeholder style (`?` as written here, by default)."""
        return text

    def _migrate(self, q: Session, where: str) -> None:
        self._lock_migration(q)
        version = check_version(self._version(q), where)
        for index in range(version, SCHEMA_VERSION):
            for statement in statements(index, self.DIALECT, self.TYPES):
                q.execute(statement)
        if version != SCHEMA_VERSION:
            q.execute(
                self.sql(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (str(SCHEMA_VERSION),),
            )

    def _insert_events(
        self,
        q: Session,
        run_id: str,
        first_seq: int,
        events: list[Event],
        now: float,
        guard: tuple[Any, ...] | None = None,
    ) -> None:
        """Append `events` from `first_seq` on; with `guard` (see _GUARD), only if it holds."""
        rows = [
            (run_id, first_seq + i, e.type, now, e.state, e.attempt, dumps(e.payload))
            for i, e in enumerate(events)
        ]
        for chunk in _chunks(rows, VALUES_ROWS):
            args = [value for row in chunk for value in row]
            q.execute(
                self.sql(_events_insert(len(chunk), guard is not None)), [*args, *(guard or ())]
            )

    def _insert_run(self, q: Session, run: NewRun, now: float) -> bool:
        """Insert `run` unless a run with its id exists; True when it was inserted."""
        state = run.state
        q.execute(
            self.sql(
                "INSERT INTO definitions(hash, name, version, file, source, created_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (hash) DO NOTHING"
            ),
            (run.def_hash, run.workflow, run.def_version, run.def_file, run.def_source, now),
        )
        inserted = q.execute(
            self.sql(
                "INSERT INTO runs(id, workflow, def_hash, status, output, error, state, parent_id, "
                "root_id, depth, created_at, updated_at, ended_at, due_at, next_seq, needs) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,{needs_param}) ON CONFLICT (id) DO NOTHING"
            ),
            (
                run.id,
                run.workflow,
                run.def_hash,
                state["status"],
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
                self._needs_value(needs_of(state)),
            ),
        )
        q.sync()
        if inserted.rowcount != 1:
            return False
        q.execute(
            self.sql("INSERT INTO run_inputs(run_id, input) VALUES (?, ?)"),
            (run.id, dumps(run.input)),
        )
        self._insert_events(q, run.id, 1, run.events, now)
        return True

    # ----------------------------------------------------------------- definitions and runs
    def load_definition(self, def_hash: str) -> tuple[str, str | None]:
        row = self._read(
            lambda q: q.execute(
                self.sql("SELECT source, file FROM definitions WHERE hash=?"), (def_hash,)
            ).fetchone()
        )
        if row is None:
            raise definition_missing(def_hash)
        return row[0], row[1]

    def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        now = time.time()

        def op(q: Session) -> bool:
            created = self._insert_run(q, run, now)
            if created:
                self._notify(q, "run")
            return created

        def resolve(q: Session) -> tuple[bool, bool]:
            row = q.execute(self.sql("SELECT created_at FROM runs WHERE id=?"), (run.id,))
            found = row.fetchone()
            return found is not None, found is not None and found[0] == now

        created = self._write(op, resolve=resolve)
        record = self.get_run(run.id)
        if record is None:
            raise definition_missing(run.def_hash)  # pragma: no cover - runs are never deleted
        return record, created

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._read(
            lambda q: q.execute(self.sql(_SELECT_RUN + " WHERE r.id=?"), (run_id,)).fetchone()
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
            "?", status=status, workflow=workflow, parent_id=parent_id, limit=limit
        )
        rows = self._read(lambda q: q.execute(self.sql(_SELECT_RUN + tail), args).fetchall())
        return [run_from_row(row) for row in rows]

    def iter_events(self, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        query = self.sql(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id=? AND seq>? ORDER BY seq LIMIT ?"
        )

        def page(last: int) -> list[Any]:
            return self._read(lambda q: q.execute(query, (run_id, last, EVENT_PAGE)).fetchall())

        last = after
        while True:
            rows = page(last)
            for row in rows:
                yield event_from_row(row)
            if len(rows) < EVENT_PAGE:
                return
            last = rows[-1][0]

    # ----------------------------------------------------------------- work distribution
    def _dead_owners(self, now: float, run_id: str | None) -> list[str]:
        """Lease holders on this host whose process is gone: their runs are free at once."""
        if run_id is not None:
            row = self._read(
                lambda q: q.execute(
                    self.sql("SELECT lease_owner FROM runs WHERE id=? AND lease_expires >= ?"),
                    (run_id, now),
                ).fetchone()
            )
            return [row[0]] if row and row[0] and owner_is_dead(row[0]) else []
        query = self.sql(
            "SELECT DISTINCT lease_owner FROM runs WHERE lease_owner IS NOT NULL "
            "AND substr(lease_owner, 1, ?) = ? AND lease_expires >= ? AND status='running'"
        )
        return self._dead.get(
            lambda: [
                row[0]
                for row in self._read(
                    lambda q: q.execute(query, (len(HOST_PREFIX), HOST_PREFIX, now)).fetchall()
                )
            ]
        )

    def _claimable(
        self,
        now: float,
        run_id: str | None,
        root_id: str | None,
        activities: frozenset[str] | set[str] | None,
    ) -> tuple[str, list[Any]]:
        """WHERE terms (and their arguments) for the runs a claim may take now."""
        dead = self._dead_owners(now, run_id)
        where = (
            "r.status='running' AND (r.lease_owner IS NULL OR r.lease_expires IS NULL "
            "OR r.lease_expires < ?"
        )
        where += f" OR r.lease_owner IN ({','.join('?' * len(dead))}))" if dead else ")"
        args: list[Any] = [now, *dead]
        if root_id is not None:
            where += " AND r.root_id=?"
            args.append(root_id)
        if activities is not None:
            where += " AND {offers_needs}"
            args.append(self._needs_value(sorted(activities)))
        return where, args

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
        where, args = self._claimable(now, run_id, root_id, activities)
        if run_id is not None:
            where += " AND r.id=?"
            args.append(run_id)
        else:
            where += " AND r.due_at IS NOT NULL AND r.due_at<=?"
            args.append(now)
        expires = now + lease_seconds
        query = self.sql(
            "UPDATE runs SET lease_owner=?, lease_expires=?, lease_token=lease_token+1, "
            f"attention=FALSE WHERE id IN (SELECT r.id FROM runs r WHERE {where} "
            "ORDER BY r.due_at LIMIT ? {skip_locked}) "
            f"RETURNING {_run_columns('runs')}"
        )
        params = [owner, expires, *args, limit]

        def resolve(q: Session) -> tuple[bool, list[Any]]:
            # The lost answer's runs carry our owner id and this exact expiry.
            rows = q.execute(
                self.sql(
                    _SELECT_RUN + " WHERE r.lease_owner=? AND r.lease_expires=? "
                    "AND r.status='running'"
                ),
                (owner, expires),
            ).fetchall()
            return bool(rows), rows

        rows = self._write(lambda q: q.execute(query, params).fetchall(), resolve=resolve)
        return sorted((run_from_row(row) for row in rows), key=lambda r: r.id)

    def renew(self, run_id: str, owner: str, token: int, until: float) -> bool:
        query = self.sql(
            "UPDATE runs SET lease_expires=? WHERE id=? AND lease_owner=? AND lease_token=? "
            "AND status='running'"
        )
        return self._write(lambda q: q.execute(query, (until, run_id, owner, token)).rowcount == 1)

    def release(self, run_id: str, owner: str, token: int, due_at: float | None) -> None:
        # Something may have arrived (signal, cancel) since we last looked: keep it due.
        query = self.sql(
            "UPDATE runs SET lease_owner=NULL, lease_expires=NULL, "
            "due_at=CASE WHEN attention THEN ? ELSE ? END, attention=FALSE "
            "WHERE id=? AND lease_owner=? AND lease_token=?"
        )
        self._write(lambda q: q.execute(query, (time.time(), due_at, run_id, owner, token)))

    def commit(self, run: RunRecord, owner: str, commit: Commit, now: float) -> None:
        if not self.commit_many([(run, owner, commit)], now)[0]:
            raise LeaseLost(run.id)

    def commit_many(self, steps: Sequence[tuple[RunRecord, str, Commit]], now: float) -> list[bool]:
        """Write several runs' steps in one transaction; per step, whether it was written
        (False: that run's lease was lost, and nothing of its step was written). A written
        step moves its RunRecord on (next_seq, status, state)."""

        def guard(run: RunRecord, owner: str, commit: Commit) -> tuple[Any, ...]:
            return (run.id, owner, run.lease_token, run.next_seq + len(commit.events))

        def op(q: Session) -> list[bool]:
            updates = [self._queue_step(q, run, owner, commit, now) for run, owner, commit in steps]
            for run, owner, commit in steps:
                fence = guard(run, owner, commit)
                self._insert_events(q, run.id, run.next_seq, commit.events, now, fence)
                for ids in _chunks(commit.consumed, VALUES_ROWS):
                    q.execute(
                        self.sql(
                            f"UPDATE inbox SET consumed=TRUE WHERE id IN ({','.join('?' * len(ids))}) "
                            f"AND run_id=? AND {_GUARD}"
                        ),
                        [*ids, run.id, *fence],
                    )
            q.sync()
            written = [cursor.rowcount == 1 for cursor in updates]
            news = False
            for ok, (run, _owner, commit) in zip(written, steps, strict=True):
                if ok:
                    news = self._step_effects(q, run, commit, now) or news
            if news:
                self._notify(q, "step")
            return written

        def resolve(q: Session) -> tuple[bool, list[bool]]:
            # A lost answer: the steps that landed left exactly this trace.
            landed = [
                q.execute(
                    self.sql(
                        "SELECT 1 FROM runs WHERE id=? AND lease_owner=? AND lease_token=? "
                        "AND next_seq=? AND updated_at=?"
                    ),
                    (*guard(run, owner, commit), now),
                ).fetchone()
                is not None
                for run, owner, commit in steps
            ]
            return any(landed), landed

        written = self._write(op, resolve=resolve)
        for ok, (run, _owner, commit) in zip(written, steps, strict=True):
            if ok:
                run.next_seq += len(commit.events)
                run.status = commit.status
                run.state = commit.state
        return written

    def _queue_step(
        self, q: Session, run: RunRecord, owner: str, commit: Commit, now: float
    ) -> Cursor:
        ended = commit.status in TERMINAL_STATUSES
        return q.execute(
            self.sql(_UPDATE_STEP),
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
                self._needs_value(needs_of(commit.state)),
                run.id,
                owner,
                run.lease_token,
            ),
        )

    def _step_effects(self, q: Session, run: RunRecord, commit: Commit, now: float) -> bool:
        """The rest of a written step (children, map rows, the end); True when another run
        got news a worker should hear of."""
        ended = commit.status in TERMINAL_STATUSES
        news = False
        for new_run in commit.new_runs:
            news = self._insert_run(q, new_run, now) or news
        for child_id in commit.cancel_runs:
            self._request_cancel(q, child_id, now)
            news = True
        if ended:
            q.execute(self.sql("DELETE FROM heartbeats WHERE run_id=?"), (run.id,))
            q.execute(self.sql("DELETE FROM map_rows WHERE run_id=?"), (run.id,))
        else:
            for frame in commit.map_frames_done:
                q.execute(
                    self.sql("DELETE FROM map_rows WHERE run_id=? AND frame=?"), (run.id, frame)
                )
            for chunk in _chunks(commit.map_rows, VALUES_ROWS):
                q.execute(
                    self.sql(
                        "INSERT INTO map_rows(run_id, frame, kind, idx, value) VALUES "
                        + ",".join(["(?,?,?,?,?)"] * len(chunk))
                        + " ON CONFLICT (run_id, frame, kind, idx) DO UPDATE SET value = excluded.value"
                    ),
                    [v for f, i, kind, value in chunk for v in (run.id, f, kind, i, dumps(value))],
                )
        if commit.notify_parent is not None and run.parent_id is not None:
            self._post(q, run.parent_id, "child", run.id, commit.notify_parent, now)
            news = True
        return news

    def needs_attention(self, owner: str) -> set[str]:
        query = self.sql("SELECT id FROM runs WHERE attention AND lease_owner=?")
        return {row[0] for row in self._read(lambda q: q.execute(query, (owner,)).fetchall())}

    def read_inbox(self, run_id: str) -> tuple[list[InboxItem], bool]:
        def op(q: Session) -> tuple[list[InboxItem], bool]:
            q.execute(
                self.sql("UPDATE runs SET attention=FALSE WHERE id=? AND attention"), (run_id,)
            )
            flag = q.execute(
                self.sql("SELECT cancel_requested FROM runs WHERE id=?"), (run_id,)
            ).fetchone()
            rows = q.execute(
                self.sql(
                    "SELECT id, kind, name, payload FROM inbox WHERE run_id=? AND NOT consumed "
                    "ORDER BY id"
                ),
                (run_id,),
            ).fetchall()
            items = [InboxItem(r[0], r[1], r[2], loads(r[3])) for r in rows]
            return items, bool(flag and flag[0])

        return self._write(op)

    def load_map_rows(self, run_id: str) -> list[tuple[str, int, str, Any]]:
        query = self.sql("SELECT frame, idx, kind, value FROM map_rows WHERE run_id=?")
        rows = self._read(lambda q: q.execute(query, (run_id,)).fetchall())
        return [(r[0], int(r[1]), r[2], loads(r[3])) for r in rows]

    def next_due(
        self,
        root_id: str | None = None,
        owner: str | None = None,
        *,
        activities: frozenset[str] | set[str] | None = None,
    ) -> float | None:
        """The earliest due time among runs a claim could take now. Runs leased by a live worker
        (`owner` included) do not count: their holder wakes for them. An index walk in due
        order that stops at the first claimable run, however many runs sleep."""
        where, args = self._claimable(time.time(), None, root_id, activities)
        query = self.sql(
            f"SELECT r.due_at FROM runs r WHERE r.due_at IS NOT NULL AND {where} "
            "ORDER BY r.due_at LIMIT 1"
        )
        row = self._read(lambda q: q.execute(query, args).fetchone())
        return None if row is None else float(row[0])

    # ----------------------------------------------------------------- requests from outside
    def _post(self, q: Session, run_id: str, kind: str, name: str, payload: Any, now: float) -> int:
        row = q.execute(
            self.sql(
                "INSERT INTO inbox(run_id, kind, name, payload, created_at) VALUES (?,?,?,?,?) "
                "RETURNING id"
            ),
            (run_id, kind, name, dumps(payload), now),
        ).fetchone()
        q.execute(
            self.sql("UPDATE runs SET attention=TRUE, due_at=? WHERE id=? AND status='running'"),
            (now, run_id),
        )
        return int(row[0])

    def _require_running(self, q: Session, run_id: str) -> None:
        row = q.execute(self.sql("SELECT status FROM runs WHERE id=?"), (run_id,)).fetchone()
        check_running(run_id, None if row is None else row[0])

    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> int:
        def op(q: Session) -> int:
            self._require_running(q, run_id)
            item = self._post(q, run_id, "signal", name, payload, now)
            self._notify(q, "signal")
            return item

        def resolve(q: Session) -> tuple[bool, int]:
            row = q.execute(
                self.sql(
                    "SELECT id FROM inbox WHERE run_id=? AND kind='signal' AND name=? "
                    "AND created_at=?"
                ),
                (run_id, name, now),
            ).fetchone()
            return row is not None, int(row[0]) if row else 0

        return self._write(op, resolve=resolve)

    def _request_cancel(self, q: Session, run_id: str, now: float) -> None:
        q.execute(
            self.sql(
                "UPDATE runs SET cancel_requested=TRUE, attention=TRUE, due_at=? "
                "WHERE id=? AND status='running'"
            ),
            (now, run_id),
        )

    def request_cancel(self, run_id: str, now: float) -> None:
        def op(q: Session) -> None:
            self._require_running(q, run_id)
            self._request_cancel(q, run_id, now)
            self._notify(q, "cancel")

        def resolve(q: Session) -> tuple[bool, None]:
            row = q.execute(
                self.sql("SELECT cancel_requested FROM runs WHERE id=?"), (run_id,)
            ).fetchone()
            return bool(row and row[0]), None

        self._write(op, resolve=resolve)

    def terminate(self, run_id: str, reason: str, now: float) -> RunRecord:
        error = termination(reason)

        def op(q: Session) -> None:
            self._require_running(q, run_id)
            pending = [run_id]
            while pending:
                current = pending.pop()
                row = q.execute(
                    self.sql(
                        "SELECT state, next_seq, parent_id FROM runs WHERE id=? "
                        "AND status='running' {for_update}"
                    ),
                    (current,),
                ).fetchone()
                if row is None:
                    continue
                q.execute(
                    self.sql(
                        "UPDATE runs SET status='terminated', error=?, state=?, ended_at=?, "
                        "updated_at=?, due_at=NULL, lease_owner=NULL, lease_expires=NULL, "
                        "next_seq=next_seq+1, needs=NULL WHERE id=?"
                    ),
                    (dumps(error), dumps(terminated_state(row[0], error)), now, now, current),
                )
                event = Event("RunTerminated", payload={"error": error})
                self._insert_events(q, current, row[1], [event], now)
                q.execute(self.sql("DELETE FROM map_rows WHERE run_id=?"), (current,))
                # A parent terminated with it needs no news; the run's own parent does.
                if current == run_id and row[2]:
                    self._post(q, row[2], "child", current, terminated_news(error), now)
                children = q.execute(
                    self.sql("SELECT id FROM runs WHERE parent_id=? AND status='running'"),
                    (current,),
                ).fetchall()
                pending += [child[0] for child in children]
            self._notify(q, "terminate")

        def resolve(q: Session) -> tuple[bool, None]:
            row = q.execute(
                self.sql("SELECT status, ended_at FROM runs WHERE id=?"), (run_id,)
            ).fetchone()
            return bool(row and row[0] == "terminated" and row[1] == now), None

        self._write(op, resolve=resolve)
        record = self.get_run(run_id)
        assert record is not None
        return record

    def record_heartbeat(self, run_id: str, task_id: str, details: Any, now: float) -> None:
        query = self.sql(
            "INSERT INTO heartbeats(run_id, task_id, details, at) VALUES (?,?,?,?) "
            "ON CONFLICT (run_id, task_id) DO UPDATE SET details=excluded.details, at=excluded.at"
        )
        self._write(lambda q: q.execute(query, (run_id, task_id, dumps(details), now)))

    def heartbeat_details(self, run_id: str, task_id: str) -> Any:
        query = self.sql("SELECT details FROM heartbeats WHERE run_id=? AND task_id=?")
        row = self._read(lambda q: q.execute(query, (run_id, task_id)).fetchone())
        return None if row is None else loads(row[0])
