"""Held compensation (`saga: {on_failure: hold}`): a failed booking saga keeps its bookings,
is retried after its activity is fixed without booking twice, or gives up with `tideflow
compensate`, which runs the undo steps newest first, once. Real CLI subprocesses on every
store; the sample activities log every call (TIDEFLOW_SAMPLE_LOG) so the tests count what
really ran."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import activities_for_tests  # noqa: F401  (registers test.append)
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, one_json, write_workflow

from interpreter import Client
from interpreter.client import load_definition
from interpreter.core.engine import Engine
from interpreter.core.records import new_run_state

HOLD = SAMPLES / "booking_hold.yaml"
TRIP = SAMPLES / "inputs" / "booking_saga.json"
BROKEN = {"TIDEFLOW_SAMPLE_BROKEN": "booking.charge"}


def cli(
    store: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--db", store, env=env)


def started(log: Path) -> Counter[str]:
    """How many times each activity started (one `start` line per call)."""
    if not log.exists():
        return Counter()
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    return Counter(line["activity"] for line in lines if line["event"] == "start")


def ended_order(log: Path) -> list[str]:
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    return [line["activity"] for line in lines if line["event"] == "end"]


def held_run(store: str, tmp_path: Path, run_id: str) -> tuple[Path, dict[str, str]]:
    """A booking whose payment service is broken: it fails with hotel and flight held."""
    log = tmp_path / "calls.jsonl"
    env = {"TIDEFLOW_SAMPLE_LOG": str(log)}
    proc = cli(
        store,
        "run",
        str(HOLD),
        "--input",
        f"@{TRIP}",
        "--id",
        run_id,
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--json",
        env={**env, **BROKEN},
    )
    assert_clean(proc, 1)
    assert one_json(proc)["error"]["type"] == "BookingFailed"
    return log, env


def status(store: str, run_id: str) -> dict[str, Any]:
    proc = cli(store, "status", run_id, "--json")
    assert_clean(proc, 0)
    return dict(json.loads(proc.stdout))


def resume(store: str, run_id: str, env: dict[str, str]) -> dict[str, Any]:
    proc = cli(store, "resume", run_id, "--activities", str(SAMPLE_ACTIVITIES), "--json", env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return dict(one_json(proc))


def test_a_failed_booking_holds_its_compensations_and_says_so(
    store_url: str, tmp_path: Path
) -> None:
    log, _env = held_run(store_url, tmp_path, "trip-held")
    assert started(log) == Counter(
        {"booking.reserve_hotel": 1, "booking.reserve_flight": 1, "booking.charge": 1}
    )
    info = status(store_url, "trip-held")
    assert info["status"] == "failed"
    assert info["compensation_held"] == ["reserve_flight", "reserve_hotel"]
    text = cli(store_url, "status", "trip-held").stdout
    assert "held       compensation of reserve_flight, reserve_hotel" in text
    assert "tideflow compensate trip-held" in text
    listed = json.loads(cli(store_url, "list", "--json").stdout)
    assert [(r["run_id"], r["compensation_held"]) for r in listed] == [("trip-held", True)]
    assert "failed (held)" in cli(store_url, "list").stdout
    with Client(store_url) as client:
        end = list(client.history("trip-held"))[-1]
    assert end["type"] == "RunFailed"
    assert end["payload"]["compensation_held"] == ["reserve_flight", "reserve_hotel"]


def test_retry_after_the_fix_completes_without_booking_twice(
    store_url: str, tmp_path: Path
) -> None:
    log, fixed = held_run(store_url, tmp_path, "trip-fix")
    proc = cli(store_url, "retry", "trip-fix", "--json")
    assert_clean(proc, 0)
    assert one_json(proc)["status"] == "running"
    record = resume(store_url, "trip-fix", fixed)  # TIDEFLOW_SAMPLE_BROKEN unset: the fix
    assert record["status"] == "completed", record
    assert record["output"]["payment"] == "P-T-42"
    assert started(log) == Counter(
        {"booking.reserve_hotel": 1, "booking.reserve_flight": 1, "booking.charge": 2}
    )
    assert status(store_url, "trip-fix")["compensation_held"] is None
    listed = json.loads(cli(store_url, "list", "--json").stdout)
    assert listed[0]["compensation_held"] is False


def test_compensate_runs_the_held_undo_steps_newest_first_once(
    store_url: str, tmp_path: Path
) -> None:
    log, env = held_run(store_url, tmp_path, "trip-undo")
    refused = cli(store_url, "compensate", "trip-undo")  # stdin is no terminal: no yes, no go
    assert_clean(refused, 2)
    assert "refusing to compensate run trip-undo (reserve_flight, reserve_hotel)" in refused.stderr
    proc = cli(store_url, "compensate", "trip-undo", "--yes", "--json")
    assert_clean(proc, 0)
    assert one_json(proc) == {
        "run_id": "trip-undo",
        "status": "running",
        "compensating": ["reserve_flight", "reserve_hotel"],
    }
    record = resume(store_url, "trip-undo", env)
    assert record["status"] == "failed"
    assert record["error"]["type"] == "BookingFailed"  # the original error, once more
    assert started(log)["booking.cancel_flight"] == 1
    assert started(log)["booking.cancel_hotel"] == 1
    assert ended_order(log)[-2:] == ["booking.cancel_flight", "booking.cancel_hotel"]
    assert status(store_url, "trip-undo")["compensation_held"] is None
    with Client(store_url) as client:
        events = list(client.history("trip-undo", all_segments=True))
    kinds = [e["type"] for e in events]
    assert kinds.count("RunFailed") == 2 and kinds.count("CompensationReleased") == 1
    released = kinds.index("CompensationReleased")
    assert kinds[released - 1] == "RunFailed"
    assert events[released]["payload"]["states"] == ["reserve_flight", "reserve_hotel"]
    assert "compensation_held" not in events[-1]["payload"]
    # Undone is final: neither a retry nor a second release.
    again = cli(store_url, "compensate", "trip-undo", "--yes")
    assert_clean(again, 1)
    assert "holds no compensations" in again.stderr
    retry = cli(store_url, "retry", "trip-undo")
    assert_clean(retry, 1)
    assert "compensated already" in retry.stderr
    assert started(log)["booking.cancel_hotel"] == 1


def test_compensate_refuses_runs_that_hold_nothing(store_url: str, tmp_path: Path) -> None:
    default_saga = cli(
        store_url,
        "run",
        str(SAMPLES / "booking_saga.yaml"),
        "--input",
        f"@{SAMPLES / 'inputs' / 'booking_payment_fails.json'}",
        "--id",
        "compensated",
        "--activities",
        str(SAMPLE_ACTIVITIES),
    )
    assert_clean(default_saga, 1)
    completed = cli(
        store_url,
        "run",
        str(HOLD),
        "--input",
        f"@{TRIP}",
        "--id",
        "booked",
        "--activities",
        str(SAMPLE_ACTIVITIES),
    )
    assert_clean(completed, 0)
    with Client(store_url) as client:
        before = list(client.history("compensated", all_segments=True))
        for run_id, why in (("compensated", "holds no compensations"), ("booked", "is completed")):
            proc = cli(store_url, "compensate", run_id, "--yes")
            assert_clean(proc, 1)
            assert why in proc.stderr and "on_failure: hold" in proc.stderr
        assert list(client.history("compensated", all_segments=True)) == before
    missing = cli(store_url, "compensate", "nobody", "--yes")
    assert_clean(missing, 4)


def test_bulk_compensate_releases_the_held_runs_it_matches(store_url: str, tmp_path: Path) -> None:
    log, env = held_run(store_url, tmp_path, "trip-a")
    held_run(store_url, tmp_path, "trip-b")
    proc = cli(store_url, "compensate", "--workflow", "booking_hold", "--yes", "--json")
    assert_clean(proc, 0)
    assert json.loads(proc.stdout.splitlines()[-1]) == {"matched": 2, "done": 2, "skipped": 0}
    for run_id in ("trip-a", "trip-b"):
        assert resume(store_url, run_id, env)["status"] == "failed"
    assert started(log)["booking.cancel_hotel"] == 2


# --------------------------------------------------------------------------- the core


HANDLERS = """
name: held-exit
saga: {on_failure: hold}
states:
  book:
    type: activity
    activity: test.append
    input: {path: "{{ input.path }}", line: book}
    compensate:
      activity: test.append
      input: {path: "{{ input.path }}", line: unbook}
    next: pay
  pay:
    type: activity
    activity: test.append
    input: {path: "{{ input.path }}", line: pay, fail: true, type: Declined}
    retry: {max_attempts: 1}
    end: true
on_exit:
  failure:
    states:
      report:
        type: succeed
        output: "{{ run.compensation }}"
"""


def test_exit_handlers_see_held_then_ran(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, HANDLERS)
    log = tmp_path / "lines.jsonl"
    with Client(store_url) as client:
        run_id = client.start(wf, {"path": str(log)})
        assert client.execute(run_id).status == "failed"
        client.compensate(run_id)
        record = client.execute(run_id)
        assert record.status == "failed" and record.error["type"] == "Declined"
        events = list(client.history(run_id, all_segments=True))
    outputs = [e["payload"]["output"] for e in events if e["type"] == "ExitHandlerCompleted"]
    assert outputs == ["held", "ran"]
    lines = [json.loads(line)["line"] for line in log.read_text().splitlines()]
    assert lines == ["book", "pay", "unbook"]


def test_cancel_of_a_holding_workflow_still_compensates(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: held-cancel
        saga: {on_failure: hold}
        states:
          book:
            type: activity
            activity: reserve
            compensate: {activity: release}
            next: nap
          nap: {type: sleep, duration: 1h, end: true}
        """,
    )
    defn = load_definition(wf)
    state = new_run_state(defn, "r", None, 0.0)
    Engine(defn, state, 0.0).start()
    step = Engine(defn, state, 0.0)
    step.advance()
    (task,) = step.start_due_tasks()
    Engine(defn, state, 1.0).task_completed(task["id"], {"ok": True})
    cancel = Engine(defn, state, 2.0)
    cancel.cancel()
    assert [e.type for e in cancel.events] == ["CancelRequested", "CompensationStarted"]
    assert "held" not in state
