"""Group commit: the steps that a worker's runs commit in one turn of the event loop are
written in one store transaction.

A transaction's COMMIT is most of what a step costs the store (on SQLite, the WAL append and
its bookkeeping; on PostgreSQL, a round trip). When many runs are ready together, as their
activities finish, each driver hands its step here and waits; the batch is written once the
loop has run every driver that was ready, so durability is unchanged: no driver goes on (or
schedules its next activity) before its own step is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from interpreter.store.base import LeaseLost, RunRecord, Store
from interpreter.store.writes import Commit

# A bound on one transaction's size: a batch this large already makes the COMMIT's cost small
# per step, and a longer write transaction only holds other processes' writes back.
MAX_BATCH = 256


class GroupCommit:
    def __init__(self, store: Store, alone: Callable[[], bool]) -> None:
        """`alone()`: no other run could join a batch now (the worker drives one run), so a
        step is written at once instead of after a turn of the loop."""
        self.store = store
        self.alone = alone
        self._pending: list[tuple[RunRecord, str, Commit, float, asyncio.Future[None]]] = []
        self._flush_scheduled = False

    def commit(
        self, run: RunRecord, owner: str, commit: Commit, now: float
    ) -> asyncio.Future[None]:
        """A future that is done once the step is written; LeaseLost when it was not."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((run, owner, commit, now, done))
        if self.alone() or len(self._pending) >= MAX_BATCH:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)
        return done

    def flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            written = self.store.commit_many(
                [(run, owner, c, now) for run, owner, c, now, _ in batch]
            )
        except Exception as exc:  # the store failed: every step of the batch failed with it
            for *_, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for ok, (run, *_, done) in zip(written, batch, strict=True):
            if done.done():  # its driver was cancelled meanwhile
                continue
            if ok:
                done.set_result(None)
            else:
                done.set_exception(LeaseLost(run.id))
