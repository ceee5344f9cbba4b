"""Conformance: definitions and runs (create_run, get_run, list_runs, iter_events,
load_definition)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conformance.conformance_kit import claim_one, create, definition, new_run, seqs, step
from interpreter.errors import StoreError
from interpreter.store import Store


def test_create_run_returns_the_new_record_and_created_true(store: Store) -> None:
    new = new_run("r1", input_={"n": 1})
    record, created = store.create_run(new)
    assert created is True
    assert record.id == "r1" and record.workflow == "conformance_hold"
    assert record.def_hash == definition().hash
    assert record.status == "running" and record.input == {"n": 1}
    assert record.parent_id is None and record.root_id == "r1" and record.depth == 0
    assert record.next_seq == len(new.events) + 1
    assert record.lease_owner is None and record.cancel_requested is False
    assert record.ended_at is None and record.created_at <= record.updated_at
    assert seqs(store, "r1") == list(range(1, len(new.events) + 1))


def test_create_run_returns_what_get_run_reads_back(store: Store) -> None:
    # A store may build the record from what it wrote instead of reading it back: the two
    # must not differ in any field, for a plain run and for a child's.
    parent = create(store, "r1", input_={"n": 1, "s": "é"})
    assert parent == store.get_run("r1")
    for new in (new_run("c1", input_=[1, 2.5, None], parent=parent), new_run("r2", due_at=None)):
        record, created = store.create_run(new)
        assert created is True
        assert record == store.get_run(new.id)


def test_create_run_with_an_existing_id_returns_the_stored_run_unchanged(store: Store) -> None:
    first, _ = store.create_run(new_run("r1", input_={"n": 1}))
    again, created = store.create_run(new_run("r1", input_={"n": 2}))
    assert created is False
    assert again.input == {"n": 1} and again.created_at == first.created_at
    assert again.next_seq == first.next_seq
    assert len(store.list_runs()) == 1
    assert seqs(store, "r1") == list(range(1, first.next_seq))  # no history written twice


def test_stores_creating_one_run_at_once_create_it_once(
    store: Store, open_another: Callable[[], Store]
) -> None:
    stores = [open_another() for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[tuple[str, bool] | BaseException] = []

    def create_same(index: int) -> None:
        try:
            barrier.wait()
            record, created = stores[index].create_run(new_run("same", input_={"by": index}))
            outcomes.append((str(record.input["by"]), created))
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create_same, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert sum(1 for o in outcomes if isinstance(o, tuple) and o[1]) == 1
    winner = store.get_run("same")
    assert winner is not None
    # Every caller got the one stored run back, and its history was written once.
    assert {o[0] for o in outcomes if isinstance(o, tuple)} == {str(winner.input["by"])}
    assert seqs(store, "same") == list(range(1, winner.next_seq))


def test_create_run_keeps_the_pinned_definition(store: Store) -> None:
    record = create(store, "r1")
    source, file = store.load_definition(record.def_hash)
    assert source == definition().source and file == definition().file
    with pytest.raises(StoreError):
        store.load_definition("0" * 64)


def test_a_child_run_records_its_parent_root_and_depth(store: Store) -> None:
    parent = create(store, "p")
    child = create(store, "c", parent=parent)
    grandchild = create(store, "g", parent=child)
    assert (child.parent_id, child.root_id, child.depth) == ("p", "p", 1)
    assert (grandchild.parent_id, grandchild.root_id, grandchild.depth) == ("c", "p", 2)


def test_get_run_of_an_unknown_id_is_none(store: Store) -> None:
    assert store.get_run("nope") is None
    create(store, "r1")
    record = store.get_run("r1")
    assert record is not None and record.id == "r1"


def test_list_runs_is_in_creation_order_then_id(store: Store) -> None:
    for run_id in ("c", "a", "b"):
        create(store, run_id)
    assert [r.id for r in store.list_runs()] == ["c", "a", "b"]
    assert [r.id for r in store.list_runs(limit=2)] == ["c", "a"]
    assert store.list_runs(limit=0) == []


def test_list_runs_filters_by_status_workflow_and_parent(store: Store) -> None:
    parent = create(store, "p")
    create(store, "c1", parent=parent)
    create(store, "o1", workflow="other")
    create(store, "c2", parent=parent, workflow="other")
    store.terminate("o1", "stop", time.time())
    assert [r.id for r in store.list_runs(status="terminated")] == ["o1"]
    assert [r.id for r in store.list_runs(status="running")] == ["p", "c1", "c2"]
    assert [r.id for r in store.list_runs(workflow="conformance_other")] == ["o1", "c2"]
    assert [r.id for r in store.list_runs(parent_id="p")] == ["c1", "c2"]
    assert [
        r.id for r in store.list_runs(parent_id="p", workflow="conformance_other", status="running")
    ] == ["c2"]
    assert [r.id for r in store.list_runs(parent_id="p", limit=1)] == ["c1"]
    assert store.list_runs(status="completed") == []
    assert store.list_runs(workflow="no_such_workflow") == []


def test_list_runs_returns_full_records(store: Store) -> None:
    create(store, "r1", input_={"big": list(range(100))})
    (record,) = store.list_runs()
    assert record.input == {"big": list(range(100))} and record.state["run"]["id"] == "r1"
    assert record.version == definition().version


def test_iter_events_in_seq_order_and_after(store: Store) -> None:
    record = create(store, "r1")
    first = record.next_seq
    claimed = claim_one(store, "r1")
    store.commit(claimed, "w", step(claimed, "a", events=3), time.time())
    events = list(store.iter_events("r1"))
    assert [e["seq"] for e in events] == list(range(1, first + 3))
    noted = [e for e in events if e["type"] == "Noted"]
    assert [e["payload"] for e in noted] == [{"by": "a", "i": i} for i in range(3)]
    assert set(noted[0]) == {"seq", "type", "time", "state", "attempt", "payload"}
    assert seqs(store, "r1", after=first) == [first + 1, first + 2]
    assert seqs(store, "r1", after=first + 2) == []
    assert list(store.iter_events("nope")) == []


def test_iter_events_of_a_history_longer_than_a_thousand_events(store: Store) -> None:
    create(store, "r1")
    claimed = claim_one(store, "r1")
    for batch in range(3):
        store.commit(claimed, "w", step(claimed, f"b{batch}", events=450), time.time())
    total = claimed.next_seq - 1
    assert total > 1350
    assert seqs(store, "r1") == list(range(1, total + 1))
    assert seqs(store, "r1", after=1000) == list(range(1001, total + 1))
    # Other calls between reading the events do not disturb the iteration.
    seen = []
    for event in store.iter_events("r1", after=10):
        seen.append(event["seq"])
        if event["seq"] % 400 == 0:
            assert store.get_run("r1") is not None
    assert seen == list(range(11, total + 1))
