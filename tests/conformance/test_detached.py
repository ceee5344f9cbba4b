"""Conformance: detached children. A step's `Commit.terminate_runs` ends those runs (and their
running descendants) in the step's transaction, as `terminate` does, without news to the run
that committed it; and `terminate` of a parent whose state lists detached children under
`state["detached"]` (child id -> "abandon" | "cancel" | "terminate") follows each policy,
recording one ParentClosePolicyApplied event per child in the parent's history."""

from __future__ import annotations

import time

from conformance.conformance_kit import claim_one, create, new_run, step
from interpreter.store import Store


def test_terminate_runs_ends_the_children_with_the_step(store: Store) -> None:
    create(store, "p", due_at=None)
    held = claim_one(store, "p")
    kids = [new_run(f"c{i}", parent=held, due_at=None) for i in range(2)]
    store.commit(held, "w", step(held, "spawn", new_runs=kids), time.time())
    create(store, "grandkid", parent=store.get_run("c0"))
    store.commit(
        held, "w", step(held, "end", status="completed", terminate_runs=["c0"]), time.time()
    )
    status = {r.id: r.status for r in store.list_runs()}
    assert status == {
        "p": "completed",
        "c0": "terminated",
        "grandkid": "terminated",
        "c1": "running",
    }
    last = list(store.iter_events("c0"))[-1]
    assert last["type"] == "RunTerminated"
    assert last["payload"]["error"]["message"] == "parent run p ended"
    assert store.read_inbox("p") == ([], False)  # no news for the parent that ended it
    # Terminating an ended run again changes nothing.
    create(store, "q", due_at=None)
    other = claim_one(store, "q")
    store.commit(other, "w", step(other, "late", terminate_runs=["c0"]), time.time())
    assert [e["type"] for e in store.iter_events("c0")].count("RunTerminated") == 1


def test_terminate_follows_the_parent_close_policies(store: Store) -> None:
    create(store, "p", due_at=None)
    held = claim_one(store, "p")
    kids = [new_run(name, parent=held, due_at=None) for name in ("keep", "ask", "end", "wait")]
    store.commit(held, "w", step(held, "spawn", new_runs=kids), time.time())
    state = {
        **held.state,
        "detached": {"keep": "abandon", "ask": "cancel", "end": "terminate"},
    }
    commit = step(held, "detached")
    commit.state = {**state, "note": "detached"}
    store.commit(held, "w", commit, time.time())
    store.terminate("p", "stop", time.time())
    runs = {r.id: r for r in store.list_runs()}
    assert {k: r.status for k, r in runs.items()} == {
        "p": "terminated",
        "keep": "running",
        "ask": "running",
        "end": "terminated",
        "wait": "terminated",  # not detached: ends with its parent, as before
    }
    assert runs["ask"].cancel_requested and not runs["keep"].cancel_requested
    applied = [
        e["payload"] for e in store.iter_events("p") if e["type"] == "ParentClosePolicyApplied"
    ]
    assert applied == [
        {"child": "keep", "policy": "abandon"},
        {"child": "ask", "policy": "cancel"},
        {"child": "end", "policy": "terminate"},
    ]
    events = list(store.iter_events("p"))
    assert events[-1]["type"] == "RunTerminated"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    parent = store.get_run("p")
    assert parent is not None and "detached" not in parent.state
