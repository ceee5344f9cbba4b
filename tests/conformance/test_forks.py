"""Conformance: fork links (`tideflow fork`). A new run whose state names the run it was forked
from (`state["run"]["forked_from"]`, as interpreter/redrive.py makes it) keeps the link on its
record and summary; `find_runs` / `count_runs` with `RunFilter(forked_from=...)` find the forks
of a run, newest first, and page like any filter. And a retry's segment says it was one."""

from __future__ import annotations

import time
from typing import Any

from conformance.conformance_kit import claim_one, create, new_run, reopen_of, step
from interpreter.store import RunFilter, SegmentStart, Store


def _fork(store: Store, run_id: str, original: str, state: str = "hold") -> None:
    run = new_run(run_id)
    run.state["run"]["forked_from"] = {"run": original, "state": state}
    _record, created = store.create_run(run)
    assert created


def test_a_fork_keeps_its_link_and_other_runs_have_none(store: Store) -> None:
    original = create(store, "orig")
    assert (original.forked_from, original.forked_from_state) == (None, None)
    _fork(store, "f1", "orig", "hold")
    fork = store.get_run("f1")
    assert fork is not None and (fork.forked_from, fork.forked_from_state) == ("orig", "hold")
    (summary,) = store.find_runs(RunFilter(forked_from="orig"), limit=10)
    assert (summary.id, summary.forked_from, summary.forked_from_state) == ("f1", "orig", "hold")
    plain = {s.id: s for s in store.find_runs(RunFilter(), limit=10)}["orig"]
    assert plain.forked_from is None and plain.forked_from_state is None


def test_forks_of_a_run_are_found_newest_first_and_paged(store: Store) -> None:
    create(store, "orig")
    create(store, "other")
    for n in range(5):
        _fork(store, f"f{n}", "orig")
    _fork(store, "g0", "other")
    _fork(store, "f-of-f", "f0")  # a fork of a fork is the fork of f0 only
    where = RunFilter(forked_from="orig")
    assert store.count_runs(where) == 5
    first = store.find_runs(where, limit=3)
    assert [r.id for r in first] == ["f4", "f3", "f2"]
    rest = store.find_runs(where, limit=3, before=(first[-1].created_at, first[-1].id))
    assert [r.id for r in rest] == ["f1", "f0"]
    assert [r.id for r in store.find_runs(RunFilter(forked_from="f0"), limit=9)] == ["f-of-f"]
    assert store.find_runs(RunFilter(forked_from="nobody"), limit=9) == []
    # Combined with the other filters (AND).
    store.terminate("f1", "enough", time.time())
    ended = RunFilter(forked_from="orig", statuses=("terminated",))
    assert [r.id for r in store.find_runs(ended, limit=9)] == ["f1"]


def test_the_link_survives_steps_a_retry_and_the_end(store: Store) -> None:
    _fork(store, "f", "orig", "hold")
    held = claim_one(store, "f")
    state: dict[str, Any] = {**held.state, "run": {**held.state["run"]}}
    state["run"].pop("forked_from")  # the columns do not follow the state
    store.commit(held, "w", step(held, "end", status="failed"), time.time())
    record = store.reopen_run("f", "failed", reopen_of({**state, "status": "running"}), time.time())
    assert (record.forked_from, record.forked_from_state) == ("orig", "hold")
    store.terminate("f", "enough", time.time())
    record = store.get_run("f")
    assert record is not None and record.forked_from == "orig"


def test_a_segment_knows_whether_a_retry_opened_it(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    # Continue-as-new opens segment 2 ...
    store.commit(held, "w", step(held, "can", new_segment=SegmentStart(2, 0, None)), time.time())
    store.commit(held, "w", step(held, "end", status="failed"), time.time())
    record = store.get_run("r")
    assert record is not None
    # ... and a retry segment 3.
    store.reopen_run(
        "r", "failed", reopen_of({**record.state, "status": "running"}, 3), time.time()
    )
    chain = store.list_segments("r")
    assert [(s.segment, s.retried) for s in chain] == [(1, False), (2, False), (3, True)]
