"""The SQL store's foundation: the session a dialect provides, the hooks it fills in, and the
writes that several store operations share (a new run, its events, an inbox item, a cancel).

See sql.py for the operations themselves and the fencing of a step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from interpreter.core.records import Event
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.store.base import (
    RunRecord,
    check_running,
    check_version,
    dumps,
    event_row_payload,
    needs_of,
)
from interpreter.store.leases import DeadOwners
from interpreter.store.migrations import SCHEMA_VERSION, statements

if TYPE_CHECKING:  # only annotated here: the engine makes them
    from interpreter.store.writes import Commit, NewRun

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


def run_columns(table: str) -> str:
    """The run columns in RUN_COLUMN_NAMES order, for a query on `runs` named `table`."""
    return (
        f"{table}.id, {table}.workflow, {table}.def_hash, {table}.status, "
        f"(SELECT i.input FROM run_inputs i WHERE i.run_id = {table}.id), "
        f"{table}.output, {table}.error, {table}.state, {table}.parent_id, {table}.root_id, "
        f"{table}.depth, {table}.created_at, {table}.updated_at, {table}.ended_at, "
        f"{table}.next_seq, {table}.lease_owner, {table}.lease_token, "
        f"{table}.cancel_requested, "
        f"(SELECT d.version FROM definitions d WHERE d.hash = {table}.def_hash), "
        f"{table}.forked_from, {table}.forked_from_state"
    )


SELECT_RUN = f"SELECT {run_columns('r')} FROM runs r"

# Holds once this owner's fenced update of the run landed in this transaction (its token and
# the run's new next_seq): what every other write of a step is conditioned on.
GUARD = (
    "EXISTS (SELECT 1 FROM runs g WHERE g.id=? AND g.lease_owner=? AND g.lease_token=? "
    "AND g.next_seq=?)"
)

_STEP_FENCE = "WHERE id=? AND lease_owner=? AND lease_token=? AND status='running'"
# The step that ends the run; one that leaves it running sets no status (SQLite then leaves
# the indexes on the status alone), no end time and no cancel request.
UPDATE_STEP = (
    "UPDATE runs SET state=?, status=?, output=?, error=?, due_at=?, updated_at=?, ended_at=?, "
    "next_seq=next_seq+?, cancel_requested=(cancel_requested AND NOT ?), needs={needs_param} "
    + _STEP_FENCE
)


def _running_step(sets_due: bool) -> str:
    due = "due_at=?, " if sets_due else ""
    return (
        f"UPDATE runs SET state=?, output=?, error=?, {due}updated_at=?, next_seq=next_seq+?, "
        "needs={needs_param} " + _STEP_FENCE
    )


UPDATE_RUNNING_STEP = _running_step(sets_due=True)
# A step of a running run whose row is due already (Commit.keep_due): due_at stays.
UPDATE_RUNNING_STEP_KEEP_DUE = _running_step(sets_due=False)

EVENT_ROW = "(?,?,?,?,?,?,CAST(? AS INTEGER),?)"
# Events per row of `events` (migration 13): a step's events share one row, and a step that
# writes thousands (a large map starting) still reads back in pages of bounded rows.
EVENTS_PER_ROW = 100


@cache  # built once per (rows, guarded): a step's insert is one of a few texts
def events_insert(rows: int, guarded: bool) -> str:
    sql = (
        "INSERT INTO events(run_id, seq, last_seq, type, time, state, attempt, payload) "
        "SELECT column1, column2, column3, column4, column5, column6, column7, column8 "
        "FROM (VALUES " + ",".join([EVENT_ROW] * rows) + ") AS v"
    )
    return sql + (f" WHERE {GUARD}" if guarded else "")


def step_fence(run: RunRecord, owner: str, commit: Commit) -> tuple[Any, ...]:
    """The arguments of GUARD for this step."""
    return (run.id, owner, run.lease_token, run.next_seq + len(commit.events))


def has_effects(run: RunRecord, commit: Commit) -> bool:
    """The step writes more than its own run: children, map rows, news for its parent."""
    running = commit.status not in TERMINAL_STATUSES
    return bool(
        commit.new_runs
        or commit.cancel_runs
        or commit.terminate_runs
        or (running and (commit.map_rows or commit.map_frames_done))
        or (commit.notify_parent is not None and run.parent_id is not None)
    )


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLCore:
    """What every SQL store operation stands on; a dialect subclasses SQLStore and fills in
    the hooks below."""

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
        # Definitions this store has seen committed. No operation deletes a definition, so a
        # run started with one of these needs no INSERT ... ON CONFLICT DO NOTHING for it.
        self._stored_definitions: set[str] = set()

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
        """Append `events` from `first_seq` on, up to EVENTS_PER_ROW to a row; with `guard`
        (see GUARD), only if it holds."""
        rows = []
        for start in range(0, len(events), EVENTS_PER_ROW):
            part = events[start : start + EVENTS_PER_ROW]
            first = part[0]
            seq = first_seq + start
            rows.append(
                (
                    run_id,
                    seq,
                    seq + len(part) - 1,
                    first.type,
                    now,
                    first.state,
                    first.attempt,
                    event_row_payload(part),
                )
            )
        for chunk in chunks(rows, VALUES_ROWS):
            args = [value for row in chunk for value in row]
            q.execute(
                self.sql(events_insert(len(chunk), guard is not None)), [*args, *(guard or ())]
            )

    def _insert_run(self, q: Session, run: NewRun, now: float) -> RunRecord | None:
        """Insert `run` unless a run with its id exists; the record of the row inserted (what
        get_run would read back, holding `run`'s own state and input), None when one existed."""
        state = run.state
        # A fork's link lives in its run state (interpreter/redrive.py); the columns let
        # `list` and `status` find forks without reading states.
        fork = state.get("run", {}).get("forked_from") or {}
        record = RunRecord(
            id=run.id,
            workflow=run.workflow,
            def_hash=run.def_hash,
            status=state["status"],
            input=run.input,
            output=state.get("output"),
            error=state.get("error"),
            state=state,
            parent_id=run.parent_id,
            root_id=run.root_id or run.id,
            depth=run.depth,
            created_at=now,
            updated_at=now,
            ended_at=now if state["status"] in TERMINAL_STATUSES else None,
            next_seq=len(run.events) + 1,
            version=run.def_version,
            forked_from=fork.get("run"),
            forked_from_state=fork.get("state"),
        )
        if run.def_hash not in self._stored_definitions:
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
                "root_id, depth, created_at, updated_at, ended_at, due_at, next_seq, needs, "
                "forked_from, forked_from_state) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,{needs_param},?,?) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            (
                record.id,
                record.workflow,
                record.def_hash,
                record.status,
                dumps(record.output),
                dumps(record.error),
                dumps(state),
                record.parent_id,
                record.root_id,
                record.depth,
                now,
                now,
                record.ended_at,
                run.due_at,
                record.next_seq,
                self._needs_value(needs_of(state)),
                record.forked_from,
                record.forked_from_state,
            ),
        )
        q.sync()
        if inserted.rowcount != 1:
            return None
        q.execute(
            self.sql("INSERT INTO run_inputs(run_id, input) VALUES (?, ?)"),
            (run.id, dumps(run.input)),
        )
        self._insert_events(q, run.id, 1, run.events, now)
        return record

    # ----------------------------------------------------------------- shared writes
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

    def _request_cancel(self, q: Session, run_id: str, now: float) -> None:
        q.execute(
            self.sql(
                "UPDATE runs SET cancel_requested=TRUE, attention=TRUE, due_at=? "
                "WHERE id=? AND status='running'"
            ),
            (now, run_id),
        )
