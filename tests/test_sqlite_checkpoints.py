"""WAL checkpoints of a SQLite store: a thread of the store copies the WAL back into the store
file (interpreter/store/sqlite_checkpoints.py), and the writer's own automatic checkpoint, at
SAFETY_FRAMES, keeps the WAL file bounded whatever is written."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from run_helpers import wait_for, write_workflow

import interpreter.store.sqlite as sqlite_store
import interpreter.store.sqlite_checkpoints as checkpoints
from interpreter import Client
from interpreter.errors import StoreDamaged
from interpreter.store.sqlite import SQLiteStore

ONE_STATE = "name: one\nstates:\n  done: {type: succeed}\n"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tideflow-checkpoints"]


def test_the_store_connection_checkpoints_at_the_safety_size(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "a.db"))
    try:
        pages = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    finally:
        store.close()
    assert pages == checkpoints.SAFETY_FRAMES


def test_the_wal_stays_within_the_safety_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small size, so that a few hundred starts pass it many times over; with SQLite's
    # default the WAL would grow to about 1,000 pages before the first checkpoint. The thread
    # waits longer than the test runs: the writer's checkpoints alone bound the WAL.
    monkeypatch.setattr(sqlite_store, "SAFETY_FRAMES", 40)
    monkeypatch.setattr(checkpoints, "FIRST_PAUSE_SECONDS", 60.0)
    db = tmp_path / "w.db"
    workflow = write_workflow(tmp_path, ONE_STATE)
    client = Client(str(db))
    try:
        for _ in range(300):
            client.start(workflow, {})
        page = client.store._db.execute("PRAGMA page_size").fetchone()[0]
        wal = db.with_name(db.name + "-wal").stat().st_size
        started = len(client.store.list_runs(limit=1000))
        passes = client.store._checkpoints.passes
    finally:
        client.close()
    assert started == 300
    assert passes == 0
    # One start writes about ten pages: the WAL holds at most the size plus one transaction.
    assert wal <= (40 + 40) * (page + 24) + 32, f"WAL of {wal:,} bytes"


def test_the_thread_copies_the_wal_into_the_store_file_while_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "FIRST_PAUSE_SECONDS", 0.01)
    db = tmp_path / "c.db"
    workflow = write_workflow(tmp_path, ONE_STATE)
    client = Client(str(db))
    try:
        # Until the first checkpoint every page is in the WAL: the store file keeps the size
        # it had when the database was created.
        before = db.stat().st_size
        for _ in range(200):
            client.start(workflow, {})
        ck = client.store._checkpoints
        wait_for(lambda: ck.passes >= 1, 20)
        # Far below SAFETY_FRAMES: only the thread can have copied pages into the file.
        wait_for(lambda: db.stat().st_size > before, 20)
        frames = client.store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert frames == checkpoints.SAFETY_FRAMES
        # Nothing is lost or doubled by the copy: every run reads back.
        assert len(client.store.list_runs(limit=1000)) == 200
    finally:
        client.close()
    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT count(*) FROM runs").fetchone()[0] == 200
    finally:
        check.close()


def test_closing_the_store_ends_its_thread(tmp_path: Path) -> None:
    client = Client(str(tmp_path / "e.db"))
    client.start(write_workflow(tmp_path, ONE_STATE), {})
    ck = client.store._checkpoints
    thread = ck._thread
    assert thread is not None and thread.is_alive()
    client.close()
    assert not thread.is_alive()
    assert ck._thread is None
    ck.wrote()  # a write reported after the close starts nothing
    assert ck._thread is None


def test_reads_and_an_empty_claim_start_no_thread(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    workflow = write_workflow(tmp_path, ONE_STATE)
    SQLiteStore(db).close()  # creating the store writes (its schema)
    store = SQLiteStore(db)
    try:
        store.list_runs(limit=10)
        assert store.claim("w1", 30.0, time.time()) == []  # a write transaction, no row
        assert store._checkpoints._thread is None
    finally:
        store.close()
    client = Client(db)
    try:
        client.start(workflow, {})
        assert client.store._checkpoints._thread is not None
    finally:
        client.close()


def test_the_thread_ends_when_no_write_comes_and_starts_again_with_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "FIRST_PAUSE_SECONDS", 0.01)
    monkeypatch.setattr(checkpoints, "IDLE_END_SECONDS", 0.05)
    workflow = write_workflow(tmp_path, ONE_STATE)
    client = Client(str(tmp_path / "i.db"))
    try:
        client.start(workflow, {})
        ck = client.store._checkpoints
        wait_for(lambda: ck._thread is None, 20)
        client.start(workflow, {})
        assert ck._thread is not None
        passes = ck.passes
        wait_for(lambda: ck.passes > passes, 20)
    finally:
        client.close()
    assert not [t for t in _checkpoint_threads() if t is ck._thread]


def test_a_file_put_in_the_store_s_place_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread's connection is opened inside the first write, to the file the writer
    checked: a file put at the store's path later (a restore while a process runs) is never
    opened, and the writer refuses to go on (test_store_damage.py)."""
    monkeypatch.setattr(checkpoints, "FIRST_PAUSE_SECONDS", 0.3)
    db = tmp_path / "x.db"
    workflow = write_workflow(tmp_path, ONE_STATE)
    other = tmp_path / "other.db"
    SQLiteStore(str(other)).close()
    replacement = other.read_bytes()
    client = Client(str(db))
    try:
        client.start(workflow, {})
        ck = client.store._checkpoints
        assert ck._db is not None  # opened by the write
        copy = tmp_path / "copy.db"
        copy.write_bytes(replacement)
        copy.replace(db)
        wait_for(lambda: ck.passes >= 1, 20)
        with pytest.raises(StoreDamaged):
            client.start(workflow, {})
    finally:
        client.close()
    assert ck._db is None  # closed with the store
    assert db.read_bytes() == replacement
