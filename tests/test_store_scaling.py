"""The queries a worker sends on every poll cost the same however many runs it has ended.

A run keeps its lease columns when it ends, so an index or a query that does not leave ended
runs out makes every poll walk all of them (W2 at 10,000 runs: 32 ms per needs_attention).
SQLite counts the virtual machine's instructions (a progress handler called at each one), which
grows with every row a query visits and does not depend on the machine's speed or load.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from conformance.conformance_kit import claim_one, create, dead_owner, live_owner, step
from test_event_rows import downgrade_events_to_version_12

from interpreter.store import SCHEMA_VERSION, open_store
from interpreter.store.sqlite import SQLiteStore


def _instructions(store: SQLiteStore, call: Callable[[], Any]) -> int:
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0  # go on

    store._db.set_progress_handler(tick, 1)
    try:
        call()
    finally:
        store._db.set_progress_handler(None, 1)
    return count


def _poll_cost(path: Path, ended: int) -> dict[str, int]:
    """Instructions of one worker poll's queries on a store where `owner` ended `ended` runs
    (their leases still live) and holds one running run."""
    owner = live_owner()  # this host, a live pid: the dead-owner probe looks at it
    setup = open_store(str(path))
    for index in range(ended):
        record = claim_one(setup, create(setup, f"ended-{index}").id, owner)
        setup.commit(record, owner, step(record, "end", status="completed"), time.time())
    claim_one(setup, create(setup, "held").id, owner)
    create(setup, "waiting", due_at=time.time() + 3600)
    setup.close()
    store = open_store(str(path))  # a fresh dead-owner cache: next_due asks the store
    assert isinstance(store, SQLiteStore)
    try:
        return {
            "next_due": _instructions(store, lambda: store.next_due(None, owner)),
            "needs_attention": _instructions(store, lambda: store.needs_attention(owner)),
            "empty claim": _instructions(store, lambda: store.claim(owner, 60.0, time.time())),
        }
    finally:
        store.close()


def test_a_poll_does_not_visit_the_runs_a_worker_ended(tmp_path: Path) -> None:
    few, many = _poll_cost(tmp_path / "few.db", 5), _poll_cost(tmp_path / "many.db", 150)
    for query, cost in few.items():
        # Before runs_leased left ended runs out (migration 12), 150 ended runs took
        # needs_attention from 39 to 764 instructions and next_due (its dead-owner probe)
        # from 112 to 1,562.
        assert many[query] <= cost + 40, (query, cost, many[query])


def _admin(store_url: str, statements: list[str]) -> list[Any]:
    """Run `statements` on the store's database outside tideflow; the last one's rows."""
    if store_url.startswith("postgresql"):
        with psycopg.connect(store_url, autocommit=True) as conn:
            for statement in statements:
                cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []
    db = sqlite3.connect(store_url)
    try:
        for statement in statements:
            rows = db.execute(statement).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def _leased_index(store_url: str) -> str:
    if store_url.startswith("postgresql"):
        query = (
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_leased' "
            "AND schemaname = current_schema()"
        )
    else:
        query = "SELECT sql FROM sqlite_master WHERE name = 'runs_leased'"
    (row,) = _admin(store_url, [query])
    return str(row[0])


def test_a_store_of_version_11_gets_the_index_of_running_leased_runs(store_url: str) -> None:
    assert SCHEMA_VERSION == 13
    store = open_store(store_url)
    dead = dead_owner()
    ended = claim_one(store, create(store, "ended").id, dead)
    store.commit(ended, dead, step(ended, "end", status="completed"), time.time())
    claim_one(store, create(store, "orphan").id, dead)  # running, its holder gone
    store.close()
    downgrade_events_to_version_12(store_url)
    _admin(
        store_url,
        [
            "DROP INDEX runs_leased",
            "CREATE INDEX runs_leased ON runs(lease_owner) WHERE lease_owner IS NOT NULL",
            "UPDATE meta SET value='11' WHERE key='schema_version'",
        ],
    )
    store = open_store(store_url)  # migrates
    try:
        index = _leased_index(store_url)
        assert "status" in index and "lease_expires" in index and "running" in index, index
        # The dead holder's running run is free at once; its ended run stays ended.
        assert [r.id for r in store.claim("w", 60.0, time.time(), limit=10)] == ["orphan"]
        assert store.get_run("ended").status == "completed"
    finally:
        store.close()
