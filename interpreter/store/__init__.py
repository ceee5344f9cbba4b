"""Stores: where runs, their history and their pinned definitions live."""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interpreter.errors import StoreError, StoreNotFound
from interpreter.store.base import (
    CallbackTarget,
    InboxItem,
    LeaseLost,
    RunFilter,
    RunRecord,
    RunSummary,
    Segment,
    Store,
)
from interpreter.store.migrations import SCHEMA_VERSION

if TYPE_CHECKING:
    from interpreter.store.writes import Commit, NewRun, Reopen, SegmentStart

# Loaded on first use: what the engine writes is not needed to read a run (`tideflow status`).
_WRITES = frozenset({"Commit", "NewRun", "Reopen", "SegmentStart"})


def __getattr__(name: str) -> Any:
    if name not in _WRITES:
        raise AttributeError(f"module 'interpreter.store' has no attribute {name!r}")
    return getattr(import_module("interpreter.store.writes"), name)


DEFAULT_DB = ".tideflow/tideflow.db"

__all__ = [
    "SCHEMA_VERSION",
    "CallbackTarget",
    "Commit",
    "InboxItem",
    "LeaseLost",
    "NewRun",
    "Reopen",
    "RunFilter",
    "RunRecord",
    "RunSummary",
    "Segment",
    "SegmentStart",
    "Store",
    "open_store",
    "resolve_url",
]


def resolve_url(url: str | None) -> str:
    """`--db`, else TIDEFLOW_DB, else an SQLite file under .tideflow/ in the current directory."""
    return url or os.environ.get("TIDEFLOW_DB") or DEFAULT_DB


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store at `url` (see resolve_url). `create=False` refuses to create an SQLite
    file that does not exist yet (commands that only read or steer runs pass it, so a mistyped
    --db does not leave an empty store, and its directories, behind)."""
    if url is not None and not url.strip():
        raise StoreError(
            "the store URL is empty",
            hint="give a file path, sqlite:///path/to/file.db or postgresql://user@host/db",
        )
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
    try:
        is_dir, exists = Path(target).is_dir(), Path(target).exists()
    except OSError as exc:  # a directory on the way this user may not enter
        raise StoreError(
            f"cannot open the store {target}: {exc.strerror or exc}",
            hint="check that this user may enter every directory on the path "
            "(ls -ld each one), or point --db somewhere else",
        ) from None
    if is_dir:
        raise StoreError(f"{target} is a directory, not a store file", hint="point --db at a file")
    if not create and target != ":memory:" and not exists:
        raise StoreNotFound(
            f"store {target} does not exist",
            hint="check --db and TIDEFLOW_DB; `tideflow run`, `start` and `worker` create the store",
        )
    from interpreter.store.sqlite import SQLiteStore

    return SQLiteStore(target)
