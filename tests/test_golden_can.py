"""Golden histories of continue-as-new and the history limit (tests/golden/can.json): the event
sequence (type, state, attempt, segment) of the poller sample, of a buffered signal carried over
a switch, and of a loop stopped by its history limit. Regenerate on purpose with
TIDEFLOW_UPDATE_GOLDEN=1 and review the diff (see tests/test_golden_histories.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, golden_found

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
WF = Path(__file__).resolve().parent / "workflows_can"
GOLDEN = Path(__file__).parent / "golden" / "can.json"
CASES: dict[str, tuple[Path, Any, list[tuple[str, Any]]]] = {
    "poller/poller": (
        SAMPLES / "poller.yaml",
        json.loads((SAMPLES / "inputs" / "poller.json").read_text()),
        [],
    ),
    "carry_over/signal_before_switch": (WF / "carry_over.yaml", {"round": 0}, [("go", 1)]),
    "runaway/history_limit": (WF / "runaway.yaml", None, []),
}


def _story(client: Client, path: Path, input_: Any, signals: list[tuple[str, Any]]) -> Any:
    run_id = client.start(path, input_)
    for name, payload in signals:
        client.signal(run_id, name, payload)
    record = client.execute(run_id)
    return {
        "status": record.status,
        "output": record.output,
        "error": None if record.error is None else record.error["type"],
        "events": [
            [e["type"], e["state"], e["attempt"], e["segment"]]
            for e in client.history(run_id, all_segments=True)
        ],
    }


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    load_activity_modules([str(SAMPLES / "activities.py")])
    with Client(str(tmp_path_factory.mktemp("golden") / "store.db")) as client:
        return golden_found(GOLDEN, {key: _story(client, *case) for key, case in CASES.items()})


@pytest.mark.parametrize("key", sorted(CASES))
def test_history_matches_the_golden_one(stories: dict[str, Any], key: str) -> None:
    assert_golden(stories[key], GOLDEN, key)
