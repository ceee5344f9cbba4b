"""The exit-handler sample (samples/order_notify.yaml) on every store: which handlers run for
each outcome, what they see, that a failing handler is recorded without changing the outcome,
and the carrier step's retry policies by error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from run_helpers import assert_clean, history, of_type, one_json, types_of

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE = SAMPLES / "order_notify.yaml"
ACTIVITIES = SAMPLES / "activities.py"


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    load_activity_modules([str(ACTIVITIES)])
    with Client(store_url) as c:
        yield c


def _run(client: Client, input_name: str) -> tuple[Any, list[dict[str, Any]]]:
    data = json.loads((SAMPLES / "inputs" / f"{input_name}.json").read_text())
    run_id = client.start(SAMPLE, data)
    record = client.execute(run_id)
    return record, history(client, run_id)


def _handlers(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    ends = {"ExitHandlerCompleted": "completed", "ExitHandlerFailed": "failed"}
    return [(e["payload"]["handler"], ends[e["type"]]) for e in events if e["type"] in ends]


def _step_inputs(events: list[dict[str, Any]], state: str) -> list[Any]:
    return [
        e["payload"]["input"] for e in of_type(events, "ActivityScheduled") if e["state"] == state
    ]


def test_success_runs_the_receipt_then_the_audit(client: Client) -> None:
    record, events = _run(client, "order_notify")
    assert record.status == "completed"
    assert record.output == {
        "order_id": "N-2001",
        "transaction_id": "tx-N-2001",
        "tracking_number": "trk-N-2001",
    }
    assert _handlers(events) == [("success", "completed"), ("always", "completed")]
    # The handlers see the outcome: run.output in the receipt, run.status in the audit.
    assert _step_inputs(events, "receipt")[0]["text"] == "order N-2001 ships as trk-N-2001"
    assert _step_inputs(events, "audit") == [{"order_id": "N-2001", "status": "completed"}]
    # They run after the run's own states, and the run's end is recorded after them.
    kinds = types_of(events)
    assert kinds.index("ExitHandlerStarted") > kinds.index("StateEntered")
    assert kinds[-1] == "RunCompleted"
    assert "exit_errors" not in events[-1]["payload"]
    # Two busy answers (429) were retried under the CarrierBusy policy (policy 0).
    retries = [e["payload"].get("policy") for e in of_type(events, "RetryScheduled")]
    assert retries == [0, 0]


def test_a_declined_card_runs_the_failure_alert_after_the_compensations(client: Client) -> None:
    record, events = _run(client, "order_notify_declined")
    assert record.status == "failed"
    assert record.error["type"] == "PaymentDeclined"
    assert _handlers(events) == [("failure", "completed"), ("always", "completed")]
    [alert] = _step_inputs(events, "alert")
    assert alert == {"channel": "ops", "to": "ops", "text": "order N-2002 failed: PaymentDeclined"}
    assert _step_inputs(events, "audit") == [{"order_id": "N-2002", "status": "failed"}]


def test_a_failing_handler_is_recorded_and_the_outcome_stays(client: Client) -> None:
    record, events = _run(client, "order_notify_alert_fails")
    assert record.status == "failed"
    assert record.error["type"] == "OutOfStock"  # the outcome, not the handler's NotifierDown
    kinds = types_of(events)
    # The charge was refunded before any handler started.
    assert kinds.index("CompensationCompleted") < kinds.index("ExitHandlerStarted")
    assert _handlers(events) == [("failure", "failed"), ("always", "completed")]
    [failed] = of_type(events, "ExitHandlerFailed")
    assert failed["payload"]["error"]["type"] == "NotifierDown"
    end = events[-1]
    assert end["type"] == "RunFailed"
    assert end["payload"]["error"]["type"] == "OutOfStock"
    assert [e["handler"] for e in end["payload"]["exit_errors"]] == ["failure"]
    info = client.status(record.id)
    assert info["status"] == "failed"
    assert info["exit_handlers"]["outcome"] == "failed"
    assert info["exit_handlers"]["running"] is None
    assert [e["error"]["type"] for e in info["exit_handlers"]["errors"]] == ["NotifierDown"]


def test_an_unavailable_carrier_uses_its_own_policy_and_fails_after_three(client: Client) -> None:
    record, events = _run(client, "order_notify_carrier_down")
    assert record.status == "failed"
    assert record.error["type"] == "ServiceUnavailable"
    book = [e for e in of_type(events, "ActivityFailed") if e["state"] == "book"]
    assert [e["attempt"] for e in book] == [1, 2, 3]  # max_attempts 3 of the second policy
    retries = of_type(events, "RetryScheduled")
    assert [(e["payload"]["policy"], e["payload"]["delay"]) for e in retries] == [
        (1, 0.02),
        (1, 0.04),
    ]
    assert _handlers(events) == [("failure", "completed"), ("always", "completed")]


def test_the_cli_shows_a_failed_exit_handler(store_url: str) -> None:
    args = ["--activities", str(ACTIVITIES), "--db", store_url]
    inputs = f"@{SAMPLES / 'inputs' / 'order_notify_alert_fails.json'}"
    proc = run_cli("run", str(SAMPLE), "--input", inputs, *args, "--json")
    assert_clean(proc, 1)
    result = one_json(proc)
    assert (result["status"], result["error"]["type"]) == ("failed", "OutOfStock")
    status = run_cli("status", result["run_id"], "--db", store_url)
    assert_clean(status, 0)
    assert "exit error handler failure: NotifierDown" in status.stdout
    status_json = one_json(run_cli("status", result["run_id"], "--db", store_url, "--json"))
    assert status_json["exit_handlers"]["errors"][0]["handler"] == "failure"


def test_run_says_which_exit_handler_failed(store_url: str) -> None:
    inputs = f"@{SAMPLES / 'inputs' / 'order_notify_alert_fails.json'}"
    proc = run_cli(
        "run", str(SAMPLE), "--input", inputs, "--activities", str(ACTIVITIES), "--db", store_url
    )
    assert_clean(proc, 1)
    assert "error: OutOfStock" in proc.stdout
    assert "exit handler failure failed: NotifierDown" in proc.stdout


def test_a_cancelled_order_runs_the_cancel_alert_then_the_audit(client: Client) -> None:
    data = json.loads((SAMPLES / "inputs" / "order_notify.json").read_text())
    run_id = client.start(SAMPLE, data)
    client.cancel(run_id)
    record = client.execute(run_id)
    events = history(client, run_id)
    assert record.status == "cancelled"
    assert _handlers(events) == [("cancel", "completed"), ("always", "completed")]
    assert _step_inputs(events, "alert")[0]["text"] == "order N-2001 was cancelled"
    assert _step_inputs(events, "audit") == [{"order_id": "N-2001", "status": "cancelled"}]
