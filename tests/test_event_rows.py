"""A step's events in one row of the SQL stores' `events` table (migration 13): the history
reads back event by event from any position and across pages, and a store written before
(one row per event) migrates with its histories unchanged. Both dialects."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from run_helpers import TEST_ACTIVITIES, WORKFLOWS

from interpreter import Client, load_activity_modules
from interpreter.store import sql as sql_store
from interpreter.store.base import EVENT_COLUMNS, dumps, events_from_row
from interpreter.store.migrations import statements
from interpreter.store.postgres import PostgresStore
from interpreter.store.sqlite import SQLiteStore

GREET = WORKFLOWS / "greet_twice.yaml"


@pytest.fixture(autouse=True)
def _activities() -> None:
    load_activity_modules([str(TEST_ACTIVITIES)])


@contextmanager
def _connect(store_url: str) -> Iterator[tuple[Any, str, str]]:
    """A plain connection to the store's database, its placeholder and dialect."""
    if store_url.startswith("postgresql"):
        with psycopg.connect(store_url, autocommit=True) as conn:
            yield conn, "%s", "postgresql"
        return
    conn = sqlite3.connect(store_url, isolation_level=None)
    try:
        yield conn, "?", "sqlite"
    finally:
        conn.close()


def _rows(store_url: str, run_id: str) -> list[Any]:
    with _connect(store_url) as (conn, mark, _dialect):
        return list(
            conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id={mark} ORDER BY seq", (run_id,)
            ).fetchall()
        )


def downgrade_events_to_version_12(store_url: str) -> None:
    """Put the store's events back as version 12 kept them: one row per event, in the table
    of version 1."""
    with _connect(store_url) as (conn, mark, dialect):
        rows = conn.execute(f"SELECT run_id, {EVENT_COLUMNS} FROM events").fetchall()
        types = (PostgresStore if dialect == "postgresql" else SQLiteStore).TYPES
        create = next(s for s in statements(0, dialect, types) if "TABLE events" in s)
        conn.execute("DROP TABLE events")
        conn.execute(create)
        for row in rows:
            for e in events_from_row(row[1:]):
                conn.execute(
                    "INSERT INTO events(run_id, seq, type, time, state, attempt, payload) "
                    f"VALUES ({','.join([mark] * 7)})",
                    (
                        row[0],
                        e["seq"],
                        e["type"],
                        e["time"],
                        e["state"],
                        e["attempt"],
                        dumps(e["payload"]),
                    ),
                )
        conn.execute(f"UPDATE meta SET value={mark} WHERE key='schema_version'", ("12",))


def _greet(client: Client, name: str, nap: bool = False) -> str:
    run_id = client.start(GREET, {"name": name, "nap": nap})
    assert client.execute(run_id).status == "completed"
    return run_id


def test_a_step_writes_its_events_in_one_row(store_url: str) -> None:
    with Client(store_url) as client:
        run_id = _greet(client, "ada")
        events = list(client.history(run_id))
    rows = _rows(store_url, run_id)
    assert len(rows) < len(events)
    assert any(row[1] > row[0] for row in rows)  # some row holds several events
    assert [e for row in rows for e in events_from_row(row)] == events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_history_reads_from_inside_a_step_and_across_pages(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(store_url) as client:
        run_id = _greet(client, "bo", nap=True)
        full = list(client.store.iter_events(run_id))
        monkeypatch.setattr(sql_store, "EVENT_PAGE", 2)  # pages end inside the run's steps
        for after in range(len(full) + 2):
            assert list(client.store.iter_events(run_id, after=after)) == full[after:], after


def test_a_version_12_store_migrates_with_its_histories_unchanged(store_url: str) -> None:
    with Client(store_url) as client:
        old_ids = [_greet(client, "cy"), _greet(client, "di", nap=True)]
        before = {run_id: list(client.history(run_id)) for run_id in old_ids}
    downgrade_events_to_version_12(store_url)
    with Client(store_url) as client:  # opening migrates
        assert {run_id: list(client.history(run_id)) for run_id in old_ids} == before
        new_id = _greet(client, "ed")
        assert [e["type"] for e in client.history(new_id)] == [
            e["type"] for e in before[old_ids[0]]
        ]
    for run_id in old_ids:
        assert all(row[1] == row[0] for row in _rows(store_url, run_id))  # as they were
    assert any(row[1] > row[0] for row in _rows(store_url, new_id))
