"""Stores: where runs, their history and their pinned definitions live."""

from __future__ import annotations

import os
from pathlib import Path

from interpreter.errors import StoreError
from interpreter.store.base import (
    SCHEMA_VERSION,
    Commit,
    InboxItem,
    LeaseLost,
    NewRun,
    RunRecord,
    Store,
)

DEFAULT_DB = ".tideflow/tideflow.db"

__all__ = [
    "SCHEMA_VERSION",
    "Commit",
    "InboxItem",
    "LeaseLost",
    "NewRun",
    "RunRecord",
    "Store",
    "open_store",
    "resolve_url",
]


def resolve_url(url: str | None) -> str:
    """`--db`, else TIDEFLOW_DB, else an SQLite file under .tideflow/ in the current directory."""
    return url or os.environ.get("TIDEFLOW_DB") or DEFAULT_DB


def open_store(url: str | None = None) -> Store:
    target = resolve_url(url)
    if target.startswith(("postgresql://", "postgres://")):
        from interpreter.store.postgres import PostgresStore

        store: Store = PostgresStore(target)
        return store
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///") :]
    elif "://" in target:
        raise StoreError(
            f"unsupported store URL {target!r}",
            hint="use a file path, sqlite:///path/to/file.db or postgresql://user@host/db",
        )
    if Path(target).is_dir():
        raise StoreError(f"{target} is a directory, not a store file", hint="point --db at a file")
    from interpreter.store.sqlite import SQLiteStore

    return SQLiteStore(target)
