"""The clock samples from the CLI, on every store: `deadline.yaml` (the run's clock, date helpers,
a wait for one of two signals until a computed deadline) and `approval.yaml` reading its timeout
from the input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, one_json

from interpreter import Client

INPUTS = SAMPLES / "inputs"
PARIS = ZoneInfo("Europe/Paris")


def _run(store_url: str, workflow: str, input_: dict[str, Any], tmp_path: Path) -> Any:
    data = tmp_path / "input.json"
    data.write_text(json.dumps(input_), encoding="utf-8")
    proc = run_cli(
        "run", str(SAMPLES / workflow), "--input", f"@{data}",
        "--activities", str(SAMPLE_ACTIVITIES), "--db", store_url, "--json",
    )  # fmt: skip
    return proc


def test_deadline_sample_expires_with_times_from_the_run_clock(
    store_url: str, tmp_path: Path
) -> None:
    sample_input = json.loads((INPUTS / "deadline.json").read_text())
    proc = _run(store_url, "deadline.yaml", sample_input, tmp_path)
    assert_clean(proc, 0)
    out = one_json(proc)
    assert out["status"] == "completed"
    result = out["output"]
    accepted = datetime.fromisoformat(result["accepted_at"])
    assert datetime.fromisoformat(result["deadline"]) == accepted + timedelta(seconds=1)
    assert result["status"] == "expired" and result["by"] is None
    local_accepted = accepted.astimezone(PARIS)
    midnight = datetime(local_accepted.year, local_accepted.month, local_accepted.day, tzinfo=PARIS)
    assert result["day"] == midnight.isoformat()
    with Client(store_url) as client:
        events = list(client.history(out["run_id"]))
    entered = {e["state"]: e["payload"]["at"] for e in events if e["type"] == "StateEntered"}
    assert result["accepted_at"] == entered["accept"]
    hold_time = datetime.fromisoformat(entered["hold"])
    left = round((accepted + timedelta(seconds=1) - hold_time).total_seconds(), 1)
    local = (accepted + timedelta(seconds=1)).astimezone(PARIS).strftime("%H:%M:%S")
    assert result["message"] == f"held until {local} (Europe/Paris), {left} s after hold began"
    timeout = [e for e in events if e["type"] == "TimerStarted" and e["state"] == "answer"]
    assert timeout[0]["payload"]["due"] == result["deadline"]


def test_deadline_sample_confirmed_by_one_of_its_signals(store_url: str) -> None:
    assert_clean(
        run_cli(
            "start", str(SAMPLES / "deadline.yaml"), "--id", "dl-1",
            "--input", '{"order_id": "B-2", "hold_for": "1h"}',
            "--activities", str(SAMPLE_ACTIVITIES), "--db", store_url,
        ),
        0,
    )  # fmt: skip
    for name, data in (("confirm", {"by": "ana"}), ("cancel", {"reason": "late"})):
        assert_clean(
            run_cli("signal", "dl-1", name, "--data", json.dumps(data), "--db", store_url), 0
        )
    proc = run_cli(
        "resume", "dl-1", "--activities", str(SAMPLE_ACTIVITIES), "--db", store_url, "--json"
    )
    assert_clean(proc, 0)
    out = one_json(proc)
    assert out["output"]["status"] == "confirmed" and out["output"]["by"] == "ana"
    with Client(store_url) as client:
        items, _ = client.store.read_inbox("dl-1")
    assert [(i.name, i.payload) for i in items] == [("cancel", {"reason": "late"})]


def test_approval_sample_reads_its_timeout_from_the_input(store_url: str, tmp_path: Path) -> None:
    base = json.loads((INPUTS / "approval.json").read_text())
    proc = _run(store_url, "approval.yaml", {**base, "timeout": "300ms"}, tmp_path)
    assert_clean(proc, 0)
    out = one_json(proc)
    assert out["output"]["status"] == "expired"
    with Client(store_url) as client:
        events = list(client.history(out["run_id"]))
    [timer] = [e for e in events if e["type"] == "TimerStarted"]
    assert (timer["state"], timer["payload"]["delay"]) == ("wait_for_decision", 0.3)


def test_approval_sample_with_a_bad_timeout_fails_naming_it(store_url: str, tmp_path: Path) -> None:
    base = json.loads((INPUTS / "approval.json").read_text())
    proc = _run(store_url, "approval.yaml", {**base, "timeout": "-3s"}, tmp_path)
    assert_clean(proc, 1)
    out = one_json(proc)
    assert out["status"] == "failed"
    assert out["error"]["type"] == "InvalidDuration"
    assert out["error"]["details"] == {"field": "timeout", "value": "-3s"}
    assert "'wait_for_decision'" in out["error"]["message"]
