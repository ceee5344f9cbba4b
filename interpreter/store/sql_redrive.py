"""The SQL store's retry (redrive) of an ended run: its SQL, written once for every dialect,
mixed into SQLStore.

`reopen_run` puts an ended run back to `running` with the run state the core rebuilt
(interpreter/redrive.py), in one transaction: the definition it moves to (if new), the run
row (only if it still has the status the caller saw), a new history segment and its first
events, and the tokens of the callback waits that wait again. A crash leaves either the ended
run or the reopened one, never half of it. `reopen_runs` does the same for several runs (a
parent and the failed child runs retried with it) in one transaction: all or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from interpreter.errors import RunFinished
from interpreter.store.base import RunRecord, dumps, needs_of
from interpreter.store.sqlcore import Session, SQLCore

if TYPE_CHECKING:  # only annotated here: the engine makes them
    from interpreter.store.writes import Reopen


class RedriveSQL(SQLCore):
    """Store.reopen_run and Store.reopen_runs."""

    def reopen_run(self, run_id: str, expect_status: str, reopen: Reopen, now: float) -> RunRecord:
        """Reopen `run_id` if its status is still `expect_status`; else RunFinished."""
        return self.reopen_runs([(run_id, expect_status, reopen)], now)[0]

    def reopen_runs(
        self, reopens: Sequence[tuple[str, str, Reopen]], now: float
    ) -> list[RunRecord]:
        """Reopen each (run, status it must still have, reopen) in one transaction; when any
        run no longer has its status, RunFinished and nothing is changed."""

        def op(q: Session) -> None:
            for run_id, expect_status, reopen in reopens:
                self._reopen_one(q, run_id, expect_status, reopen, now)
            self._notify(q, "run")

        self._write(op)
        records = []
        for run_id, _status, _reopen in reopens:
            record = self.get_run(run_id)  # type: ignore[attr-defined]
            assert isinstance(record, RunRecord)
            records.append(record)
        return records

    def _reopen_one(
        self, q: Session, run_id: str, expect_status: str, reopen: Reopen, now: float
    ) -> None:
        q.execute(
            self.sql(
                "INSERT INTO definitions(hash, name, version, file, source, created_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (hash) DO NOTHING"
            ),
            (
                reopen.def_hash,
                reopen.workflow,
                reopen.def_version,
                reopen.def_file,
                reopen.def_source,
                now,
            ),
        )
        row = q.execute(
            self.sql("SELECT next_seq FROM runs WHERE id=? AND status=?"),
            (run_id, expect_status),
        ).fetchone()
        if row is None:
            raise RunFinished(
                f"run {run_id!r} is no longer {expect_status}; nothing was changed",
                hint="`tideflow status RUN` shows where it is now",
            )
        first_seq = int(row[0])
        q.execute(
            self.sql(
                "UPDATE runs SET state=?, status='running', output=?, error=?, def_hash=?, "
                "due_at=?, updated_at=?, ended_at=NULL, next_seq=next_seq+?, "
                "cancel_requested=FALSE, attention=FALSE, lease_owner=NULL, lease_expires=NULL, "
                "needs={needs_param} WHERE id=? AND status=?"
            ),
            (
                dumps(reopen.state),
                dumps(None),
                dumps(None),
                reopen.def_hash,
                now,
                now,
                len(reopen.events),
                self._needs_value(needs_of(reopen.state)),
                run_id,
                expect_status,
            ),
        )
        q.execute(
            self.sql(
                "INSERT INTO segments(run_id, segment, first_seq, started_at) VALUES (?,?,?,?)"
            ),
            (run_id, reopen.segment, first_seq, now),
        )
        self._insert_events(q, run_id, first_seq, reopen.events, now)
        for task_id, attempt in reopen.callbacks_reopened:
            q.execute(
                self.sql(
                    "UPDATE callbacks SET status='pending', ended_at=NULL WHERE run_id=? "
                    "AND task_id=? AND attempt=CAST(? AS INTEGER) AND status='closed'"
                ),
                (run_id, task_id, attempt),
            )
