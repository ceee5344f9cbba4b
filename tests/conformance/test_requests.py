"""Conformance: requests from outside a run (add_signal, request_cancel, terminate) and
activity heartbeats."""

from __future__ import annotations

import time

import pytest

from conformance.conformance_kit import claim_one, create, step
from interpreter.errors import RunFinished, RunNotFound
from interpreter.store import Store


def finished_run(store: Store, run_id: str) -> None:
    create(store, run_id)
    held = claim_one(store, run_id)
    store.commit(held, "w", step(held, "end", status="completed"), time.time())


# ----------------------------------------------------------------------------- signals
def test_add_signal_returns_the_inbox_id_and_wakes_the_run(store: Store) -> None:
    create(store, "r", due_at=None)
    assert store.next_due() is None
    before = time.time()
    signal_id = store.add_signal("r", "go", {"ok": True}, time.time())
    assert [item.id for item in store.read_inbox("r")[0]] == [signal_id]
    due = store.next_due()
    assert due is not None and before - 1 <= due <= time.time()
    assert [r.id for r in store.claim("w", 60.0, time.time())] == ["r"]


def test_add_signal_to_an_unknown_run_raises_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFound, match="nope"):
        store.add_signal("nope", "go", None, time.time())


@pytest.mark.parametrize("end", ["completed", "terminated"])
def test_add_signal_to_a_finished_run_raises_run_finished(store: Store, end: str) -> None:
    if end == "completed":
        finished_run(store, "r")
    else:
        create(store, "r")
        store.terminate("r", "stop", time.time())
    with pytest.raises(RunFinished, match=end):
        store.add_signal("r", "go", None, time.time())
    assert store.read_inbox("r")[0] == []


# ----------------------------------------------------------------------------- cancel
def test_request_cancel_sets_the_flag_and_wakes_the_run(store: Store) -> None:
    create(store, "r", due_at=None)
    store.request_cancel("r", time.time())
    record = store.get_run("r")
    assert record is not None and record.cancel_requested is True and record.status == "running"
    assert store.read_inbox("r") == ([], True)
    assert [r.id for r in store.claim("w", 60.0, time.time())] == ["r"]
    store.request_cancel("r", time.time())  # asking twice is harmless
    assert store.read_inbox("r") == ([], True)


def test_request_cancel_of_an_unknown_or_finished_run_raises(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.request_cancel("nope", time.time())
    finished_run(store, "r")
    with pytest.raises(RunFinished):
        store.request_cancel("r", time.time())
    record = store.get_run("r")
    assert record is not None and record.cancel_requested is False


# ----------------------------------------------------------------------------- terminate
def test_terminate_ends_the_run_with_a_run_terminated_event(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    before = time.time()
    record = store.terminate("r", "operator said so", time.time())
    assert record.id == "r" and record.status == "terminated"
    assert record.error["type"] == "Terminated"
    assert record.error["message"] == "operator said so"
    assert record.ended_at is not None and record.ended_at >= before
    assert record.lease_owner is None
    assert record.state["status"] == "terminated"
    assert record.state["tasks"] == {} and record.state["timers"] == {}
    events = list(store.iter_events("r"))
    assert events[-1]["type"] == "RunTerminated"
    assert events[-1]["payload"]["error"] == record.error
    assert [e["seq"] for e in events] == list(range(1, record.next_seq))
    assert store.get_run("r") == record
    assert store.renew_leases("w", [("r", held.lease_token)], time.time() + 60) == set()
    assert store.next_due() is None


def test_terminate_cascades_to_running_descendants(store: Store) -> None:
    root = create(store, "root")
    kid = create(store, "kid", parent=root)
    create(store, "grandkid", parent=kid)
    done = create(store, "done_kid", parent=root)
    held = claim_one(store, done.id)
    store.commit(held, "w", step(held, "end", status="completed"), time.time())
    create(store, "bystander")
    store.terminate("root", "stop all", time.time())
    status = {r.id: r.status for r in store.list_runs()}
    assert status == {
        "root": "terminated",
        "kid": "terminated",
        "grandkid": "terminated",
        "done_kid": "completed",
        "bystander": "running",
    }
    for run_id in ("kid", "grandkid"):
        last = list(store.iter_events(run_id))[-1]
        assert last["type"] == "RunTerminated"
        assert last["payload"]["error"]["message"] == "stop all"
    assert list(store.iter_events("done_kid"))[-1]["type"] != "RunTerminated"
    # Runs terminated with their parent send it no news.
    assert store.read_inbox("root") == ([], False)
    assert store.read_inbox("kid") == ([], False)


def test_terminating_a_child_tells_its_own_parent(store: Store) -> None:
    root = create(store, "root", due_at=None)
    kid = create(store, "kid", parent=root, due_at=None)
    create(store, "grandkid", parent=kid)
    store.terminate("kid", "just this branch", time.time())
    items, cancel = store.read_inbox("root")
    assert [(i.kind, i.name) for i in items] == [("child", "kid")]
    assert items[0].payload["status"] == "terminated"
    assert items[0].payload["error"]["message"] == "just this branch"
    assert cancel is False
    assert store.read_inbox("kid") == ([], False)  # the grandchild went with it
    grandkid = store.get_run("grandkid")
    assert grandkid is not None and grandkid.status == "terminated"
    root_now = store.get_run("root")
    assert root_now is not None and root_now.status == "running"
    assert [r.id for r in store.claim("w", 60.0, time.time())] == ["root"]


def test_terminate_clears_the_runs_map_rows(store: Store) -> None:
    create(store, "r")
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "map", map_rows=[("f", 0, "item", 1)]), time.time())
    store.terminate("r", "stop", time.time())
    assert store.load_map_rows("r") == []


def test_terminate_of_an_unknown_or_finished_run_raises(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.terminate("nope", "stop", time.time())
    finished_run(store, "r")
    with pytest.raises(RunFinished):
        store.terminate("r", "stop", time.time())
    create(store, "t")
    store.terminate("t", "first", time.time())
    with pytest.raises(RunFinished):
        store.terminate("t", "second", time.time())
    record = store.get_run("t")
    assert record is not None and record.error["message"] == "first"


# ----------------------------------------------------------------------------- heartbeats
def test_heartbeats_keep_the_latest_details_per_task(store: Store) -> None:
    create(store, "r")
    assert store.heartbeat_details("r", "t1") is None
    store.record_heartbeat("r", "t1", {"page": 1}, time.time())
    store.record_heartbeat("r", "t2", ["other"], time.time())
    store.record_heartbeat("r", "t1", {"page": 2}, time.time())
    assert store.heartbeat_details("r", "t1") == {"page": 2}
    assert store.heartbeat_details("r", "t2") == ["other"]
    assert store.heartbeat_details("r", "t3") is None
    assert store.heartbeat_details("other", "t1") is None
    store.record_heartbeat("r", "t2", None, time.time())
    assert store.heartbeat_details("r", "t2") is None
