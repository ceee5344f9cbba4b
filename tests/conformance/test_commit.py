"""Conformance: commit (fenced, atomic steps) and read_inbox / load_map_rows, which it feeds."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import claim_one, create, new_run, seqs, step
from interpreter.store import InboxItem, LeaseLost, Store


def test_commit_writes_state_status_and_due_time(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "one", due_at=12345.0), time.time())
    record = store.get_run("r")
    assert record is not None
    assert record.state["note"] == "one" and record.status == "running"
    assert record.lease_owner == "w"  # a commit keeps the lease
    store.release("r", "w", held.lease_token, 12345.0)
    assert store.next_due() == 12345.0


def test_a_commit_that_keeps_the_due_time_leaves_the_row_due(store: Store) -> None:
    """keep_due (an attempt runs, the row is due already): the row's due time stays, so the
    next worker still takes the run up once this one's lease runs out."""
    now = time.time()
    create(store, "r", due_at=None)
    (held,) = store.claim("w", 1.0, now, run_id="r")
    store.commit(held, "w", step(held, "one", due_at=now - 5), now)
    store.commit(held, "w", step(held, "two", due_at=None, keep_due=True), now)
    assert store.next_due() is None  # held by a live lease: its holder wakes for it
    (taken,) = store.claim("next", 15.0, now + 5)
    assert taken.id == "r" and taken.state["note"] == "two"


def test_commit_appends_events_in_seq_order_and_advances_the_record(store: Store) -> None:
    created = create(store, "r")
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "a", events=2), time.time())
    store.commit(held, "w", step(held, "b", events=3), time.time())
    store.commit(held, "w", step(held, "nothing", events=0), time.time())
    assert held.next_seq == created.next_seq + 5
    assert seqs(store, "r") == list(range(1, held.next_seq))
    noted = [
        (e["payload"]["by"], e["payload"]["i"])
        for e in store.iter_events("r")
        if e["type"] == "Noted"
    ]
    assert noted == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]
    record = store.get_run("r")
    assert record is not None and record.next_seq == held.next_seq


def test_history_reads_back_from_any_event(store: Store) -> None:
    """A step's events are written together (one row on the SQL stores): a read that starts
    inside a step still gives each later event once, in order."""
    created = create(store, "r")
    held = claim_one(store, "r")
    for note, count in (("a", 3), ("b", 1), ("c", 4), ("d", 0), ("e", 2)):
        store.commit(held, "w", step(held, note, events=count), time.time())
    full = list(store.iter_events("r"))
    assert [e["seq"] for e in full] == list(range(1, held.next_seq))
    assert [e["payload"].get("by") for e in full[created.next_seq - 1 :]] == list("aaabccccee")
    for after in range(held.next_seq + 1):
        assert list(store.iter_events("r", after=after)) == full[after:], after


def test_a_stale_token_cannot_commit(store: Store) -> None:
    create(store, "r", due_at=0.0)
    now = time.time()
    (late,) = store.claim("late", 1.0, now)
    (new,) = store.claim("new", 15.0, now + 5)
    with pytest.raises(LeaseLost):
        store.commit(late, "late", step(late, "late"), time.time())
    store.commit(new, "new", step(new, "new"), time.time())
    record = store.get_run("r")
    assert record is not None and record.state["note"] == "new"
    assert [e["payload"]["by"] for e in store.iter_events("r") if e["type"] == "Noted"] == ["new"]


def test_a_commit_without_the_lease_is_refused(store: Store) -> None:
    record = create(store, "r")
    with pytest.raises(LeaseLost):
        store.commit(record, "w", step(record, "unleased"), time.time())
    held = claim_one(store, "r")
    with pytest.raises(LeaseLost):
        store.commit(held, "somebody-else", step(held, "wrong owner"), time.time())
    store.release("r", "w", held.lease_token, None)
    with pytest.raises(LeaseLost):
        store.commit(held, "w", step(held, "released"), time.time())
    assert seqs(store, "r") == list(range(1, record.next_seq))


def test_a_terminated_run_cannot_commit(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    store.terminate("r", "stop", time.time())
    with pytest.raises(LeaseLost):
        store.commit(held, "w", step(held, "after"), time.time())
    record = store.get_run("r")
    assert record is not None and record.status == "terminated"


def test_new_runs_are_created_once(store: Store) -> None:
    parent = create(store, "p")
    held = claim_one(store, "p")
    child = new_run("c", parent=held, input_={"n": 1})
    store.commit(held, "w", step(held, "spawn", new_runs=[child]), time.time())
    created = store.get_run("c")
    assert created is not None
    assert (created.parent_id, created.root_id, created.depth) == ("p", "p", 1)
    assert created.input == {"n": 1} and created.status == "running"
    # A retried step carrying the same child again neither duplicates nor resets it.
    kid = claim_one(store, "c", "kid-worker")
    store.commit(kid, "kid-worker", step(kid, "child moved on", events=2), time.time())
    again = new_run("c", parent=held, input_={"n": 2})
    store.commit(held, "w", step(held, "spawn again", new_runs=[again]), time.time())
    after = store.get_run("c")
    assert after is not None and after.input == {"n": 1} and after.state["note"] == "child moved on"
    assert seqs(store, "c") == list(range(1, kid.next_seq))
    assert [r.id for r in store.list_runs(parent_id=parent.id)] == ["c"]


def test_new_runs_are_due_when_they_say(store: Store) -> None:
    create(store, "p", due_at=None)
    held = claim_one(store, "p")
    kids = [new_run("now", parent=held, due_at=0.0), new_run("asleep", parent=held, due_at=None)]
    store.commit(held, "w", step(held, "spawn", new_runs=kids), time.time())
    assert [r.id for r in store.claim("w2", 60.0, time.time(), limit=5)] == ["now"]


def test_cancel_runs_asks_the_children_to_cancel(store: Store) -> None:
    create(store, "p", due_at=None)
    held = claim_one(store, "p")
    kids = [new_run(f"c{i}", parent=held, due_at=None) for i in range(2)]
    store.commit(held, "w", step(held, "spawn", new_runs=kids), time.time())
    store.commit(held, "w", step(held, "cancel", cancel_runs=["c0"]), time.time())
    c0, c1 = store.get_run("c0"), store.get_run("c1")
    assert c0 is not None and c0.cancel_requested is True
    assert c1 is not None and c1.cancel_requested is False
    assert store.read_inbox("c0") == ([], True)
    # The child is due now, so a worker picks the request up.
    assert [r.id for r in store.claim("w2", 60.0, time.time(), limit=5)] == ["c0"]


def test_consumed_inbox_items_disappear(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    first = store.add_signal("r", "tick", {"n": 1}, time.time())
    second = store.add_signal("r", "tick", {"n": 2}, time.time())
    store.commit(held, "w", step(held, "took one", consumed=[first]), time.time())
    items, cancel = store.read_inbox("r")
    assert items == [InboxItem(second, "signal", "tick", {"n": 2})] and cancel is False
    store.commit(held, "w", step(held, "took the other", consumed=[second]), time.time())
    assert store.read_inbox("r") == ([], False)


def test_a_refused_commit_changes_nothing(store: Store) -> None:
    create(store, "p", due_at=0.0)
    now = time.time()
    (late,) = store.claim("late", 1.0, now)
    signal = store.add_signal("p", "tick", None, time.time())
    store.claim("new", 60.0, now + 5)
    refused = step(
        late,
        "late",
        new_runs=[new_run("kid", parent=late)],
        consumed=[signal],
        map_rows=[("f", 0, "item", 1)],
    )
    with pytest.raises(LeaseLost):
        store.commit(late, "late", refused, time.time())
    assert store.get_run("kid") is None
    assert [item.id for item in store.read_inbox("p")[0]] == [signal]
    assert store.load_map_rows("p") == []


def test_map_rows_are_written_replaced_and_deleted_by_frame(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    rows = [("f", 0, "item", {"a": 1}), ("f", 1, "item", [2]), ("g", 0, "result", "x")]
    store.commit(held, "w", step(held, "map", map_rows=rows), time.time())
    assert sorted(store.load_map_rows("r")) == sorted(rows)
    store.commit(held, "w", step(held, "result", map_rows=[("f", 0, "result", 10)]), time.time())
    store.commit(held, "w", step(held, "redo", map_rows=[("g", 0, "result", "y")]), time.time())
    assert sorted(store.load_map_rows("r")) == [
        ("f", 0, "item", {"a": 1}),
        ("f", 0, "result", 10),
        ("f", 1, "item", [2]),
        ("g", 0, "result", "y"),
    ]
    store.commit(held, "w", step(held, "f done", map_frames_done=["f"]), time.time())
    assert store.load_map_rows("r") == [("g", 0, "result", "y")]
    assert store.load_map_rows("other") == []


def test_notify_parent_posts_a_child_item_to_the_parent(store: Store) -> None:
    parent = create(store, "p", due_at=None)
    create(store, "c", parent=parent, due_at=None)
    claim_one(store, "p", "pw")
    kid = claim_one(store, "c", "cw")
    news = {"status": "completed", "output": {"ok": True}, "error": None}
    store.commit(
        kid,
        "cw",
        step(kid, "done", status="completed", output={"ok": True}, notify_parent=news),
        time.time(),
    )
    items, cancel = store.read_inbox("p")
    assert [(i.kind, i.name, i.payload) for i in items] == [("child", "c", news)]
    assert cancel is False
    assert store.read_inbox("c") == ([], False)


def test_the_parents_news_wakes_it(store: Store) -> None:
    parent = create(store, "p", due_at=None)
    create(store, "c", parent=parent, due_at=None)
    kid = claim_one(store, "c", "cw")
    news = {"status": "failed", "output": None, "error": {"type": "X"}}
    store.commit(kid, "cw", step(kid, "done", status="failed", notify_parent=news), time.time())
    assert [r.id for r in store.claim("pw", 60.0, time.time())] == ["p"]


def test_a_held_parent_is_told_through_needs_attention(store: Store) -> None:
    parent = create(store, "p", due_at=None)
    create(store, "c", parent=parent, due_at=None)
    claim_one(store, "p", "pw")
    kid = claim_one(store, "c", "cw")
    news = {"status": "completed", "output": None, "error": None}
    store.commit(kid, "cw", step(kid, "done", status="completed", notify_parent=news), time.time())
    assert store.needs_attention("pw") == {"p"}


def test_a_terminal_commit_ends_the_run_and_clears_its_side_rows(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "map", map_rows=[("f", 0, "item", 1)]), time.time())
    store.record_heartbeat("r", "t1", {"progress": 3}, time.time())
    before = time.time()
    final = step(held, "end", status="completed", due_at=time.time(), output={"total": 3})
    store.commit(held, "w", final, time.time())
    record = store.get_run("r")
    assert record is not None
    assert record.status == "completed" and record.output == {"total": 3}
    assert record.ended_at is not None and record.ended_at >= before
    assert store.heartbeat_details("r", "t1") is None
    assert store.load_map_rows("r") == []
    # Ended: never claimed or due again, and the old lease is worth nothing.
    assert store.next_due() is None
    assert store.claim("w2", 60.0, time.time() + 3600, run_id="r") == []
    assert store.renew_leases("w", [("r", held.lease_token)], time.time() + 60) == set()
    with pytest.raises(LeaseLost):
        store.commit(held, "w", step(held, "after the end"), time.time())


def test_a_failed_commit_keeps_its_error(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    error = {"type": "Boom", "message": "it broke", "details": None}
    store.commit(held, "w", step(held, "end", status="failed", error=error), time.time())
    record = store.get_run("r")
    assert record is not None and record.status == "failed" and record.error == error
    assert [r.id for r in store.list_runs(status="failed")] == ["r"]


# ----------------------------------------------------------------------------- read_inbox
def test_read_inbox_returns_signals_in_arrival_order_with_the_cancel_flag(store: Store) -> None:
    create(store, "r", due_at=None)
    sent = [store.add_signal("r", name, {"n": n}, time.time()) for n, name in enumerate("abcab")]
    assert sent == sorted(sent) and len(set(sent)) == 5
    items, cancel = store.read_inbox("r")
    assert [(i.id, i.kind, i.name, i.payload) for i in items] == [
        (sent[n], "signal", name, {"n": n}) for n, name in enumerate("abcab")
    ]
    assert cancel is False
    assert store.read_inbox("r") == (items, False)  # reading takes nothing away
    store.request_cancel("r", time.time())
    assert store.read_inbox("r") == (items, True)


def test_read_inbox_keeps_any_json_payload(store: Store) -> None:
    create(store, "r", due_at=None)
    payloads = [None, 0, "text", [1, "two"], {"nested": {"ü": [True, None, 1.5]}}]
    for payload in payloads:
        store.add_signal("r", "tick", payload, time.time())
    assert [i.payload for i in store.read_inbox("r")[0]] == payloads


def test_read_inbox_of_an_unknown_run_is_empty(store: Store) -> None:
    assert store.read_inbox("nope") == ([], False)
