"""The store interface: everything the engine, worker, client and CLI need from persistence.

One implementation per database (SQLite now). Every write that moves a run forward is one
transaction that appends its events and replaces the run's state, fenced by the lease token so
a worker that lost its lease can never overwrite the new owner's work.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from interpreter.core.records import Event
from interpreter.errors import RunFinished, RunNotFound, StoreError, StoreVersionError
from interpreter.store.migrations import SCHEMA_VERSION

if TYPE_CHECKING:  # what the engine writes: interpreter/store/writes.py
    from interpreter.store.writes import Commit, NewRun, Reopen


@dataclass
class RunRecord:
    id: str
    workflow: str
    def_hash: str
    status: str
    input: Any
    output: Any
    error: Any
    state: dict[str, Any]
    parent_id: str | None
    root_id: str
    depth: int
    created_at: float
    updated_at: float
    ended_at: float | None
    next_seq: int
    lease_owner: str | None = None
    lease_token: int = 0
    cancel_requested: bool = False
    version: str | None = None
    # A fork (`tideflow fork`): the run it was made from and the state it was forked at.
    forked_from: str | None = None
    forked_from_state: str | None = None


@dataclass(frozen=True)
class RunFilter:
    """Which runs `find_runs`, `count_runs` and `prune_runs` look at; None: any. `since` and
    `until` bound the creation time (since <= created_at < until); `ended_before` the end."""

    statuses: tuple[str, ...] = ()
    workflow: str | None = None
    parent_id: str | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None
    ended_before: float | None = None
    paused: bool | None = None
    forked_from: str | None = None  # only the forks of this run


@dataclass
class RunSummary:
    """A run as `tideflow list` shows it: no state, input or output."""

    id: str
    workflow: str
    status: str
    parent_id: str | None
    root_id: str
    created_at: float
    updated_at: float
    ended_at: float | None
    error: Any
    paused: bool
    cancel_requested: bool
    lease_owner: str | None
    def_hash: str
    version: str | None
    compensation_held: bool = False  # failed, its compensations held (saga on_failure: hold)
    forked_from: str | None = None
    forked_from_state: str | None = None


def fork_link(run_id: str | None, state: str | None) -> dict[str, Any] | None:
    """How `status` and `list` name the run a fork was made from: {"run", "state"}, or None."""
    return None if run_id is None else {"run": run_id, "state": state}


# The stores' encoder: orjson, about 10x the standard library's C encoder on a run state (a
# step writes one, its events and `needs`). What orjson refuses (integers past 64 bits, keys
# that are not strings, lone surrogates, nesting past 254 levels) goes to the standard
# library, which writes it as before. orjson would write NaN as null; no NaN reaches a store:
# every value is checked where it enters a run (interpreter/jsondata.py), durations are finite.
# Imported on the first write: `tideflow status` and `list` only read (and orjson imports uuid).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_orjson_dumps: Callable[[Any], bytes] | None = None


def _load_orjson() -> Callable[[Any], bytes]:
    global _orjson_dumps
    import orjson

    # Dates, dataclasses and the like go to the fallback, which refuses them, as before.
    options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    _orjson_dumps = functools.partial(orjson.dumps, option=options)
    return _orjson_dumps


def dumps(value: Any) -> str:
    """JSON as both stores keep it (compact, UTF-8)."""
    # A running run's output and error, and most events' attempt details, are None.
    if value is None:
        return "null"
    try:
        return (_orjson_dumps or _load_orjson())(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _ENCODER.encode(value)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# The column order both stores select a run in (see `run_from_row`).
RUN_COLUMN_NAMES = (
    "id",
    "workflow",
    "def_hash",
    "status",
    "input",
    "output",
    "error",
    "state",
    "parent_id",
    "root_id",
    "depth",
    "created_at",
    "updated_at",
    "ended_at",
    "next_seq",
    "lease_owner",
    "lease_token",
    "cancel_requested",
    "version",
    "forked_from",
    "forked_from_state",
)


def list_runs_filter(
    mark: str,
    *,
    status: str | None,
    workflow: str | None,
    parent_id: str | None,
    limit: int | None,
) -> tuple[str, list[Any]]:
    """The WHERE/ORDER/LIMIT tail of `list_runs` and its arguments; `mark` is the dialect's
    parameter placeholder."""
    where, args = [], []
    for column, value in (
        ("r.status", status),
        ("r.workflow", workflow),
        ("r.parent_id", parent_id),
    ):
        if value is not None:
            where.append(f"{column}={mark}")
            args.append(value)
    tail = (" WHERE " + " AND ".join(where)) if where else ""
    tail += " ORDER BY r.created_at, r.id"
    if limit is not None:
        tail += f" LIMIT {int(limit)}"
    return tail, args


def run_from_row(row: Any) -> RunRecord:
    """A RunRecord from a row selected in RUN_COLUMN_NAMES order."""
    values = dict(zip(RUN_COLUMN_NAMES, row, strict=True))
    for name in ("input", "output", "error", "state"):
        values[name] = loads(values[name])
    values["cancel_requested"] = bool(values["cancel_requested"])
    return RunRecord(**values)


EVENT_COLUMNS = "seq, last_seq, type, time, state, attempt, payload"


def events_from_row(row: Any) -> list[dict[str, Any]]:
    """The history events, as `history --json` prints them, of one row in EVENT_COLUMNS
    order: one event, or a step's several (see migration 13)."""
    seq, last_seq, type_, at, state, attempt, payload = row
    if last_seq == seq:
        return [
            {
                "seq": seq,
                "type": type_,
                "time": at,
                "state": state,
                "attempt": attempt,
                "payload": json.loads(payload),
            }
        ]
    return [
        {"seq": seq + i, "type": t, "time": at, "state": s, "attempt": a, "payload": p}
        for i, (t, s, a, p) in enumerate(json.loads(payload))
    ]


def event_row_payload(events: Sequence[Event]) -> str:
    """The `payload` column of the row that holds `events` (see events_from_row)."""
    if len(events) == 1:
        return dumps(events[0].payload)
    return dumps([[e.type, e.state, e.attempt, e.payload] for e in events])


def check_version(version: int, where: str) -> int:
    """Refuse a store written by a newer tideflow: an older one must never write to it."""
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the store {where} has schema version {version}, newer than this "
            f"tideflow understands ({SCHEMA_VERSION})",
            hint="upgrade tideflow; older versions never write to a newer store",
        )
    return version


def check_running(run_id: str, status: str | None) -> None:
    """`status` is the run's stored status, None when no such run exists."""
    if status is None:
        raise RunNotFound(
            f"no run with id {run_id!r}", hint="`tideflow list` shows the runs in this store"
        )
    if status != "running":
        raise RunFinished(f"run {run_id!r} already ended ({status})")


def definition_missing(def_hash: str) -> StoreError:
    return StoreError(f"definition {def_hash[:12]} is missing from the store")


def termination(reason: str) -> dict[str, Any]:
    return {"type": "Terminated", "message": reason, "details": None}


def terminated_state(state_json: str, error: dict[str, Any]) -> dict[str, Any]:
    """A running run's stored state, ended by `terminate`: nothing pending survives."""
    state: dict[str, Any] = json.loads(state_json)
    state.update(status="terminated", error=error, tasks={}, timers={})
    return state


def terminated_news(error: dict[str, Any]) -> dict[str, Any]:
    """What a terminated child posts to its parent's inbox."""
    return {"status": "terminated", "output": None, "error": error}


@dataclass
class InboxItem:
    id: int
    kind: str  # "signal", "child" or "update"
    name: str
    payload: Any


@dataclass
class Segment:
    """One segment of a run's history: its events are those from `first_seq` up to the next
    segment's first_seq."""

    segment: int
    first_seq: int
    started_at: float
    retried: bool = False  # it opened with RunRetried (`tideflow retry`), not continue-as-new


@dataclass
class UpdateRecord:
    """One update of a run (see interpreter/updates.py): `status` is "pending" until the step
    that decided it commits, then "applied" (with `result`) or "rejected" (with `message`)."""

    run_id: str
    id: str
    name: str
    payload: Any
    status: str
    result: Any
    message: str | None
    created_at: float
    decided_at: float | None


@dataclass
class CallbackTarget:
    """The attempt a callback token addresses (what `complete` and `heartbeat` report)."""

    run_id: str
    task_id: str
    attempt: int
    state: str | None


def needs_of(state: dict[str, Any]) -> list[str] | None:
    """The activities a run's tasks name (ready, backing off or interrupted). Stored with the
    run so a worker started with `--activities` only claims runs it can carry on."""
    names = sorted({task["activity"] for task in state.get("tasks", {}).values()})
    return names or None


class LeaseLost(Exception):
    """The run is no longer ours: its lease expired and another worker took it, or it was
    terminated. The caller must stop driving it."""


class Store(Protocol):
    url: str

    def close(self) -> None: ...

    # definitions and runs
    def load_definition(self, def_hash: str) -> tuple[str, str | None]: ...
    def create_run(self, run: NewRun) -> tuple[RunRecord, bool]: ...
    def get_run(self, run_id: str) -> RunRecord | None: ...
    def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]: ...
    def iter_events(self, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]: ...
    def list_segments(self, run_id: str) -> list[Segment]: ...

    # operating runs (interpreter/store/sqladmin.py)
    def find_runs(
        self, where: RunFilter, *, limit: int, before: tuple[float, str] | None = None
    ) -> list[RunSummary]:
        """Runs matching `where`, newest first (created_at, then id, descending), at most
        `limit`, only those older than `before` (the (created_at, id) of the last one shown)."""
        ...

    def count_runs(self, where: RunFilter) -> int: ...
    def workflow_names(self) -> list[str]:
        """Every workflow name this store has a definition of."""
        ...

    def prune_runs(self, where: RunFilter, *, batch: int) -> list[str]: ...
    def set_paused(self, run_id: str, paused: bool, now: float) -> bool: ...
    def is_paused(self, run_id: str) -> bool: ...

    # work distribution
    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        *,
        run_id: str | None = None,
        root_id: str | None = None,
        limit: int = 1,
        activities: frozenset[str] | None = None,
    ) -> list[RunRecord]: ...
    def renew_leases(
        self, owner: str, leases: Sequence[tuple[str, int]], until: float
    ) -> set[str]: ...
    def release(self, run_id: str, owner: str, token: int, due_at: float | None) -> None: ...
    def commit(self, run: RunRecord, owner: str, commit: Commit, now: float) -> None: ...
    def commit_many(self, steps: Sequence[tuple[RunRecord, str, Commit, float]]) -> list[bool]: ...
    def needs_attention(self, owner: str) -> set[str]: ...
    def read_inbox(self, run_id: str) -> tuple[list[InboxItem], bool]: ...
    def load_map_rows(self, run_id: str) -> list[tuple[str, int, str, Any]]: ...
    def next_due(
        self,
        root_id: str | None = None,
        owner: str | None = None,
        *,
        activities: frozenset[str] | None = None,
    ) -> float | None: ...

    # requests from outside the run
    def add_signal(self, run_id: str, name: str, payload: Any, now: float) -> int: ...
    def request_cancel(self, run_id: str, now: float) -> None: ...
    def terminate(self, run_id: str, reason: str, now: float) -> RunRecord: ...
    def record_heartbeat(self, run_id: str, task_id: str, details: Any, now: float) -> None: ...
    def heartbeat_details(self, run_id: str, task_id: str) -> Any: ...
    def send_callback(self, token_hash: str, body: dict[str, Any], now: float) -> CallbackTarget:
        """Apply a callback request to the pending attempt of `token_hash` (sha256 of the
        token): `body["kind"]` is "complete" (with `result`), "fail" (with `error`) or
        "heartbeat" (with `details`). Committed with an inbox item for the run, so a worker
        applies it whenever one comes. CallbackRefused (unknown, used, late): nothing changed."""
        ...

    def add_update(
        self, run_id: str, update_id: str, name: str, payload: Any, now: float
    ) -> tuple[UpdateRecord, bool]: ...
    def get_update(self, run_id: str, update_id: str) -> UpdateRecord | None: ...
    def reopen_run(
        self, run_id: str, expect_status: str, reopen: Reopen, now: float
    ) -> RunRecord: ...
    def reopen_runs(
        self, reopens: Sequence[tuple[str, str, Reopen]], now: float
    ) -> list[RunRecord]: ...
