"""Conformance: updates (add_update, get_update, and an update's outcome committed with the
step that decided it)."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import claim_one, create, step
from interpreter.errors import RunFinished, RunNotFound
from interpreter.store import Store
from interpreter.store.writes import UpdateOutcome


def test_add_update_stores_it_pending_and_wakes_the_run(store: Store) -> None:
    create(store, "r", due_at=None)
    assert store.next_due() is None
    stored, created = store.add_update("r", "u1", "rename", {"to": "x"}, time.time())
    assert created is True
    assert (stored.run_id, stored.id, stored.name, stored.payload) == (
        "r",
        "u1",
        "rename",
        {"to": "x"},
    )
    assert stored.status == "pending" and stored.result is None and stored.decided_at is None
    items, cancel = store.read_inbox("r")
    assert not cancel
    assert [(i.kind, i.name, i.payload) for i in items] == [
        ("update", "rename", {"id": "u1", "payload": {"to": "x"}})
    ]
    assert [r.id for r in store.claim("w", 60.0, time.time())] == ["r"]
    again = store.get_update("r", "u1")
    assert again is not None and again.status == "pending" and again.payload == {"to": "x"}


def test_the_same_update_id_returns_the_stored_update_and_posts_nothing(store: Store) -> None:
    create(store, "r")
    first, created = store.add_update("r", "u1", "rename", 1, time.time())
    second, again = store.add_update("r", "u1", "other", 2, time.time())
    assert created is True and again is False
    assert (second.name, second.payload, second.created_at) == ("rename", 1, first.created_at)
    assert len(store.read_inbox("r")[0]) == 1
    # Update ids are per run: another run may use the same one.
    create(store, "s")
    assert store.add_update("s", "u1", "rename", 3, time.time())[1] is True


def test_get_update_of_an_unknown_id_is_none(store: Store) -> None:
    create(store, "r")
    assert store.get_update("r", "nope") is None
    assert store.get_update("nope", "u1") is None


def test_add_update_to_an_unknown_or_finished_run_raises(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.add_update("nope", "u1", "rename", None, time.time())
    create(store, "r")
    store.terminate("r", "stop", time.time())
    with pytest.raises(RunFinished, match="terminated"):
        store.add_update("r", "u1", "rename", None, time.time())
    assert store.get_update("r", "u1") is None


def test_an_update_stored_before_the_run_ended_is_still_returned(store: Store) -> None:
    create(store, "r")
    store.add_update("r", "u1", "rename", None, time.time())
    store.terminate("r", "stop", time.time())
    stored, created = store.add_update("r", "u1", "rename", None, time.time())
    assert created is False and stored.status == "pending"


def test_a_step_commits_the_outcome_and_consumes_the_inbox_item(store: Store) -> None:
    create(store, "r")
    store.add_update("r", "u1", "rename", None, time.time())
    store.add_update("r", "u2", "rename", None, time.time())
    items, _ = store.read_inbox("r")
    held = claim_one(store, "r")
    outcomes = [
        UpdateOutcome("u1", "applied", {"old": "a"}),
        UpdateOutcome("u2", "rejected", message="no"),
    ]
    now = time.time()
    store.commit(
        held, "w", step(held, "decided", consumed=[i.id for i in items], updates=outcomes), now
    )
    one, two = store.get_update("r", "u1"), store.get_update("r", "u2")
    assert one is not None and (one.status, one.result, one.message) == (
        "applied",
        {"old": "a"},
        None,
    )
    assert one.decided_at == pytest.approx(now)
    assert two is not None and (two.status, two.result, two.message) == ("rejected", None, "no")
    assert store.read_inbox("r")[0] == []
    # A decided update is never decided again, even by a later step that names it.
    store.commit(
        held,
        "w",
        step(held, "again", updates=[UpdateOutcome("u1", "rejected", message="x")]),
        time.time(),
    )
    one = store.get_update("r", "u1")
    assert one is not None and one.status == "applied"


def test_a_step_whose_lease_was_lost_decides_no_update(store: Store) -> None:
    create(store, "r")
    store.add_update("r", "u1", "rename", None, time.time())
    items, _ = store.read_inbox("r")
    stale = claim_one(store, "r", lease=0.0)
    time.sleep(0.01)
    claim_one(store, "r", owner="w2")  # the lease ran out and another worker took the run
    commit = step(
        stale, "late", consumed=[i.id for i in items], updates=[UpdateOutcome("u1", "applied", 1)]
    )
    assert store.commit_many([(stale, "w", commit, time.time())]) == [False]
    update = store.get_update("r", "u1")
    assert update is not None and update.status == "pending"
    assert len(store.read_inbox("r")[0]) == 1
