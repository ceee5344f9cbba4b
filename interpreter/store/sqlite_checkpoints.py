"""WAL checkpoints of an SQLite store on a thread of their own, mostly off the writer's path.

A checkpoint copies the pages the WAL holds back into the store file and syncs both files.
SQLite runs it inside the COMMIT that takes the WAL past its limit: at 10,000 frames that
COMMIT took about 40 ms (a third of it CPU, the rest waiting for the disk), and the worker's
event loop, whose thread makes every commit, stood still for it every few thousand steps.

Here a thread of the store, with a connection of its own, runs PASSIVE checkpoints: they wait
for no lock that readers or writers hold, and SQLite releases the GIL while they run, so the
loop goes on. The thread paces itself by the rate the WAL grows at, so that a pass copies about
CHECKPOINT_FRAMES frames (what the steps rewrite over and over is copied once a pass, not once
a step): a few times a second under load, once a minute for a trickle of writes. It starts
with the first write that changed a row, and ends after IDLE_END_SECONDS without one (the
next write starts another; the connection stays open until the store closes).

What it cannot do is restart the WAL while writes never pause: SQLite writes from the start of
the file again only once every frame has been copied before a write transaction begins, and
under a steady stream of steps new frames always come while a pass runs. The writer's own
automatic checkpoint, at SAFETY_FRAMES, still does that; it then finds most frames copied and
synced already, so its pause is a fraction of what it was (W2, 12 rounds of 200 runs: the
commits over 5 ms took 41-43 ms in all, against 136 ms with the writer doing every checkpoint).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

CHECKPOINT_FRAMES = 5_000  # what one checkpoint aims to copy (about 20 MB of WAL)
SAFETY_FRAMES = 20_000  # the writer's own automatic checkpoint, for a thread that falls behind
FIRST_PAUSE_SECONDS = 0.25  # before the first checkpoint, when the rate is not known yet
MIN_PAUSE_SECONDS = 0.05
MAX_PAUSE_SECONDS = 60.0
IDLE_END_SECONDS = 10.0
CATCH_UP_PASSES = 3  # passes in a row while frames keep coming during one


class Checkpointer:
    """The checkpoint thread of one store. `connect()` opens its connection: called once, by
    the writer, inside its first write transaction.

    Never by path later, from the thread: a path that leads to another file by then (a store
    restored from a backup while a worker runs) would give this process two connections to
    two files that share the -wal and -shm files, and a connection to one of them would take
    the other's WAL index for its own. Opened inside the write transaction, the connection
    reaches the file the writer has just checked it still writes to (SQLiteStore's identity
    check), and keeps it, like the writer's own connection, until the store closes."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._db: sqlite3.Connection | None = None
        self._wrote = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()  # starting and ending the thread
        self._thread: threading.Thread | None = None
        self._pause = FIRST_PAUSE_SECONDS
        self.passes = 0  # checkpoints run (tests and benchmarks read it)

    def wrote(self) -> None:
        """A write transaction that changed rows is about to commit (the caller holds the
        store's write lock). Cheap when the thread knows already: one flag."""
        if self._wrote.is_set() or self._closing.is_set():
            return
        with self._lock:
            if self._db is None:
                try:
                    self._db = self._connect()
                except sqlite3.Error:
                    self._closing.set()  # no thread: the writer's own checkpoints go on
                    return
            self._wrote.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(self._db,), name="tideflow-checkpoints", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the thread (a checkpoint in progress finishes first: it is short)."""
        self._closing.set()
        self._wrote.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        with self._lock:
            if self._db is not None and (thread is None or not thread.is_alive()):
                self._db.close()
                self._db = None

    def _run(self, db: sqlite3.Connection) -> None:
        last_frames, last_time = 0, time.monotonic()
        try:
            while not self._closing.is_set():
                if not self._wrote.wait(IDLE_END_SECONDS):
                    with self._lock:
                        if not self._wrote.is_set():
                            self._thread = None  # the next write starts another
                            return
                    continue
                if self._closing.wait(self._pause):
                    return
                self._wrote.clear()
                last_frames, last_time = self._passes(db, last_frames, last_time)
        except sqlite3.Error:
            # The store went away or broke: the writer's own checkpoints (and its error
            # messages) take over.
            self._closing.set()
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _passes(
        self, db: sqlite3.Connection, last_frames: int, last_time: float
    ) -> tuple[int, float]:
        """Checkpoint until all is copied (or CATCH_UP_PASSES); set the next pause by the rate
        the WAL grew at since (`last_frames`, `last_time`), and return the new look."""
        for _ in range(CATCH_UP_PASSES):
            busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.passes += 1
            now = time.monotonic()
            # The WAL restarts from 0 once a checkpoint copied everything.
            grown = logged - last_frames if logged >= last_frames else logged
            if grown > 0:
                rate = grown / max(now - last_time, 1e-3)
                self._pause = min(
                    MAX_PAUSE_SECONDS, max(MIN_PAUSE_SECONDS, CHECKPOINT_FRAMES / rate)
                )
            last_frames, last_time = max(0, logged), now
            if busy or copied >= logged:
                break  # another connection checkpoints, or all is copied
        return last_frames, last_time
