"""Golden histories: the event sequence (type, state, attempt) of each sequential sample is part
of the product's contract (people and tools read `tideflow history`). A change to the engine
that alters one must be deliberate: regenerate with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff.

Only samples without concurrency are pinned: concurrent branches may interleave differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, golden_found, run_sample, story

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
    record = run_sample(client, workflow, input_name)
    return story(record, client.history(record.id))


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    load_activity_modules([str(SAMPLES / "activities.py")])
    with Client(str(tmp_path_factory.mktemp("golden") / "store.db")) as client:
        return golden_found(GOLDEN, {f"{w}/{i}": _story(client, w, i) for w, i in CASES})


@pytest.mark.parametrize(("workflow", "input_name"), CASES)
def test_history_matches_the_golden_one(
    stories: dict[str, Any], workflow: str, input_name: str
) -> None:
    key = f"{workflow}/{input_name}"
    assert_golden(stories[key], GOLDEN, key)
