"""Sagas: compensations newest first and exactly once, failing compensations, the `compensate`
state, cancel (compensates) versus terminate (does not), and the history of a saga."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import activities_for_tests as acts
from conftest import run_cli
from run_helpers import (
    TEST_ACTIVITIES,
    WORKFLOWS,
    assert_clean,
    cli_popen,
    events_or_empty,
    finish,
    history,
    of_type,
    one_json,
    run_to_end,
    types_of,
    wait_for,
)

from interpreter import Client

SAGA = WORKFLOWS / "saga.yaml"
COMPENSATE_NOW = WORKFLOWS / "compensate_now.yaml"
STORY = {
    "ActivityCompleted",
    "ActivityFailed",
    "CompensationStarted",
    "CompensationCompleted",
    "CompensationFailed",
    "CancelRequested",
    "RunCompleted",
    "RunFailed",
    "RunCancelled",
    "RunTerminated",
}


def lines(log: Path) -> list[str]:
    return [entry["line"] for entry in acts.read_json_lines(log)]


def story(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["type"], e["state"]) for e in events if e["type"] in STORY]


def test_saga_that_succeeds_runs_no_compensation(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "saga.log"
    run = run_to_end(client, SAGA, {"path": str(log), "then": "ok"})
    assert run.status == "completed", run.error
    assert run.output == {"stage": 3}
    assert lines(log) == ["do a", "do b", "do c"]
    assert not of_type(history(client, run.id), "CompensationStarted")


def test_compensations_run_newest_first_exactly_once_with_inputs_from_completion(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "saga.log"
    run = run_to_end(client, SAGA, {"path": str(log), "then": "end"})
    assert run.status == "failed"
    assert run.error == {
        "type": "BookingFailed",
        "message": "gave up at stage 3",
        "details": {"stage": 3},
    }
    # `stage` was 0, 1, 2 when a, b, c completed and 3 when the run failed: each undo input
    # was rendered when its step completed.
    assert lines(log) == [
        "do a",
        "do b",
        "do c",
        "undo c id-do c stage 2",
        "undo b id-do b stage 1",
        "undo a id-do a stage 0",
    ]
    events = history(client, run.id)
    # The whole story, in order, from `history`.
    assert story(events) == [
        ("ActivityCompleted", "book_a"),
        ("ActivityCompleted", "book_b"),
        ("ActivityCompleted", "book_c"),
        ("CompensationStarted", "book_c"),
        ("CompensationCompleted", "book_c"),
        ("CompensationStarted", "book_b"),
        ("CompensationCompleted", "book_b"),
        ("CompensationStarted", "book_a"),
        ("CompensationCompleted", "book_a"),
        ("RunFailed", None),
    ]
    entered = [e["state"] for e in of_type(events, "StateEntered")]
    assert entered[-2:] == ["route", "give_up"]
    undo_c = of_type(events, "CompensationStarted")[0]["payload"]
    assert undo_c["activity"] == "test.append"
    assert undo_c["input"]["line"] == "undo c id-do c stage 2"


def test_failed_compensation_is_recorded_and_the_rest_still_run(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "saga.log"
    run = run_to_end(client, SAGA, {"path": str(log), "then": "end", "fail_undo": "b"})
    assert run.status == "failed"
    # The compensation of b has its own policy: 3 attempts.
    assert lines(log) == [
        "do a",
        "do b",
        "do c",
        "undo c id-do c stage 2",
        "undo b id-do b stage 1",
        "undo b id-do b stage 1",
        "undo b id-do b stage 1",
        "undo a id-do a stage 0",
    ]
    assert run.error["type"] == "BookingFailed"
    details = run.error["details"]
    assert details["cause"] == {"stage": 3}
    [failure] = details["compensation_errors"]
    assert failure["state"] == "book_b"
    assert failure["activity"] == "test.append"
    assert failure["error"]["type"] == "AppendFailed"
    events = history(client, run.id)
    assert story(events)[3:] == [
        ("CompensationStarted", "book_c"),
        ("CompensationCompleted", "book_c"),
        ("CompensationStarted", "book_b"),
        ("CompensationFailed", "book_b"),
        ("CompensationFailed", "book_b"),
        ("CompensationFailed", "book_b"),
        ("CompensationStarted", "book_a"),
        ("CompensationCompleted", "book_a"),
        ("RunFailed", None),
    ]
    assert [r["attempt"] for r in of_type(events, "RetryScheduled")] == [2, 3]
    comp_failures = of_type(events, "CompensationFailed")
    assert [c["payload"].get("will_retry", False) for c in comp_failures] == [True, True, False]
    assert not [e for e in of_type(events, "ActivityFailed") if e["state"] == "book_b"], (
        "a failing compensation is reported as CompensationFailed, not as a failed step"
    )
    keys = {e["key"] for e in acts.read_json_lines(log) if e["line"].startswith("undo b")}
    assert len(keys) == 1, "the attempts of one compensation share an idempotency key"


def test_compensate_state_runs_them_now_and_continues(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "now.log"
    run = run_to_end(client, COMPENSATE_NOW, {"path": str(log), "fail": False})
    assert run.status == "completed", run.error
    assert run.output == {"line": "do c", "id": "id-do c"}
    assert lines(log) == ["do a", "do b", "undo b", "undo a", "do c"]


def test_compensations_already_run_are_not_run_again(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "now.log"
    run = run_to_end(client, COMPENSATE_NOW, {"path": str(log), "fail": True})
    assert run.status == "failed"
    assert run.error["type"] == "LateFailure"
    assert lines(log) == ["do a", "do b", "undo b", "undo a", "do c", "undo c"]
    assert story(history(client, run.id))[-3:] == [
        ("CompensationStarted", "book_c"),
        ("CompensationCompleted", "book_c"),
        ("RunFailed", None),
    ]


def test_cancel_in_process_compensates_and_ends_cancelled(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "saga.log"
    run_id = client.start(SAGA, {"path": str(log), "then": "nap"})
    client.cancel(run_id)
    run = client.execute(run_id)
    assert run.status == "cancelled"
    assert run.error["type"] == "Cancelled"
    # Cancelled before any step ran: nothing to undo, nothing done.
    assert lines(log) == []


def _run_until_napping(store_url: str, tmp_path: Path, run_id: str) -> tuple[Path, Any]:
    log = tmp_path / "saga.log"
    proc = cli_popen(
        "run",
        str(SAGA),
        "--id",
        run_id,
        "--db",
        store_url,
        "--activities",
        str(TEST_ACTIVITIES),
        "--input",
        json.dumps({"path": str(log), "then": "nap"}),
        "--json",
    )
    with Client(store_url) as client:

        def napping() -> bool:
            return any(
                e["type"] == "TimerStarted" and e["state"] == "nap"
                for e in events_or_empty(client, run_id)
            )

        try:
            wait_for(napping, timeout=20)
        except AssertionError:
            proc.kill()
            raise AssertionError(finish(proc).stderr) from None
    return log, proc


def test_cli_cancel_while_sleeping_runs_compensations(store_url: str, tmp_path: Path) -> None:
    log, proc = _run_until_napping(store_url, tmp_path, "trip-1")
    cancel = run_cli("cancel", "trip-1", "--db", store_url)
    assert_clean(cancel, 0)
    assert "trip-1" in cancel.stdout
    result = finish(proc)
    assert_clean(result, 1)
    out = one_json(result)
    assert out["status"] == "cancelled"
    assert out["error"]["type"] == "Cancelled"
    assert lines(log) == [
        "do a",
        "do b",
        "do c",
        "undo c id-do c stage 2",
        "undo b id-do b stage 1",
        "undo a id-do a stage 0",
    ]
    shown = run_cli("history", "trip-1", "--db", store_url, "--json")
    assert_clean(shown, 0)
    events = json.loads(shown.stdout)
    assert story(events)[3:] == [
        ("CancelRequested", None),
        ("CompensationStarted", "book_c"),
        ("CompensationCompleted", "book_c"),
        ("CompensationStarted", "book_b"),
        ("CompensationCompleted", "book_b"),
        ("CompensationStarted", "book_a"),
        ("CompensationCompleted", "book_a"),
        ("RunCancelled", None),
    ]
    # The text form tells the same story.
    text = run_cli("history", "trip-1", "--db", store_url)
    assert_clean(text, 0)
    assert text.stdout.index("CancelRequested") < text.stdout.index("RunCancelled")
    status = run_cli("status", "trip-1", "--db", store_url, "--json")
    assert json.loads(status.stdout)["status"] == "cancelled"
    again = run_cli("cancel", "trip-1", "--db", store_url)
    assert_clean(again, 1)
    assert "already ended" in again.stderr


def test_cli_terminate_ends_at_once_without_compensation(store_url: str, tmp_path: Path) -> None:
    log, proc = _run_until_napping(store_url, tmp_path, "trip-2")
    term = run_cli("terminate", "trip-2", "--db", store_url, "--reason", "ops said so", "--json")
    assert_clean(term, 0)
    assert one_json(term) == {"run_id": "trip-2", "status": "terminated"}
    result = finish(proc, timeout=15)
    assert_clean(result, 1)
    out = one_json(result)
    assert out["status"] == "terminated"
    assert out["error"]["message"] == "ops said so"
    assert lines(log) == ["do a", "do b", "do c"]
    with Client(store_url) as client:
        events = history(client, "trip-2")
    assert types_of(events)[-1] == "RunTerminated"
    assert not of_type(events, "CompensationStarted")
