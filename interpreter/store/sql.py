"""The SQL store: every store operation's SQL, written once for every dialect.

A dialect (`sqlite.py`, `postgres.py`) supplies only how it talks to its database: a session
that executes statements (`Session`), what a read and a write transaction are, and a few words
it spells differently (`TOKENS`, `TYPES`). The SQL here uses `?` placeholders, standard
upserts (`ON CONFLICT`), `RETURNING` and `TRUE`/`FALSE`; a dialect rewrites `{token}`s once
per statement text.

A step's commit is fenced by the lease: the run's row is updated only while this owner holds
the token it claimed with, and every other write of the step is guarded by the row that update
leaves behind (`GUARD`), so the statements of many runs' steps can be sent together (one
transaction, and one round trip on PostgreSQL's pipeline) and a run whose lease was lost
writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from interpreter import clock
from interpreter.core.records import RETRIED_EVENT, Event
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import StoreError
from interpreter.store.base import (
    EVENT_COLUMNS,
    InboxItem,
    LeaseLost,
    RunRecord,
    Segment,
    definition_missing,
    dumps,
    events_from_row,
    list_runs_filter,
    loads,
    needs_of,
    run_from_row,
    terminated_news,
    terminated_state,
    termination,
)
from interpreter.store.sql_callbacks import CallbackSQL
from interpreter.store.sql_leases import LeaseSQL
from interpreter.store.sql_redrive import RedriveSQL
from interpreter.store.sql_updates import UpdateSQL
from interpreter.store.sqladmin import SQLAdmin
from interpreter.store.sqlcore import (
    EVENT_PAGE,
    GUARD,
    SELECT_RUN,
    UPDATE_RUNNING_STEP,
    UPDATE_RUNNING_STEP_KEEP_DUE,
    UPDATE_STEP,
    VALUES_ROWS,
    Cursor,
    Session,
    chunks,
    has_effects,
    step_fence,
)

if TYPE_CHECKING:  # only annotated here: the engine makes them
    from interpreter.store.writes import Commit, NewRun


class SQLStore(SQLAdmin, LeaseSQL, CallbackSQL, UpdateSQL, RedriveSQL):
    """The Store (interpreter.store.base.Store) on an SQL database; see the module docstring."""

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
        now = clock.wall()

        def op(q: Session) -> RunRecord | None:
            created = self._insert_run(q, run, now)
            if created is not None:
                self._notify(q, "run")
            return created

        def resolve(q: Session) -> tuple[bool, RunRecord | None]:
            row = q.execute(self.sql(SELECT_RUN + " WHERE r.id=?"), (run.id,)).fetchone()
            if row is None:
                return False, None
            found = run_from_row(row)
            return True, found if found.created_at == now else None  # ours, or another's

        created = self._write(op, resolve=resolve)
        self._stored_definitions.add(run.def_hash)  # committed: by this run or an earlier one
        if created is not None:
            # What was written, not read back: the read cost a sixth of starting a run.
            return created, True
        record = self.get_run(run.id)
        if record is None:
            # Only another process deleting it in between could do this (tideflow never does).
            raise StoreError(f"run {run.id} vanished right after it was created")
        return record, False

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._read(
            lambda q: q.execute(self.sql(SELECT_RUN + " WHERE r.id=?"), (run_id,)).fetchone()
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
        rows = self._read(lambda q: q.execute(self.sql(SELECT_RUN + tail), args).fetchall())
        return [run_from_row(row) for row in rows]

    def iter_events(self, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        query = self.sql(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id=? AND seq>? ORDER BY seq LIMIT ?"
        )
        # The row that holds event `after` may hold some after it too (a step's events).
        holding = self.sql(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id=? AND seq<=? "
            "ORDER BY seq DESC LIMIT 1"
        )

        def page(last: int) -> list[Any]:
            return self._read(lambda q: q.execute(query, (run_id, last, EVENT_PAGE)).fetchall())

        last = after
        if after > 0:
            row = self._read(lambda q: q.execute(holding, (run_id, after)).fetchone())
            if row is not None and row[1] > after:
                for event in events_from_row(row):
                    if event["seq"] > after:
                        yield event
                last = row[1]
        while True:
            rows = page(last)
            for row in rows:
                yield from events_from_row(row)
            if len(rows) < EVENT_PAGE:
                return
            last = rows[-1][1]

    def list_segments(self, run_id: str) -> list[Segment]:
        def op(q: Session) -> list[Segment]:
            run = q.execute(self.sql("SELECT created_at FROM runs WHERE id=?"), (run_id,))
            created = run.fetchone()
            if created is None:
                return []
            # A segment's first event says how it began: RunRetried (a retry) or not
            # (continue-as-new).
            rows = q.execute(
                self.sql(
                    "SELECT s.segment, s.first_seq, s.started_at, (SELECT e.type FROM events e "
                    "WHERE e.run_id=s.run_id AND e.seq=s.first_seq) FROM segments s "
                    "WHERE s.run_id=? ORDER BY s.segment"
                ),
                (run_id,),
            ).fetchall()
            first = Segment(1, 1, float(created[0]))
            return [
                first,
                *(Segment(int(r[0]), int(r[1]), float(r[2]), r[3] == RETRIED_EVENT) for r in rows),
            ]

        return self._read(op)

    def commit(self, run: RunRecord, owner: str, commit: Commit, now: float) -> None:
        if not self.commit_many([(run, owner, commit, now)])[0]:
            raise LeaseLost(run.id)

    def commit_many(self, steps: Sequence[tuple[RunRecord, str, Commit, float]]) -> list[bool]:
        """Write several runs' steps (run, owner, commit, now) in one transaction (group
        commit); per step, whether it was written. False: that run's lease was lost, and
        nothing of its step was written. A written step moves its RunRecord on (next_seq,
        status, state).

        The common step (state, events, consumed inbox items, the end's clean-up) is only
        guarded writes, so no result is read before COMMIT: on PostgreSQL the whole batch is
        one round trip. Only steps that start or cancel other runs, write map rows or tell a
        parent read the fence's result first."""

        def op(q: Session) -> Callable[[], list[bool]]:
            updates = [self._queue_step(q, *step) for step in steps]
            for run, owner, commit, now in steps:
                self._queue_guarded(q, run, owner, commit, now)
            if any(commit.status in TERMINAL_STATUSES for _, _, commit, _ in steps):
                # Callers waiting for a result (AsyncClient.result) wake on this: no polling.
                self._notify(q, "end")
            if not any(has_effects(run, commit) for run, _, commit, _ in steps):
                return lambda: [cursor.rowcount == 1 for cursor in updates]
            q.sync()
            written = [cursor.rowcount == 1 for cursor in updates]
            news = False
            for ok, (run, _owner, commit, now) in zip(written, steps, strict=True):
                if ok and has_effects(run, commit):
                    news = self._step_effects(q, run, commit, now) or news
            if news:
                self._notify(q, "step")
            return lambda: written

        def resolve(q: Session) -> tuple[bool, Callable[[], list[bool]]]:
            # A lost answer: the steps that landed left exactly this trace.
            landed = [
                q.execute(
                    self.sql(
                        "SELECT 1 FROM runs WHERE id=? AND lease_owner=? AND lease_token=? "
                        "AND next_seq=? AND updated_at=?"
                    ),
                    (*step_fence(run, owner, commit), now),
                ).fetchone()
                is not None
                for run, owner, commit, now in steps
            ]
            return any(landed), lambda: landed

        written = self._write(op, resolve=resolve)()
        for ok, (run, _owner, commit, _now) in zip(written, steps, strict=True):
            if ok:
                run.next_seq += len(commit.events)
                run.status = commit.status
                run.state = commit.state
                if commit.new_segment is not None:
                    run.input = commit.new_segment.input
        return written

    def _queue_step(
        self, q: Session, run: RunRecord, owner: str, commit: Commit, now: float
    ) -> Cursor:
        """The fenced update of the run's row."""
        fence = (run.id, owner, run.lease_token)
        if commit.status == "running":
            state, output, error = dumps(commit.state), dumps(commit.output), dumps(commit.error)
            needs = self._needs_value(needs_of(commit.state))
            sql, due = (
                (UPDATE_RUNNING_STEP_KEEP_DUE, ())
                if commit.keep_due
                else (UPDATE_RUNNING_STEP, (commit.due_at,))
            )
            return q.execute(
                self.sql(sql), (state, output, error, *due, now, len(commit.events), needs, *fence)
            )
        ended = commit.status in TERMINAL_STATUSES
        return q.execute(
            self.sql(UPDATE_STEP),
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
                *fence,
            ),
        )

    def _queue_guarded(
        self, q: Session, run: RunRecord, owner: str, commit: Commit, now: float
    ) -> None:
        """The writes of a step that hold only if its fenced update did (see GUARD)."""
        fence = step_fence(run, owner, commit)
        segment = commit.new_segment
        # A new segment's first event starts a row: list_segments reads its type there.
        split = 0 if segment is None else segment.first_event
        if 0 < split < len(commit.events):
            self._insert_events(q, run.id, run.next_seq, commit.events[:split], now, fence)
            self._insert_events(q, run.id, run.next_seq + split, commit.events[split:], now, fence)
        else:
            self._insert_events(q, run.id, run.next_seq, commit.events, now, fence)
        self._queue_callbacks(q, run, commit, fence, now)
        for ids in chunks(commit.consumed, VALUES_ROWS):
            marks = ",".join("?" * len(ids))
            q.execute(
                self.sql(
                    f"UPDATE inbox SET consumed=TRUE WHERE id IN ({marks}) AND run_id=? AND {GUARD}"
                ),
                [*ids, run.id, *fence],
            )
        if segment is not None:
            # Continue-as-new: the next segment's row, its input, and no old heartbeats.
            q.execute(
                self.sql(
                    "INSERT INTO segments(run_id, segment, first_seq, started_at) "
                    f"SELECT ?, ?, ?, ? WHERE {GUARD}"
                ),
                (run.id, segment.segment, run.next_seq + segment.first_event, now, *fence),
            )
            q.execute(
                self.sql(f"UPDATE run_inputs SET input=? WHERE run_id=? AND {GUARD}"),
                (dumps(segment.input), run.id, *fence),
            )
            q.execute(
                self.sql(f"DELETE FROM heartbeats WHERE run_id=? AND {GUARD}"), (run.id, *fence)
            )
        if commit.updates:
            self._queue_update_outcomes(q, run, commit.updates, fence, now)
        if commit.status in TERMINAL_STATUSES:
            for table in ("heartbeats", "map_rows"):
                q.execute(
                    self.sql(f"DELETE FROM {table} WHERE run_id=? AND {GUARD}"), (run.id, *fence)
                )

    def _step_effects(self, q: Session, run: RunRecord, commit: Commit, now: float) -> bool:
        """The rest of a written step (see has_effects); True when another run got news a
        worker should hear of."""
        news = False
        for new_run in commit.new_runs:
            news = self._insert_run(q, new_run, now) is not None or news
        for child_id in commit.cancel_runs:
            self._request_cancel(q, child_id, now)
            news = True
        for child_id in commit.terminate_runs:
            self._terminate_tree(
                q, child_id, termination(f"parent run {run.id} ended"), now, tell_parent=False
            )
            news = True
        if commit.status not in TERMINAL_STATUSES:
            for frame in commit.map_frames_done:
                q.execute(
                    self.sql("DELETE FROM map_rows WHERE run_id=? AND frame=?"), (run.id, frame)
                )
            for chunk in chunks(commit.map_rows, VALUES_ROWS):
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
        flag_query = self.sql("SELECT cancel_requested, attention FROM runs WHERE id=?")
        items_query = self.sql(
            "SELECT id, kind, name, payload FROM inbox WHERE run_id=? AND NOT consumed ORDER BY id"
        )

        def look(q: Session) -> tuple[list[InboxItem], bool, bool]:
            flag = q.execute(flag_query, (run_id,)).fetchone()
            rows = q.execute(items_query, (run_id,)).fetchall()
            items = [InboxItem(r[0], r[1], r[2], loads(r[3])) for r in rows]
            return items, bool(flag and flag[0]), bool(flag and flag[1])

        # Mostly nobody asked for attention since the claim (which clears it): then a read
        # does, without taking the write lock. Something sent after it sets attention again,
        # and the worker hears of it by needs_attention.
        items, cancel, attention = self._read(look)
        if not attention:
            return items, cancel

        def op(q: Session) -> tuple[list[InboxItem], bool]:
            q.execute(
                self.sql("UPDATE runs SET attention=FALSE WHERE id=? AND attention"), (run_id,)
            )
            items, cancel, _ = look(q)
            return items, cancel

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
        where, args = self._claimable(clock.wall(), None, root_id, activities)
        query = self.sql(
            f"SELECT r.due_at FROM runs r WHERE r.due_at IS NOT NULL AND {where} "
            "ORDER BY r.due_at LIMIT 1"
        )
        row = self._read(lambda q: q.execute(query, args).fetchone())
        return None if row is None else float(row[0])

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
            self._terminate_tree(q, run_id, error, now, tell_parent=True)
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

    def _terminate_tree(
        self, q: Session, run_id: str, error: dict[str, Any], now: float, *, tell_parent: bool
    ) -> None:
        """End `run_id` and its running children at once. A detached child follows its
        parent-close policy instead (kept in the parent's state): abandon leaves it running,
        cancel asks it to cancel."""
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
            state = terminated_state(row[0], error)
            detached: dict[str, str] = state.pop("detached", None) or {}
            q.execute(
                self.sql(
                    "UPDATE runs SET status='terminated', error=?, state=?, ended_at=?, "
                    "updated_at=?, due_at=NULL, lease_owner=NULL, lease_expires=NULL, "
                    "next_seq=next_seq+?, needs=NULL WHERE id=?"
                ),
                (dumps(error), dumps(state), now, now, 1 + len(detached), current),
            )
            events = [
                Event("ParentClosePolicyApplied", payload={"child": child, "policy": policy})
                for child, policy in detached.items()
            ]
            events.append(Event("RunTerminated", payload={"error": error}))
            self._insert_events(q, current, row[1], events, now)
            for table in ("map_rows", "heartbeats"):
                q.execute(self.sql(f"DELETE FROM {table} WHERE run_id=?"), (current,))
            self._close_run_callbacks(q, current, now)
            # A parent terminated with it needs no news; the run's own parent does.
            if current == run_id and row[2] and tell_parent:
                self._post(q, row[2], "child", current, terminated_news(error), now)
            children = q.execute(
                self.sql("SELECT id FROM runs WHERE parent_id=? AND status='running'"),
                (current,),
            ).fetchall()
            for (child,) in children:
                policy = detached.get(child)
                if policy == "cancel":
                    self._request_cancel(q, child, now)
                elif policy != "abandon":
                    pending.append(child)

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
