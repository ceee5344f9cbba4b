"""Conformance: `reopen_run` (retry of an ended run): an ended run goes back to running with a
new state, a new history segment and its first events, in one transaction; only from the
status the caller saw, and with the definition it moves to stored."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import claim_one, create, definition, reopen_of, seqs, step
from interpreter.errors import RunFinished
from interpreter.store import Store


def _ended(store: Store, status: str = "failed") -> int:
    create(store, "r")
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "end", events=2, status=status), time.time())
    record = store.get_run("r")
    assert record is not None and record.status == status
    return record.next_seq


def test_an_ended_run_reopens_with_a_new_segment(store: Store) -> None:
    next_seq = _ended(store)
    now = time.time()
    state = {**store.get_run("r").state, "status": "running", "note": "again"}  # type: ignore[union-attr]
    record = store.reopen_run("r", "failed", reopen_of(state), now)
    assert record.status == "running" and record.error is None and record.ended_at is None
    assert record.state["note"] == "again" and record.next_seq == next_seq + 2
    assert [(s.segment, s.first_seq) for s in store.list_segments("r")] == [(1, 1), (2, next_seq)]
    events = list(store.iter_events("r", after=next_seq - 1))
    assert [e["type"] for e in events] == ["RunRetried", "Noted"]
    assert seqs(store, "r") == list(range(1, next_seq + 2))
    # A worker takes it up: it is due and unleased.
    (claimed,) = store.claim("w2", 15.0, now + 1, run_id="r")
    assert claimed.id == "r" and claimed.state["note"] == "again"


def test_reopen_refuses_a_run_whose_status_changed(store: Store) -> None:
    _ended(store, "cancelled")
    state = {**store.get_run("r").state, "status": "running"}  # type: ignore[union-attr]
    with pytest.raises(RunFinished):
        store.reopen_run("r", "failed", reopen_of(state), time.time())
    record = store.get_run("r")
    assert record is not None and record.status == "cancelled"
    assert [s.segment for s in store.list_segments("r")] == [1]
    with pytest.raises(RunFinished):
        store.reopen_run("nope", "failed", reopen_of(state), time.time())


def test_reopen_onto_another_definition_stores_it(store: Store) -> None:
    _ended(store)
    state = {**store.get_run("r").state, "status": "running"}  # type: ignore[union-attr]
    other = definition("other")
    record = store.reopen_run("r", "failed", reopen_of(state, defn_name="other"), time.time())
    assert record.def_hash == other.hash
    assert store.load_definition(other.hash)[0] == other.source
