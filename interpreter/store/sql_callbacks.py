"""The SQL of callback tokens (`completion: callback`), written once for every dialect.

A token's row is written by the step that starts its attempt and closed by the step that ends
the wait, both guarded like every other write of a step (see sql.py, GUARD). A request from
outside (`send_callback`) reads the row under a lock, refuses a token that is unknown, used or
late, and otherwise marks the attempt completed (or records the heartbeat) and posts an inbox
item for the run in the same transaction: a worker that comes later applies it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import CallbackRefused
from interpreter.store.base import CallbackTarget, RunRecord, dumps
from interpreter.store.sqlcore import GUARD, Session, SQLCore

if TYPE_CHECKING:  # only annotated here: the engine makes them
    from interpreter.store.writes import Commit

_OPEN = (
    "INSERT INTO callbacks(token_hash, run_id, task_id, attempt, state, status, created_at) "
    f"SELECT ?, ?, ?, CAST(? AS INTEGER), ?, 'pending', ? WHERE {GUARD}"
)
_CLOSE = (
    "UPDATE callbacks SET status='closed', ended_at=? WHERE run_id=? AND task_id=? "
    f"AND attempt=CAST(? AS INTEGER) AND status = 'pending' AND {GUARD}"
)
_CLOSE_RUN = (
    "UPDATE callbacks SET status='closed', ended_at=? WHERE run_id=? AND status = 'pending'"
)

_HINT = "a token is valid from the moment its attempt starts until the first completion"


class CallbackSQL(SQLCore):
    """Callback tokens: part of the SQL store (SQLStore inherits it)."""

    def _queue_callbacks(
        self, q: Session, run: RunRecord, commit: Commit, fence: tuple[Any, ...], now: float
    ) -> None:
        """A step's token rows: opened, closed, and all closed when the run ends (guarded)."""
        for task_id, attempt, state, token_hash in commit.callbacks_opened:
            q.execute(self.sql(_OPEN), (token_hash, run.id, task_id, attempt, state, now, *fence))
        for task_id, attempt in commit.callbacks_closed:
            q.execute(self.sql(_CLOSE), (now, run.id, task_id, attempt, *fence))
        if commit.status in TERMINAL_STATUSES:
            q.execute(self.sql(f"{_CLOSE_RUN} AND {GUARD}"), (now, run.id, *fence))

    def _close_run_callbacks(self, q: Session, run_id: str, now: float) -> None:
        """Every pending token of a run that ended outside a step (terminate)."""
        q.execute(self.sql(_CLOSE_RUN), (now, run_id))

    def send_callback(self, token_hash: str, body: dict[str, Any], now: float) -> CallbackTarget:
        heartbeat = body.get("kind") == "heartbeat"

        def op(q: Session) -> CallbackTarget:
            # The run's row is locked before the token's, in the order a step's commit takes
            # them (runs, then callbacks), so the two never deadlock on PostgreSQL.
            owner = q.execute(
                self.sql("SELECT run_id FROM callbacks WHERE token_hash=?"), (token_hash,)
            ).fetchone()
            status = None
            if owner is not None:
                status = q.execute(
                    self.sql("SELECT status FROM runs WHERE id=? {for_update}"), (owner[0],)
                ).fetchone()
            row = q.execute(
                self.sql(
                    "SELECT run_id, task_id, attempt, state, status FROM callbacks "
                    "WHERE token_hash=? {for_update}"
                ),
                (token_hash,),
            ).fetchone()
            if row is None:
                raise CallbackRefused(
                    "unknown callback token: no attempt in this store was given it",
                    reason="unknown",
                    hint="check the token and --db (the store of the run that made it)",
                )
            target = CallbackTarget(row[0], row[1], int(row[2]), row[3])
            where = f"state {target.state!r} of run {target.run_id!r} (attempt {target.attempt})"
            if row[4] == "completed":
                raise CallbackRefused(
                    f"callback token already used: {where} was completed before",
                    reason="used",
                    hint=_HINT,
                )
            if row[4] != "pending" or status is None or status[0] != "running":
                raise CallbackRefused(
                    f"callback token too late: {where} no longer waits for it (the attempt "
                    "timed out, failed and was retried with a new token, was cancelled, or "
                    "the run ended)",
                    reason="late",
                    hint=_HINT,
                )
            if heartbeat:
                q.execute(
                    self.sql("UPDATE callbacks SET heartbeat_at=? WHERE token_hash=?"),
                    (now, token_hash),
                )
                if body.get("details") is not None:
                    q.execute(
                        self.sql(
                            "INSERT INTO heartbeats(run_id, task_id, details, at) "
                            "VALUES (?,?,?,?) ON CONFLICT (run_id, task_id) DO UPDATE "
                            "SET details=excluded.details, at=excluded.at"
                        ),
                        (target.run_id, target.task_id, dumps(body["details"]), now),
                    )
            else:
                # Every token of the attempt (an interrupted attempt ran again with a new one).
                q.execute(
                    self.sql(
                        "UPDATE callbacks SET status='completed', ended_at=? WHERE run_id=? "
                        "AND task_id=? AND attempt=CAST(? AS INTEGER) AND status = 'pending'"
                    ),
                    (now, target.run_id, target.task_id, target.attempt),
                )
            self._post(
                q,
                target.run_id,
                "callback",
                target.task_id,
                {**body, "attempt": target.attempt},
                now,
            )
            self._notify(q, "callback")
            return target

        def resolve(q: Session) -> tuple[bool, CallbackTarget]:
            column = "heartbeat_at" if heartbeat else "ended_at"
            row = q.execute(
                self.sql(
                    f"SELECT run_id, task_id, attempt, state FROM callbacks WHERE token_hash=? "
                    f"AND {column}=?"
                ),
                (token_hash, now),
            ).fetchone()
            if row is None:
                return False, CallbackTarget("", "", 0, None)
            return True, CallbackTarget(row[0], row[1], int(row[2]), row[3])

        return self._write(op, resolve=resolve)
