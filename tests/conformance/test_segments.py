"""Conformance: history segments (continue-as-new): `list_segments`, and a commit whose
`new_segment` starts the next segment together with its events, its input and the end of the
old segment's heartbeats, all fenced like the rest of the step."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import claim_one, create, seqs, step
from interpreter.store import LeaseLost, Segment, SegmentStart, Store


def test_a_new_run_has_one_segment_from_seq_1(store: Store) -> None:
    record = create(store, "r")
    assert store.list_segments("r") == [Segment(1, 1, record.created_at)]
    assert store.list_segments("nope") == []


def test_a_commit_with_new_segment_starts_it_at_the_right_seq(store: Store) -> None:
    create(store, "r", input_={"round": 0})
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "one", events=2), time.time())
    first_seq = held.next_seq + 1  # the commit's second event opens segment 2
    now = time.time()
    store.record_heartbeat("r", "a1", {"at": 5}, now)
    commit = step(held, "switch", events=3, new_segment=SegmentStart(2, 1, {"round": 1}))
    store.commit(held, "w", commit, now)
    chain = store.list_segments("r")
    assert [(s.segment, s.first_seq) for s in chain] == [(1, 1), (2, first_seq)]
    assert chain[1].started_at == pytest.approx(now)
    assert seqs(store, "r") == list(range(1, held.next_seq))  # one seq order over segments
    record = store.get_run("r")
    assert record is not None and record.input == {"round": 1} and held.input == {"round": 1}
    assert store.heartbeat_details("r", "a1") is None  # the old segment's attempts are gone

    third = step(held, "again", events=1, new_segment=SegmentStart(3, 0, {"round": 2}))
    store.commit(held, "w", third, time.time())
    assert [(s.segment, s.first_seq) for s in store.list_segments("r")] == [
        (1, 1),
        (2, first_seq),
        (3, held.next_seq - 1),
    ]


def test_a_segment_switch_without_the_lease_writes_nothing(store: Store) -> None:
    create(store, "r", input_={"round": 0})
    now = time.time()
    (late,) = store.claim("late", 1.0, now)
    store.claim("new", 15.0, now + 5)
    with pytest.raises(LeaseLost):
        store.commit(
            late, "late", step(late, "x", new_segment=SegmentStart(2, 0, {"round": 1})), now
        )
    assert [s.segment for s in store.list_segments("r")] == [1]
    record = store.get_run("r")
    assert record is not None and record.input == {"round": 0}


def test_segments_stay_readable_after_the_run_ends_or_is_terminated(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "s", new_segment=SegmentStart(2, 0, None)), time.time())
    store.terminate("r", "enough", time.time())
    assert [s.segment for s in store.list_segments("r")] == [1, 2]
