"""The SQLite dialect of the SQL store (the embedded default).

Durability: WAL with synchronous=NORMAL. A committed transaction survives any crash of the
process (kill -9 included) because it is in the WAL before COMMIT returns; only an OS crash or
power cut can lose the last few commits, and never corrupts the file. FULL would add an fsync
per step (several ms here) for that last case; users who need it set TIDEFLOW_SQLITE_SYNC=FULL.

One connection per store, shared by every thread and task of the process under a lock: SQLite
runs one write transaction at a time anyway, and the lock is what keeps two threads from
interleaving statements on the connection ("cannot start a transaction within a transaction").
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from interpreter.errors import NotAStore, StoreBusy, StoreDamaged, StoreError
from interpreter.store.base import check_version, dumps
from interpreter.store.migrations import SCHEMA_VERSION
from interpreter.store.sql import SQLStore
from interpreter.store.sqlcore import Cursor, Session

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000


def _busy_timeout_ms() -> int:
    """How long a write waits for another process's lock: TIDEFLOW_SQLITE_BUSY_TIMEOUT_MS
    (tests lower it), else BUSY_TIMEOUT_MS."""
    raw = os.environ.get("TIDEFLOW_SQLITE_BUSY_TIMEOUT_MS", "").strip()
    return int(raw) if raw.isdigit() else BUSY_TIMEOUT_MS


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


_RECOVERY = (
    "stop every tideflow process that uses it, then check it with "
    "`sqlite3 {path} 'PRAGMA integrity_check'` and restore the last backup if it reports "
    'errors (docs/engine.md, "Backups")'
)


def _friendly(exc: sqlite3.Error, path: str, opened: bool = False) -> StoreError:
    """A StoreError for `exc`. `opened`: the store was a sound tideflow store when this
    process opened it, so an unreadable page now means damage, not the wrong file."""
    text = str(exc)
    if opened and ("malformed" in text or "not a database" in text):
        return StoreDamaged(
            f"the store {path} is damaged ({text})", hint=_RECOVERY.format(path=path)
        )
    if opened and "disk I/O error" in text:
        return StoreDamaged(
            f"the store {path} could not be read or written (disk I/O error): its -wal or "
            "-shm file may have been deleted or replaced while a process had it open",
            hint=_RECOVERY.format(path=path),
        )
    if _is_busy(exc):
        return StoreBusy(
            f"the store {path} stayed locked for more than {_busy_timeout_ms() / 1000:g} s",
            hint="another process holds a long write transaction; retry, or stop it",
        )
    if "unable to open" in text:
        return StoreError(
            f"cannot open the store {path}: SQLite could not open or create the file",
            hint="check that this user may enter its directory and write there (ls -ld), "
            "or point --db somewhere else",
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"the store {path} is read-only",
            hint="give this user write access to the file and its directory (WAL needs both)",
        )
    if "not a database" in text or "malformed" in text or "disk I/O error" in text:
        return NotAStore(
            f"{path} is not a tideflow store (not an SQLite database)",
            hint="point --db at a tideflow store, or at a new file",
        )
    return StoreError(f"store {path}: {text}")


# A checkpoint copies each page changed since the last one back into the store file, once. At
# SQLite's default (1,000 pages, 4 MB of WAL) the pages that every step and start change (the
# runs table and its indexes, the newest events) were copied again every hundred or so starts:
# a quarter of what starting a run cost. At 10,000 pages they are copied a tenth as often; the
# WAL file grows to about 40 MB between checkpoints (and is reused, not regrown, after each).
WAL_CHECKPOINT_PAGES = 10_000


class _Session:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        return self.db.execute(sql, args)

    def sync(self) -> None:
        """Each statement has run already."""


class SQLiteStore(SQLStore):
    DIALECT = "sqlite"
    TYPES = {
        "real": "REAL",
        "bigint": "INTEGER",
        "bool": "INTEGER",
        "false": "0",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "text_list": "TEXT",  # a JSON array
        "runs_storage": "",
        "without_rowid": "WITHOUT ROWID",
        # Migration 11's copy of fork links out of run states.
        "is_fork": 'instr(state, \'"forked_from":{"run"\') > 0',
        "fork_run": "json_extract(state, '$.run.forked_from.run')",
        "fork_state": "json_extract(state, '$.run.forked_from.state')",
    }
    TOKENS = {
        "needs_param": "?",
        # Every activity in the run's needs (a JSON array) is among the offered ones.
        "offers_needs": "(r.needs IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(r.needs) n "
        "WHERE n.value NOT IN (SELECT value FROM json_each(?))))",
        # One writer at a time (BEGIN IMMEDIATE): nothing to skip, nothing to lock.
        "skip_locked": "",
        "for_update": "",
        # The type of a run's error (a JSON object, or JSON null).
        "error_type": "json_extract(r.error, '$.type')",
        # A failed run whose compensations are held (core/saga.py keeps them under `held`).
        "held_compensation": "(r.status = 'failed' AND json_extract(r.state, '$.held') "
        "IS NOT NULL)",
    }

    def __init__(self, path: str, *, migrated_copy: bool = True) -> None:
        """`migrated_copy`: an in-memory store starts as a copy of one migrated once per
        process (False: run the migrations, as for a file)."""
        super().__init__()
        self.url = f"sqlite:///{path}"
        self.path = path
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None  # set once the store is open
        if path != ":memory:":
            parent = Path(path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store directory {parent}: {exc.strerror}"
                ) from None
        busy_ms = _busy_timeout_ms()
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout={busy_ms}")
            if path == ":memory:" and migrated_copy:
                _copy_migrated_schema(self._db)
        except sqlite3.Error as exc:
            raise _friendly(exc, path) from None
        self._session = _Session(self._db)
        # Processes opening one new store together can meet in SQLite's lock-upgrade deadlock
        # (rollback mode, before WAL is on), where SQLite answers BUSY at once instead of
        # calling the busy handler; so the opening steps retry for the busy timeout.
        give_up = time.monotonic() + busy_ms / 1000
        while True:
            try:
                self._prepare()
                self._identity = self._file_identity()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= give_up:
                    raise _friendly(exc, path) from None
            except sqlite3.Error as exc:
                raise _friendly(exc, path) from None
            time.sleep(0.01 + 0.04 * random.random())

    def _prepare(self) -> None:
        # Before switching to WAL: that rewrites the header of another program's database.
        version = self._version(self._session)
        sync = os.environ.get("TIDEFLOW_SQLITE_SYNC", "NORMAL").upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            sync = "NORMAL"
        if self._db.execute("PRAGMA journal_mode=WAL").fetchone() is None:
            raise NotAStore(f"{self.path} is not a tideflow store")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        if version != SCHEMA_VERSION:
            # Processes opening a new store together: the first takes the write lock and
            # migrates; the others wait for it, then read the version it left behind.
            self._in_transaction(lambda q: self._migrate(q, self.path))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _file_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the store file and of its WAL, which this connection keeps open
        from its first read on; None for an in-memory store."""
        if self.path == ":memory:":
            return None
        try:
            main, wal = os.stat(self.path), os.stat(self.path + "-wal")
        except OSError:
            return None
        return (main.st_ino, wal.st_ino)

    def _check_identity(self) -> None:
        """Refuse to write when the store file or its WAL was deleted or replaced while this
        process had them open: its commits would go to a file nobody else reads (or be lost
        at the next checkpoint), and the other processes' to another."""
        if self._identity is None or self._file_identity() == self._identity:
            return
        raise StoreDamaged(
            f"the store {self.path} or its -wal file was deleted or replaced while this process "
            "had it open; this process stops writing to it so that no more steps are lost",
            hint=_RECOVERY.format(path=self.path),
        )

    # ----------------------------------------------------------------- dialect hooks
    def _in_transaction(self, op: Callable[[Session], T]) -> T:
        """`op` in one write transaction. BEGIN IMMEDIATE takes the write lock up front, so a
        read-then-write transaction never fails half-way with SQLITE_BUSY; the busy timeout
        covers the wait. Plain code rather than a context manager: this runs for every step,
        and the generator's two resumptions were 2 us of its 40."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._identity is not None:
                    self._check_identity()
                result = op(self._session)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def _read(self, op: Callable[[Session], T]) -> T:
        try:
            with self._lock:
                return op(self._session)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path, opened=True) from None

    def _write(
        self,
        op: Callable[[Session], T],
        *,
        resolve: Callable[[Session], tuple[bool, T]] | None = None,
    ) -> T:
        try:
            return self._in_transaction(op)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path, opened=True) from None

    def _version(self, q: Session) -> int:
        tables = {
            r[0] for r in q.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        }
        if tables and "meta" not in tables:
            raise NotAStore(
                f"{self.path} is an SQLite database but not a tideflow store",
                hint="point --db at a tideflow store, or at a new file",
            )
        if "meta" not in tables:
            return 0
        row = q.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return check_version(int(row[0]) if row else 0, self.path)

    def _needs_value(self, needs: list[str] | None) -> Any:
        return None if needs is None else dumps(needs)


_TEMPLATE_LOCK = threading.Lock()


@functools.cache
def _memory_template() -> sqlite3.Connection:
    return SQLiteStore(":memory:", migrated_copy=False)._db


def _copy_migrated_schema(db: sqlite3.Connection) -> None:
    """Give the new in-memory database `db` the schema every migration leaves, copied from one
    database migrated once per process: `tideflow test` opens a fresh in-memory store for every
    case, and running the migrations was a quarter of a case's time (6 ms, a copy 0.1 ms)."""
    with _TEMPLATE_LOCK:  # one connection, shared by the threads that open stores
        _memory_template().backup(db)
