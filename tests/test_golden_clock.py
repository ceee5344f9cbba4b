"""Golden histories of the clock samples (see tests/test_golden_histories.py): the event
sequence (type, state, attempt) of samples/deadline.yaml (expired, confirmed, cancelled: a wait
for one of two signals until a deadline) and of samples/approval.yaml with its timeout from the
input. Times in outputs vary from run to run, so they are pinned as `<time>`, and the message
(which quotes a clock time) is left out. Regenerate with TIDEFLOW_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, golden_found, story

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "golden" / "clock.json"
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# name -> (workflow, input, signals sent before the run is executed)
CASES: dict[str, tuple[str, dict[str, Any], list[tuple[str, Any]]]] = {
    "deadline/expired": ("deadline", {"order_id": "G-1", "hold_for": "300ms"}, []),
    "deadline/confirmed": (
        "deadline",
        {"order_id": "G-2", "hold_for": "1h", "zone": "Europe/Paris"},
        [("confirm", {"by": "ana"})],
    ),
    "deadline/cancelled": (
        "deadline",
        {"order_id": "G-3", "hold_for": "1h"},
        [("cancel", {"reason": "late"}), ("confirm", {"by": "bo"})],
    ),
    "approval/timeout_from_input": (
        "approval",
        {"request_id": "R-9", "amount": 5, "requester": "lee", "timeout": "200ms"},
        [],
    ),
}


def _pinned(value: Any) -> Any:
    if isinstance(value, str) and _TIME.match(value):
        return "<time>"
    if isinstance(value, dict):
        return {k: _pinned(v) for k, v in value.items() if k != "message"}
    if isinstance(value, list):
        return [_pinned(v) for v in value]
    return value


def _story(client: Client, name: str) -> dict[str, Any]:
    workflow, data, signals = CASES[name]
    run_id = client.start(SAMPLES / f"{workflow}.yaml", data)
    for signal, payload in signals:
        client.signal(run_id, signal, payload)
    record = client.execute(run_id)
    return {**story(record, client.history(run_id)), "output": _pinned(record.output)}


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    load_activity_modules([str(SAMPLES / "activities.py")])
    with Client(str(tmp_path_factory.mktemp("golden") / "store.db")) as client:
        return golden_found(GOLDEN, {name: _story(client, name) for name in CASES})


@pytest.mark.parametrize("name", list(CASES))
def test_history_matches_the_golden_one(stories: dict[str, Any], name: str) -> None:
    assert_golden(stories[name], GOLDEN, name)
