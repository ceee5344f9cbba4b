"""A new run as every starter builds it: the definition's first state entered (its events in
hand), ready for Store.create_run or a commit's new_runs. Client.start, child runs and the
store tests all go through `started_run`."""

from __future__ import annotations

from typing import Any

from interpreter import clock
from interpreter.core import segments
from interpreter.core.definition import Definition
from interpreter.core.engine import Engine
from interpreter.core.records import new_run_state
from interpreter.store.base import RunRecord
from interpreter.store.writes import NewRun


def started_run(
    defn: Definition,
    run_id: str,
    input_: Any,
    *,
    parent: RunRecord | None = None,
    now: float | None = None,
    due_at: float | None = None,
) -> NewRun:
    """`due_at` defaults to `now`: a worker takes the run up at once."""
    now = clock.wall() if now is None else now
    state = new_run_state(defn, run_id, input_, now)
    engine = Engine(defn, state, now)
    engine.start()
    segments.count_new_run(engine)
    return NewRun(
        id=run_id,
        workflow=defn.name,
        def_hash=defn.hash,
        def_source=defn.source,
        def_version=defn.version,
        def_file=defn.file,
        input=input_,
        state=state,
        events=engine.events,
        due_at=now if due_at is None else due_at,
        parent_id=None if parent is None else parent.id,
        root_id=None if parent is None else parent.root_id,
        depth=0 if parent is None else parent.depth + 1,
    )
