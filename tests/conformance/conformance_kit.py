"""Builders for the conformance tests: runs, commits and lease owners made only from the public
records of interpreter.store (NewRun, Commit, RunRecord), so the tests outlive any backend's
internals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

from interpreter.client import load_definition
from interpreter.core.definition import Definition
from interpreter.core.records import Event
from interpreter.new_runs import started_run
from interpreter.store import Commit, NewRun, Reopen, RunRecord, Store

WORKFLOWS = Path(__file__).resolve().parent / "workflows"


@cache
def definition(name: str = "hold") -> Definition:
    return load_definition(WORKFLOWS / f"{name}.yaml")


def new_run(
    run_id: str,
    *,
    workflow: str = "hold",
    input_: Any = None,
    due_at: float | None = 0.0,
    parent: RunRecord | None = None,
) -> NewRun:
    """A run as Client.start builds it: first state entered, its events, due at `due_at`."""
    defn = definition(workflow)
    run = started_run(defn, run_id, input_, parent=parent)
    run.due_at = due_at  # None here: not due at all
    return run


def create(store: Store, run_id: str, **options: Any) -> RunRecord:
    record, created = store.create_run(new_run(run_id, **options))
    assert created, f"{run_id} existed already"
    return record


def step(
    record: RunRecord,
    note: str,
    *,
    events: int = 1,
    status: str = "running",
    due_at: float | None = None,
    **fields: Any,
) -> Commit:
    """A commit that records `note` in the state and appends `events` Noted events."""
    state = {**record.state, "note": note, "status": status}
    return Commit(
        state=state,
        status=status,
        events=[Event("Noted", payload={"by": note, "i": i}) for i in range(events)],
        due_at=due_at,
        **fields,
    )


def with_task(record: RunRecord, activity: str) -> dict[str, Any]:
    """The run's state with one ready task of `activity` (what `needs` is computed from)."""
    task = {"id": "t1", "kind": "activity", "activity": activity, "status": "ready", "due": 0}
    return {**record.state, "tasks": {"t1": task}}


def claim_one(store: Store, run_id: str, owner: str = "w", lease: float = 60.0) -> RunRecord:
    (record,) = store.claim(owner, lease, time.time(), run_id=run_id)
    return record


def dead_owner() -> str:
    """An owner id of a process on this host that has exited."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:deadbeef"


def live_owner() -> str:
    """An owner id of a live process on this host: the one that started the tests."""
    return f"{socket.gethostname()}:{os.getppid()}:cafe"


def seqs(store: Store, run_id: str, after: int = 0) -> list[int]:
    return [event["seq"] for event in store.iter_events(run_id, after=after)]


def reopen_of(state: dict[str, Any], segment: int = 2, defn_name: str = "hold") -> Reopen:
    """A retry's reopen of a run (Store.reopen_run) with `state`, opening `segment` with
    RunRetried and one Noted event, onto the definition `defn_name`."""
    defn = definition(defn_name)
    return Reopen(
        state=state,
        events=[Event("RunRetried", "s", None, {"segment": segment}), Event("Noted")],
        segment=segment,
        workflow=defn.name,
        def_hash=defn.hash,
        def_source=defn.source,
        def_version=defn.version,
        def_file=defn.file,
    )
