"""Operating runs from outside: find_runs (filters, newest first, keyset pages), count_runs,
workflow_names, prune_runs and set_paused / is_paused (a paused run is claimed by nobody)."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import create, step
from interpreter.errors import RunFinished, RunNotFound
from interpreter.store import RunFilter, Store


def _ids(store: Store, where: RunFilter | None = None) -> list[str]:
    return [r.id for r in store.find_runs(where or RunFilter(), limit=100)]


def test_find_runs_is_newest_first_and_pages_by_keyset(store: Store) -> None:
    for run_id in ("a", "b", "c", "d"):
        create(store, run_id)
    assert _ids(store) == ["d", "c", "b", "a"]
    first = store.find_runs(RunFilter(), limit=2)
    assert [r.id for r in first] == ["d", "c"]
    last = first[-1]
    rest = store.find_runs(RunFilter(), limit=2, before=(last.created_at, last.id))
    assert [r.id for r in rest] == ["b", "a"]
    assert store.find_runs(RunFilter(), limit=2, before=(rest[-1].created_at, "a")) == []


def test_find_runs_filters_and_count_runs_agrees(store: Store) -> None:
    parent = create(store, "p")
    create(store, "c1", parent=parent)
    create(store, "o1", workflow="other")
    middle = time.time()
    create(store, "c2", parent=parent, workflow="other")
    store.terminate("o1", "stop", time.time())
    cases = [
        (RunFilter(statuses=("terminated",)), ["o1"]),
        (RunFilter(statuses=("terminated", "running")), ["c2", "o1", "c1", "p"]),
        (RunFilter(workflow="conformance_other"), ["c2", "o1"]),
        (RunFilter(parent_id="p"), ["c2", "c1"]),
        (RunFilter(error_type="Terminated"), ["o1"]),
        (RunFilter(error_type="Nope"), []),
        (RunFilter(since=middle), ["c2"]),
        (RunFilter(until=middle), ["o1", "c1", "p"]),
        (RunFilter(parent_id="p", workflow="conformance_other"), ["c2"]),
    ]
    for where, expected in cases:
        assert _ids(store, where) == expected, where
        assert store.count_runs(where) == len(expected), where
    (o1,) = store.find_runs(RunFilter(statuses=("terminated",)), limit=5)
    assert o1.error["type"] == "Terminated" and o1.ended_at is not None and not o1.paused
    assert set(store.workflow_names()) >= {"conformance_other"}


def test_prune_runs_deletes_ended_runs_and_their_rows_in_batches(store: Store) -> None:
    for run_id in ("e1", "e2", "e3", "live"):
        create(store, run_id)
    for run_id in ("e1", "e2", "e3"):
        store.terminate(run_id, "done", time.time())
    everything = RunFilter(ended_before=time.time() + 1)
    first = store.prune_runs(everything, batch=2)
    assert len(first) == 2
    second = store.prune_runs(everything, batch=2)
    assert len(second) == 1 and set(first + second) == {"e1", "e2", "e3"}
    assert store.prune_runs(everything, batch=2) == []
    assert _ids(store) == ["live"]
    assert store.get_run("e1") is None and list(store.iter_events("e1")) == []
    assert list(store.iter_events("live"))  # untouched


def test_prune_runs_keeps_children_of_a_running_parent(store: Store) -> None:
    parent = create(store, "p")
    create(store, "child", parent=parent)
    store.terminate("child", "done", time.time())
    assert store.prune_runs(RunFilter(ended_before=time.time() + 1), batch=10) == []
    assert store.get_run("child") is not None


def test_prune_runs_honours_the_status_filter(store: Store) -> None:
    create(store, "t")
    store.terminate("t", "done", time.time())
    assert store.prune_runs(RunFilter(statuses=("completed",)), batch=10) == []
    assert store.prune_runs(RunFilter(statuses=("terminated",)), batch=10) == ["t"]


def test_a_paused_run_is_not_claimed_until_resumed(store: Store) -> None:
    create(store, "r1", due_at=0.0)
    assert store.set_paused("r1", True, time.time()) is True
    assert store.set_paused("r1", True, time.time()) is False
    assert store.is_paused("r1")
    now = time.time()
    assert store.claim("w", 15, now, limit=5) == []
    assert store.claim("w", 15, now, run_id="r1") == []
    assert store.next_due() is None
    assert store.find_runs(RunFilter(), limit=1)[0].paused
    assert store.set_paused("r1", False, time.time()) is True
    assert not store.is_paused("r1")
    assert [r.id for r in store.claim("w", 15, time.time(), limit=5)] == ["r1"]


def test_pausing_a_leased_run_asks_its_owner_to_look(store: Store) -> None:
    create(store, "r1", due_at=0.0)
    owner = "w"
    (record,) = store.claim(owner, 60, time.time())
    assert store.needs_attention(owner) == set()
    store.set_paused("r1", True, time.time())
    assert store.needs_attention(owner) == {"r1"}
    store.commit(record, owner, step(record, "still going"), time.time())  # in flight: recorded


def test_pause_of_an_unknown_or_ended_run_is_refused(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.set_paused("nope", True, time.time())
    create(store, "r1")
    store.terminate("r1", "x", time.time())
    with pytest.raises(RunFinished):
        store.set_paused("r1", True, time.time())
