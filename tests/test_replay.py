"""`tideflow replay` and `history --export`: an edited definition re-decides recorded histories
through the one core; a compatible edit passes (exit 0), an incompatible one names the first
event where its decisions differ (exit 1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli

from interpreter import Client, load_activity_modules
from interpreter.client import load_definition
from interpreter.replay import replay

BOOKING = SAMPLES / "booking_saga.yaml"
INPUTS = SAMPLES / "inputs"


def cli(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, "--db", store_url)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_sample(store_url: str, workflow: Path, input_name: str) -> str:
    proc = cli(
        store_url,
        "run",
        str(workflow),
        "--input",
        f"@{INPUTS / input_name}.json",
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--json",
    )
    assert proc.returncode in (0, 1), proc.stderr
    return str(json.loads(proc.stdout)["run_id"])


def edited(tmp_path: Path, old: str, new: str, name: str = "edited.yaml") -> Path:
    text = BOOKING.read_text("utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


def export(store_url: str, run_id: str, path: Path) -> dict[str, Any]:
    proc = cli(store_url, "history", run_id, "--export", str(path))
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return doc


def test_exported_histories_pass_a_compatible_edit_and_catch_an_incompatible_one(
    store_url: str, tmp_path: Path
) -> None:
    runs = [
        run_sample(store_url, BOOKING, name)
        for name in ("booking_saga", "booking_flight_fails", "booking_payment_fails")
    ]
    files = []
    for index, run_id in enumerate(runs):
        doc = export(store_url, run_id, tmp_path / f"run{index}.json")
        assert doc["format"] == "tideflow-history" and doc["version"] == 1
        assert doc["workflow"] == "booking_saga" and doc["run_id"] == run_id
        assert doc["definition"]["hash"] and "reserve_hotel" in doc["definition"]["source"]
        assert doc["events"][0]["type"] == "RunStarted" and "input" in doc
        files += ["--history", str(tmp_path / f"run{index}.json")]

    # Compatible: a new description and a longer activity timeout change no decision.
    same = edited(tmp_path, "start_to_close: 30s", "start_to_close: 45s")
    proc = run_cli("replay", str(same), *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 runs compatible" in proc.stdout

    # Incompatible: the flight step now sends another input.
    other = edited(tmp_path, 'flight: "{{ input.flight }}"', 'flight: "{{ input.flight }}-v2"')
    proc = run_cli("replay", str(other), *files, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["compatible"] is False
    by_run = {r["run_id"]: r for r in report["runs"]}
    for run_id in runs:
        diff = by_run[run_id]["first_difference"]
        assert diff["recorded"]["type"] == "ActivityScheduled"
        assert diff["recorded"]["state"] == "reserve_flight"
        assert "input" in diff["reason"]
    text = run_cli("replay", str(other), *files)
    assert text.returncode == 1
    assert "INCOMPATIBLE" in text.stdout and "ActivityScheduled" in text.stdout
    assert "(state 'reserve_flight')" in text.stdout


def test_replay_against_the_runs_in_a_store_with_a_status_filter(
    store_url: str, tmp_path: Path
) -> None:
    ok = run_sample(store_url, BOOKING, "booking_saga")
    failed = run_sample(store_url, BOOKING, "booking_hotel_fails")
    # A new state after the hotel: the completed run decided otherwise after reserve_hotel;
    # the run that failed at the hotel never got that far.
    reordered = edited(
        tmp_path,
        "    next: reserve_flight\n",
        "    next: note\n\n  note:\n    type: set\n    vars: {noted: true}\n"
        "    next: reserve_flight\n",
    )
    proc = cli(store_url, "replay", str(reordered), "--json")
    assert proc.returncode == 1, proc.stderr
    results = {r["run_id"]: r for r in json.loads(proc.stdout)["runs"]}
    assert results[failed]["compatible"] is True
    assert results[ok]["compatible"] is False
    assert results[ok]["first_difference"]["replayed"]["state"] == "note"
    assert results[ok]["first_difference"]["recorded"]["state"] == "reserve_flight"

    proc = cli(store_url, "replay", str(reordered), "--status", "failed", "--json")
    assert proc.returncode == 0, proc.stdout
    assert [r["run_id"] for r in json.loads(proc.stdout)["runs"]] == [failed]


def test_a_dropped_retry_is_caught_where_the_recorded_run_retried(
    store_url: str, tmp_path: Path
) -> None:
    load_activity_modules([str(SAMPLE_ACTIVITIES)])
    client = Client(store_url)
    flaky = json.loads((INPUTS / "order_flaky.json").read_text("utf-8"))
    run_id = client.start(SAMPLES / "order.yaml", flaky)
    record = client.execute(run_id)
    assert record.status == "completed"
    events = list(client.history(run_id, all_segments=True))
    assert any(e["type"] == "RetryScheduled" for e in events)
    assert replay(client.definition_of(record), run_id, events).compatible

    text = (SAMPLES / "order.yaml").read_text("utf-8")
    path = tmp_path / "order.yaml"
    path.write_text(text.replace("max_attempts: 3", "max_attempts: 1"), "utf-8")
    assert text != path.read_text("utf-8")
    result = replay(load_definition(path), run_id, events)
    assert not result.compatible
    diff = result.first_difference
    assert diff is not None and diff["recorded"]["type"] == "ActivityFailed"
    client.close()


def test_bad_export_files_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}', "utf-8")
    proc = run_cli("replay", str(BOOKING), "--history", str(bad))
    assert proc.returncode == 2
    assert "not a tideflow history export" in proc.stderr and "Traceback" not in proc.stderr
    newer = tmp_path / "newer.json"
    newer.write_text('{"format": "tideflow-history", "version": 99, "events": []}', "utf-8")
    proc = run_cli("replay", str(BOOKING), "--history", str(newer))
    assert proc.returncode == 2 and "version 99" in proc.stderr
    proc = run_cli("replay", str(BOOKING), "--history", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr
