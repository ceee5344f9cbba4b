"""`tideflow compensate RUN`: give up on a run that failed with its compensations held.

A workflow with `saga: {on_failure: hold}` ends a failure without undoing anything: the
compensation stack stays in the run state (`held`, see interpreter/core/saga.py), so the run
can still be retried once the cause is fixed (interpreter/redrive.py). When nobody will fix
it, the release hands the core one input (`Engine.release_held`, recorded as
`CompensationReleased`): the run reopens in a new history segment, the held compensations run
newest first through the usual compensation machinery, and the run ends failed again with its
original error. The store writes the reopened state and the new segment in one transaction
(`Store.reopen_run`, as a retry does), so a crash leaves either the held run or the released
one.
"""

from __future__ import annotations

import copy

from interpreter.core.engine import Engine
from interpreter.errors import CompensateRefused
from interpreter.redrive import _load
from interpreter.store.base import RunRecord, Store
from interpreter.store.writes import Reopen


def held_states(record: RunRecord) -> list[str]:
    """The states whose compensations the failed run holds, newest first (empty: none)."""
    if record.status != "failed":
        return []
    return list(record.state.get("held") or [])


def compensate_run(store: Store, run_id: str, now: float) -> RunRecord:
    """Client.compensate: release the held compensations of failed run `run_id`."""
    record, pinned, _events = _load(store, run_id)
    if not held_states(record):
        raise CompensateRefused(_why_nothing_held(record), hint=_HINT)
    state = copy.deepcopy(record.state)
    engine = Engine(pinned, state, now)
    engine.release_held()
    reopen = Reopen(
        state=state,
        events=engine.events,
        segment=int(state["run"]["segment"]),
        workflow=pinned.name,
        def_hash=pinned.hash,
        def_source=pinned.source,
        def_version=pinned.version,
        def_file=pinned.file,
    )
    return store.reopen_run(run_id, "failed", reopen, now)


_HINT = "only a run of a workflow with `saga: {on_failure: hold}` that failed holds them"


def _why_nothing_held(record: RunRecord) -> str:
    if record.status != "failed":
        return f"run {record.id!r} is {record.status}; only a failed run can hold compensations"
    return (
        f"run {record.id!r} holds no compensations: its failure compensated at once, recorded "
        "none to undo, or they ran already"
    )
