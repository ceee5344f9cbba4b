"""In-memory SQLite stores (what `tideflow test` opens per case) start as a copy of one store
migrated once per process: the copy must be the migrated schema, and each store its own."""

from __future__ import annotations

import threading

from interpreter.store.migrations import SCHEMA_VERSION
from interpreter.store.sqlite import SQLiteStore


def _schema(store: SQLiteStore) -> list[tuple[str, str, str]]:
    rows = store._db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    return [tuple(row) for row in rows]


def test_a_copied_store_has_the_schema_the_migrations_make() -> None:
    migrated = SQLiteStore(":memory:", migrated_copy=False)
    copied = SQLiteStore(":memory:")
    assert _schema(copied) == _schema(migrated)
    assert len(_schema(copied)) > 10
    version = copied._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_copied_stores_do_not_share_rows() -> None:
    first, second = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    first._db.execute("INSERT INTO meta(key, value) VALUES ('only-in-first', 'x')")
    assert second._db.execute("SELECT value FROM meta WHERE key='only-in-first'").fetchone() is None
    third = SQLiteStore(":memory:")  # the template did not take the row either
    assert third._db.execute("SELECT value FROM meta WHERE key='only-in-first'").fetchone() is None


def test_stores_opened_from_many_threads_are_whole() -> None:
    expected = _schema(SQLiteStore(":memory:", migrated_copy=False))
    found: list[list[tuple[str, str, str]]] = []
    errors: list[BaseException] = []

    def open_some() -> None:
        try:
            for _ in range(20):
                found.append(_schema(SQLiteStore(":memory:")))
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=open_some) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(found) == 160
    assert all(schema == expected for schema in found)
