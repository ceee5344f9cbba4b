"""A SQLite store checkpoints its WAL at WAL_CHECKPOINT_PAGES (not SQLite's 1,000-page
default): the WAL file stays bounded by that size, whatever is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_helpers import write_workflow

import interpreter.store.sqlite as sqlite_store
from interpreter import Client
from interpreter.store.sqlite import SQLiteStore


def test_the_store_connection_checkpoints_at_the_configured_size(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "a.db"))
    try:
        pages = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    finally:
        store.close()
    assert pages == sqlite_store.WAL_CHECKPOINT_PAGES


def test_the_wal_stays_within_the_checkpoint_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small size, so that a few hundred starts pass it many times over; with SQLite's
    # default the WAL would grow to about 1,000 pages before the first checkpoint.
    monkeypatch.setattr(sqlite_store, "WAL_CHECKPOINT_PAGES", 40)
    db = tmp_path / "w.db"
    workflow = write_workflow(tmp_path, "name: one\nstates:\n  done: {type: succeed}\n")
    client = Client(str(db))
    try:
        for _ in range(300):
            client.start(workflow, {})
        page = client.store._db.execute("PRAGMA page_size").fetchone()[0]
        wal = db.with_name(db.name + "-wal").stat().st_size
        started = len(client.store.list_runs(limit=1000))
    finally:
        client.close()
    assert started == 300
    # One start writes about ten pages: the WAL holds at most the size plus one transaction.
    assert wal <= (40 + 40) * (page + 24) + 32, f"WAL of {wal:,} bytes"
