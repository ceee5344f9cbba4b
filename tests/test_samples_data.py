"""The `intake` sample (data helpers, nested paths, input defaults and formats, re-raising a
caught error) runs from the CLI on both stores, and its histories are pinned in
tests/golden/data.json (regenerate with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from run_helpers import golden_found, run_sample, story

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "golden" / "data.json"
ACTIVITIES = str(SAMPLES / "activities.py")

COMPLETED = {
    "customer": {
        "id": "cus-ada",
        "profile_json": '{"tier": "gold", "discount": {"percent": 10}}',
    },
    "profile": {"tier": "gold", "discount": {"percent": 10}},
    "discount": 10,
    "coupon_ok": True,
    "coupon_code": "SAVE",
    "spreadsheet": True,
    "options": {"express": True, "currency": "EUR"},
    "placed_at": "2026-01-01T00:00:00Z",
}
BLOCKED = {
    "type": "CustomerBlocked",
    "message": "rejected: customer blocked@shop.test is blocked",
    "details": None,
}
CASES = [("intake", "completed", COMPLETED, None), ("intake_blocked", "failed", None, BLOCKED)]


@pytest.mark.parametrize(("input_name", "status", "output", "error"), CASES)
def test_the_intake_sample_runs_from_the_cli(
    store_url: str, input_name: str, status: str, output: Any, error: Any
) -> None:
    proc = run_cli(
        "run",
        str(SAMPLES / "intake.yaml"),
        "--input",
        f"@{SAMPLES / 'inputs' / input_name}.json",
        "--activities",
        ACTIVITIES,
        "--db",
        store_url,
        "--json",
    )
    assert proc.returncode == (0 if status == "completed" else 1), proc.stderr
    result = json.loads(proc.stdout)
    assert (result["status"], result["output"], result["error"]) == (status, output, error)


def test_the_intake_sample_refuses_a_bad_date_before_creating_a_run(store_url: str) -> None:
    bad = {"email": "ada@example.com", "coupon": "X", "attachment": "a", "placed_at": "soon"}
    proc = run_cli(
        "run",
        str(SAMPLES / "intake.yaml"),
        "--input",
        json.dumps(bad),
        "--activities",
        ACTIVITIES,
        "--db",
        store_url,
    )
    assert proc.returncode == 2
    assert "invalid at /placed_at: 'soon' is not a 'date-time'" in proc.stderr
    with Client(store_url) as client:
        assert client.store.list_runs(limit=10) == []


def _story(client: Client, input_name: str) -> dict[str, Any]:
    record = run_sample(client, "intake", input_name)
    return story(record, client.history(record.id))


def test_the_intake_histories_match_the_golden_ones(tmp_path: Path) -> None:
    load_activity_modules([ACTIVITIES])
    with Client(str(tmp_path / "store.db")) as client:
        found = golden_found(GOLDEN, {f"intake/{name}": _story(client, name) for name, *_ in CASES})
    assert found == json.loads(GOLDEN.read_text()), (
        "the intake histories changed; if that is intended, regenerate with "
        "TIDEFLOW_UPDATE_GOLDEN=1 and review the diff"
    )
