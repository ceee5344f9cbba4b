"""Golden histories: the event sequence (type, state, attempt) of each sequential sample is part
of the product's contract (people and tools read `tideflow history`). A change to the engine
that alters one must be deliberate: regenerate with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff.

Only samples without concurrency are pinned: concurrent branches may interleave differently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "golden" / "histories.json"
CASES = [
    ("greeting", "greeting"),
    ("order", "order"),
    ("order", "order_small"),
    ("order", "order_flaky"),
    ("order", "order_declined"),
    ("order", "order_out_of_stock"),
    ("booking_saga", "booking_saga"),
    ("booking_saga", "booking_hotel_fails"),
    ("booking_saga", "booking_flight_fails"),
    ("booking_saga", "booking_payment_fails"),
]


def _story(client: Client, workflow: str, input_name: str) -> dict[str, Any]:
    data = json.loads((SAMPLES / "inputs" / f"{input_name}.json").read_text())
    run_id = client.start(SAMPLES / f"{workflow}.yaml", data)
    record = client.execute(run_id)
    return {
        "status": record.status,
        "output": record.output,
        "error": record.error,
        "events": [[e["type"], e["state"], e["attempt"]] for e in client.history(run_id)],
    }


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    load_activity_modules([str(SAMPLES / "activities.py")])
    with Client(str(tmp_path_factory.mktemp("golden") / "store.db")) as client:
        found = {f"{w}/{i}": _story(client, w, i) for w, i in CASES}
    if os.environ.get("TIDEFLOW_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return found


@pytest.mark.parametrize(("workflow", "input_name"), CASES)
def test_history_matches_the_golden_one(
    stories: dict[str, Any], workflow: str, input_name: str
) -> None:
    golden = json.loads(GOLDEN.read_text())
    key = f"{workflow}/{input_name}"
    assert stories[key] == golden[key], (
        f"the history of {key} changed; if that is intended, regenerate with "
        "TIDEFLOW_UPDATE_GOLDEN=1 and review the diff"
    )
