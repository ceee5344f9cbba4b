"""`parallel` and `map`: branches and iterations really run at the same time (activities that
only finish when they meet at a barrier), results keep declaration/item order whatever the
finishing order, a failure cancels the siblings (running activities see `ctx.cancelled`, timers
are dropped) and reaches the state's catch, compensations recorded in branches belong to the
run, map concurrency bounds (explicit and the default 10), empty maps, and a map of 2,000 items.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import concurrency_activities as cc
import pytest
from conftest import run_cli

from interpreter import Client
from interpreter.core.definition import DEFAULT_MAP_CONCURRENCY
from interpreter.store import RunRecord

WF = Path(__file__).resolve().parent / "workflows_concurrency"


@pytest.fixture
def cc_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cc.log"
    monkeypatch.setenv(cc.LOG_ENV, str(path))
    return path


def completed_tags(client: Client, run_id: str) -> list[str]:
    """`tag` of each ActivityCompleted, in the order the outcomes were recorded."""
    tags = {}
    for event in cc.events(client, run_id, "ActivityScheduled"):
        tags[event["payload"]["task"]] = (event["payload"]["input"] or {}).get("tag")
    return [tags[e["payload"]["task"]] for e in cc.events(client, run_id, "ActivityCompleted")]


# --------------------------------------------------------------------------- parallel


@pytest.mark.parametrize("workflow", ["parallel_barrier.yaml", "parallel_rendezvous.yaml"])
def test_parallel_branches_are_in_flight_together(
    client: Client, cc_log: Path, workflow: str
) -> None:
    """Sync (threads) and async (event loop) activities of two branches meet at a barrier
    that times out unless both attempts are in flight at once."""
    final = client.execute(client.start(WF / workflow))
    assert final.status == "completed", final.error
    # Branch 0 finishes last, yet the result is in branch order.
    assert final.output == ["L", "R"]
    assert completed_tags(client, final.id) == ["right", "left"]
    activity = "cc.barrier" if "barrier" in workflow else "cc.rendezvous"
    assert cc.max_in_flight(cc.read_log(cc_log), activity) == 2


def test_parallel_failure_cancels_the_other_branches_and_is_caught(
    client: Client, cc_log: Path
) -> None:
    started = time.monotonic()
    final = client.execute(client.start(WF / "parallel_fail.yaml", {"error": "Boom"}))
    elapsed = time.monotonic() - started
    assert final.status == "completed", final.error
    assert final.output == {"caught": "Boom", "details": {"tag": "boom"}}
    assert elapsed < 5, (
        f"the failure did not cancel the 10 s activity and the 30 s sleep ({elapsed:.1f}s)"
    )

    # The running activity of the other branch saw ctx.cancelled.
    def slow_outcome() -> str | None:
        ends = [e for e in cc.read_log(cc_log) if e["tag"] == "slow" and e["event"] == "end"]
        return ends[0]["outcome"] if ends else None

    assert cc.wait_until(slow_outcome, timeout=5, what="the slow branch ends") == "cancelled"
    # The sleeping branch's timer was dropped, never fired; no outcome was recorded for `slow`.
    history = cc.events(client, final.id)
    timers = [e for e in history if e["type"] == "TimerStarted" and e["state"] == "nap"]
    assert len(timers) == 1
    assert not [e for e in history if e["type"] == "TimerFired"]
    assert not [
        e
        for e in history
        if e["state"] == "slow" and e["type"] in ("ActivityCompleted", "ActivityFailed")
    ]
    caught = [e for e in history if e["type"] == "ErrorCaught"]
    assert [(e["state"], e["payload"]["error"]["type"]) for e in caught] == [("fan", "Boom")]


def test_parallel_failure_not_caught_fails_the_run(client: Client, cc_log: Path) -> None:
    final = client.execute(client.start(WF / "parallel_fail.yaml", {"error": "Other"}))
    assert final.status == "failed"
    assert final.error["type"] == "Other"
    assert final.error["details"] == {"tag": "boom"}
    outcome = cc.wait_until(
        lambda: [
            e["outcome"] for e in cc.read_log(cc_log) if e["tag"] == "slow" and e["event"] == "end"
        ],
        timeout=5,
    )
    assert outcome == ["cancelled"]


def test_compensations_recorded_in_branches_run_on_a_later_failure(
    client: Client, cc_log: Path
) -> None:
    final = client.execute(
        client.start(WF / "parallel_compensate.yaml", {"pay_error": "PayFailed"})
    )
    assert final.status == "failed"
    assert final.error["type"] == "PayFailed"
    undone = [
        e["tag"] for e in cc.read_log(cc_log) if e["activity"] == "cc.undo" and e["event"] == "end"
    ]
    # Newest first: the flight (which completed last) is undone before the hotel.
    assert undone == ["flight", "hotel"]
    comp = cc.events(client, final.id, "CompensationCompleted")
    assert [e["state"] for e in comp] == ["flight", "hotel"]


# --------------------------------------------------------------------------- map


ORDER_ITEMS = [
    {"name": "a", "delay": 0.4},
    {"name": "b", "delay": 0.3},
    {"name": "c", "delay": 0.2},
    {"name": "d", "delay": 0.1},
    {"name": "e", "delay": 0.0},
    {"name": "f", "delay": 0.25},
    {"name": "g", "delay": 0.05},
]


def test_map_keeps_item_order_and_bounds_concurrency(client: Client, cc_log: Path) -> None:
    final = client.execute(client.start(WF / "map_order.yaml", {"items": ORDER_ITEMS}))
    assert final.status == "completed", final.error
    # `as` (entry), `index` and the run's vars are all visible in the iteration.
    assert final.output == [[i, item["name"], "b"] for i, item in enumerate(ORDER_ITEMS)]
    finished = completed_tags(client, final.id)
    assert sorted(finished) == sorted(i["name"] for i in ORDER_ITEMS)
    assert finished != [i["name"] for i in ORDER_ITEMS], "finishing order should differ"
    assert cc.max_in_flight(cc.read_log(cc_log), "cc.echo") == 3


def test_map_default_concurrency_is_ten(client: Client, cc_log: Path) -> None:
    assert DEFAULT_MAP_CONCURRENCY == 10
    items = list(range(25))
    final = client.execute(client.start(WF / "map_default.yaml", {"items": items}))
    assert final.status == "completed", final.error
    assert final.output == [n * 2 for n in items]
    assert cc.max_in_flight(cc.read_log(cc_log), "cc.echo") == 10


def test_empty_map_gives_an_empty_list(client: Client, cc_log: Path) -> None:
    final = client.execute(client.start(WF / "map_order.yaml", {"items": []}))
    assert final.status == "completed", final.error
    assert final.output == []
    assert cc.read_log(cc_log) == []


def test_map_items_must_be_a_list(client: Client) -> None:
    final = client.execute(client.start(WF / "map_order.yaml", {"items": {"a": 1}}))
    assert final.status == "failed"
    assert final.error["type"] == "ExpressionError"
    assert "expected a list" in final.error["message"] and "'each'" in final.error["message"]


def test_map_failure_cancels_the_rest_and_is_caught(client: Client, cc_log: Path) -> None:
    items = ["a", "b", "bad", "c", "d", "e", "f"]
    started = time.monotonic()
    final = client.execute(client.start(WF / "map_fail.yaml", {"items": items}))
    assert time.monotonic() - started < 4
    assert final.status == "completed", final.error
    assert final.output == {"caught": "ItemBroken", "tag": "bad"}

    def ends() -> dict[str, str]:
        return {e["tag"]: e["outcome"] for e in cc.read_log(cc_log) if e["event"] == "end"}

    cc.wait_until(lambda: len(ends()) == 3, timeout=5, what="the in-flight iterations end")
    # The two iterations in flight with `bad` were cancelled; later items never started.
    assert ends() == {"a": "cancelled", "b": "cancelled", "bad": "ItemBroken"}
    assert {e["tag"] for e in cc.read_log(cc_log)} == {"a", "b", "bad"}


def test_errors_caught_inside_an_iteration_do_not_stop_the_map(client: Client) -> None:
    final = client.execute(client.start(WF / "map_catch_inside.yaml", {"items": list(range(1, 8))}))
    assert final.status == "completed", final.error
    assert final.output == [
        {"n": n, "error": "Divisible"} if n % 3 == 0 else {"n": n, "ok": True} for n in range(1, 8)
    ]


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_map_of_two_thousand_items(client: Client, store_url: str) -> None:
    count = 2000
    started = time.monotonic()
    final = client.execute(client.start(WF / "map_noop.yaml", {"count": count}))
    elapsed = time.monotonic() - started
    assert final.status == "completed", final.error
    assert final.output == {
        "count": count,
        "sum": count * (count - 1) // 2,
        "first": [0, 1, 2],
        "last": [count - 3, count - 2, count - 1],
    }
    completed = cc.events(client, final.id, "ActivityCompleted")
    assert len(completed) == count
    # The state does not keep finished iterations' frames around.
    assert len(client.get(final.id).state["frames"]) == 1
    # `history --json` streams one valid JSON array of every event; `status` answers.
    proc = run_cli("history", final.id, "--json", "--db", store_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout)
    assert len(events) == len(cc.events(client, final.id))
    assert events[-1]["type"] == "RunCompleted"
    proc = run_cli("status", final.id, "--json", "--db", store_url)
    assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "completed"
    print(f"map of {count}: {elapsed:.1f}s")


# --------------------------------------------------------------------------- map rows


def test_a_running_maps_items_and_results_stay_out_of_the_state_document(
    client: Client, store_url: str
) -> None:
    """Each step rewrites the state document: a map's items, its results and the run input are
    written once each as rows instead, so the document stays small whatever the map's size."""
    items = [{"name": f"item-{i}", "delay": 0.002, "pad": "x" * 100} for i in range(1500)]
    run_id = client.start(WF / "map_order.yaml", {"items": items})
    sizes, row_counts = [], []
    with cc.BackgroundWorker(store_url):

        def map_waits(record: RunRecord) -> list[dict[str, Any]]:
            frames = record.state["frames"].values()
            return [f["wait"] for f in frames if (f.get("wait") or {}).get("kind") == "map"]

        def sample() -> bool:
            record = client.get(run_id)
            if record.status != "running":
                return True
            waits = map_waits(record)
            if waits:
                assert "items" not in waits[0] and "results" not in waits[0]
                assert record.state["input"] is None and record.input == {"items": items}
                rows = client.store.load_map_rows(run_id)
                # Two reads: the rows count only if the map still ran after they were read
                # (they go in the same commit that ends the map).
                if not map_waits(client.get(run_id)):
                    return False
                sizes.append(len(json.dumps(record.state)))
                row_counts.append(sum(1 for r in rows if r[2] == "result"))
                assert sum(1 for r in rows if r[2] == "item") == len(items)
            return False

        cc.wait_until(sample, timeout=60, interval=0.05, what="the map ends")
    final = client.get(run_id)
    assert final.status == "completed", final.error
    assert final.output == [[i, item["name"], "b"] for i, item in enumerate(items)]
    assert len(sizes) >= 3, "the map ended before it could be observed"
    assert max(sizes) < 20_000, f"the state document grew with the map: {max(sizes)} bytes"
    assert row_counts == sorted(row_counts) and row_counts[-1] > row_counts[0]
    assert client.store.load_map_rows(run_id) == []  # gone once the run ended


def test_map_row_tracker_round_trip() -> None:
    """Split a state with a map in progress, restore it from the rows: the same state."""
    from interpreter.map_rows import MapRowTracker

    def state(results: list[object], running: list[str], next_index: int) -> dict[str, object]:
        frames: dict[str, object] = {
            "f1": {"state": "each", "status": "waiting", "wait": {
                "kind": "map", "items": ["a", "b", "c", "d", "e"], "results": results,
                "running": running, "next_index": next_index, "total": 5}},
        }  # fmt: skip
        for fid, slot in (("f7", 1), ("f8", 3), ("f9", 4)):
            if fid in running:
                frames[fid] = {"state": "work", "status": "waiting", "slot": slot, "wait": None}
        return {"input": {"big": True}, "frames": frames, "status": "running"}

    tracker = MapRowTracker()
    # Slots 0 and 2 done (2 finished before 1), 1 and 3 running, 4 not started. A result may be null.
    first = tracker.split(state(["A", None, None, None, None], ["f7", "f8"], 4))
    assert first.state["input"] is None
    assert "items" not in first.state["frames"]["f1"]["wait"]
    assert sorted(r for r in first.rows if r[2] == "item") == [
        ("f1", i, "item", v) for i, v in enumerate("abcde")
    ]
    assert sorted(r for r in first.rows if r[2] == "result") == [
        ("f1", 0, "result", "A"),
        ("f1", 2, "result", None),
    ]
    tracker.committed(first)
    # Next step: slot 1 done; only its row is new.
    second = tracker.split(state(["A", "B", None, None, None], ["f8"], 4))
    assert second.rows == [("f1", 1, "result", "B")]
    tracker.committed(second)

    # A new driver restores the whole state from the split document and all rows so far.
    loaded = json.loads(json.dumps(second.state))
    rows = first.rows + second.rows
    fresh = MapRowTracker()
    assert fresh.needs_rows(loaded)
    fresh.restore(loaded, {"big": True}, rows)
    assert loaded == state(["A", "B", None, None, None], ["f8"], 4)
    # ... and writes nothing twice; then the map ends and its rows can go.
    third = fresh.split(state(["A", "B", None, "D", "E"], [], 5))
    assert sorted(third.rows) == [("f1", 3, "result", "D"), ("f1", 4, "result", "E")]
    fresh.committed(third)
    ended = {
        "input": None,
        "frames": {"f1": {"state": "next", "status": "ready", "wait": None}},
        "status": "running",
    }
    last = fresh.split(ended)
    assert last.rows == [] and last.done_frames == ["f1"]


def test_sqlite_migration_moves_run_inputs_out_of_the_runs_table(tmp_path: Path) -> None:
    """A store written before run inputs had their own table keeps every run's input."""
    import sqlite3

    from interpreter.store.migrations import statements
    from interpreter.store.sqlite import SQLiteStore

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for index in range(3):
        for statement in statements(index, "sqlite", SQLiteStore.TYPES):
            db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    db.execute(
        "INSERT INTO definitions VALUES ('h', 'wf', NULL, NULL, '{}', 0)",
    )
    db.execute(
        "INSERT INTO runs(id, workflow, def_hash, status, input, state, root_id, created_at, updated_at) "
        "VALUES ('old-run', 'wf', 'h', 'completed', '{\"items\": [1, 2]}', '{}', 'old-run', 0, 0)"
    )
    db.commit()
    db.close()
    with Client(str(path)) as client:
        assert client.get("old-run").input == {"items": [1, 2]}
    db = sqlite3.connect(path)
    assert db.execute("SELECT input FROM runs").fetchall() == [(None,)]
    db.close()
