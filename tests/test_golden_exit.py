"""Golden histories of the exit-handler sample (samples/order_notify.yaml): the event sequence
(type, state, attempt) of each input, with its ExitHandler* and per-policy RetryScheduled
events, pinned in tests/golden/exit.json and checked on every configured store.
Regenerate on purpose with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, golden_found, run_sample, story

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "golden" / "exit.json"
CASES = [
    ("order_notify", "order_notify"),
    ("order_notify", "order_notify_declined"),
    ("order_notify", "order_notify_alert_fails"),
    ("order_notify", "order_notify_carrier_down"),
]


def _story(client: Client, workflow: str, input_name: str) -> dict[str, Any]:
    record = run_sample(client, workflow, input_name)
    events = list(client.history(record.id))
    return {
        **story(record, events),
        "handlers": [
            [e["type"], e["payload"]["handler"]] for e in events if e["type"].startswith("Exit")
        ],
        "exit_errors": events[-1]["payload"].get("exit_errors"),
    }


def test_histories_match_the_golden_ones(store_url: str) -> None:
    load_activity_modules([str(SAMPLES / "activities.py")])
    with Client(store_url) as client:
        found = golden_found(GOLDEN, {f"{w}/{i}": _story(client, w, i) for w, i in CASES})
    for key, found_story in found.items():
        assert_golden(found_story, GOLDEN, key)


@pytest.mark.parametrize("key", [f"{w}/{i}" for w, i in CASES])
def test_golden_file_has_every_case(key: str) -> None:
    story = json.loads(GOLDEN.read_text())[key]
    assert story["events"][-1][0] in ("RunCompleted", "RunFailed")
    assert story["handlers"], "every case runs at least the always handler"
