"""The SQL store's updates (Client.update / `tideflow update`): each operation's SQL, written
once for every dialect, mixed into SQLStore.

An update is one row of `updates` (run, update id) plus an inbox item of kind "update" that
wakes the run's worker, both written in one transaction. The worker's step that decides it
consumes the inbox item and writes the outcome in that step's own transaction (guarded by the
step's fence like every other write of a step), so an update is applied at most once, and a
crash before that commit leaves it pending to be applied on resume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interpreter.store.base import RunRecord, UpdateRecord, dumps, loads
from interpreter.store.sqlcore import GUARD, Session, SQLCore

if TYPE_CHECKING:  # only annotated here: the engine makes them
    from interpreter.store.writes import UpdateOutcome

_COLUMNS = "run_id, id, name, payload, status, result, message, created_at, decided_at"


def _record(row: Any) -> UpdateRecord:
    run_id, id_, name, payload, status, result, message, created, decided = row
    return UpdateRecord(
        run_id, id_, name, loads(payload), status, loads(result), message, created, decided
    )


class UpdateSQL(SQLCore):
    """Store.add_update, Store.get_update, and the guarded outcome writes of a step."""

    def _select_update(self, q: Session, run_id: str, update_id: str) -> UpdateRecord | None:
        row = q.execute(
            self.sql(f"SELECT {_COLUMNS} FROM updates WHERE run_id=? AND id=?"),
            (run_id, update_id),
        ).fetchone()
        return None if row is None else _record(row)

    def add_update(
        self, run_id: str, update_id: str, name: str, payload: Any, now: float
    ) -> tuple[UpdateRecord, bool]:
        """Store a new pending update and wake the run (True), or return the update already
        stored under this id (False) whatever the run's status. A new update for a run that
        ended, or does not exist, raises RunFinished / RunNotFound."""

        def op(q: Session) -> tuple[UpdateRecord, bool]:
            existing = self._select_update(q, run_id, update_id)
            if existing is not None:
                return existing, False
            self._require_running(q, run_id)
            inserted = q.execute(
                self.sql(
                    "INSERT INTO updates(run_id, id, name, payload, status, created_at) "
                    "VALUES (?,?,?,?,'pending',?) ON CONFLICT (run_id, id) DO NOTHING"
                ),
                (run_id, update_id, name, dumps(payload), now),
            )
            q.sync()
            if inserted.rowcount != 1:  # another caller stored this id meanwhile
                again = self._select_update(q, run_id, update_id)
                assert again is not None
                return again, False
            self._post(q, run_id, "update", name, {"id": update_id, "payload": payload}, now)
            self._notify(q, "update")
            record = UpdateRecord(
                run_id, update_id, name, payload, "pending", None, None, now, None
            )
            return record, True

        def resolve(q: Session) -> tuple[bool, tuple[UpdateRecord, bool]]:
            found = self._select_update(q, run_id, update_id)
            if found is None:
                return False, (
                    UpdateRecord(run_id, update_id, name, payload, "", None, None, 0, None),
                    False,
                )
            return True, (found, found.created_at == now)

        return self._write(op, resolve=resolve)

    def get_update(self, run_id: str, update_id: str) -> UpdateRecord | None:
        return self._read(lambda q: self._select_update(q, run_id, update_id))

    def _queue_update_outcomes(
        self,
        q: Session,
        run: RunRecord,
        outcomes: list[UpdateOutcome],
        fence: tuple[Any, ...],
        now: float,
    ) -> None:
        """The outcomes a step decided, written only if its fenced update landed (GUARD)."""
        for outcome in outcomes:
            q.execute(
                self.sql(
                    "UPDATE updates SET status=?, result=?, message=?, decided_at=? "
                    f"WHERE run_id=? AND id=? AND status='pending' AND {GUARD}"
                ),
                (
                    outcome.status,
                    dumps(outcome.result),
                    outcome.message,
                    now,
                    run.id,
                    outcome.id,
                    *fence,
                ),
            )
