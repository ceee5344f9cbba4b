"""Golden histories of the held booking saga (samples/booking_hold.yaml) and of the two ways on
from a held failure: a retry after the fix (`RunRetried` opens segment 2, the failed step runs
again, nothing is undone) and a release (`CompensationReleased` opens segment 2, the undo steps
run newest first, the run fails again). The event sequence (type, state, attempt) of every
segment, and the payload fields tools read, are pinned in tests/golden/hold.json and checked on
every configured store. Regenerate on purpose with TIDEFLOW_UPDATE_GOLDEN=1 and review the
diff."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from interpreter import Client, load_activity_modules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "golden" / "hold.json"
TRIP = {"trip_id": "T-42", "hotel": "Grand Tide", "flight": "TF 101", "amount": 780.5}
# The payload fields of the segment and saga events that `history --json` readers rely on.
PINNED = {
    "RunRetried": ("segment", "from", "retry_point"),
    "CompensationReleased": ("segment", "states"),
    "RunFailed": ("compensation_held",),
}


def _story(client: Client, run_id: str) -> dict[str, Any]:
    record = client.get(run_id)
    events = list(client.history(run_id, all_segments=True))
    return {
        "status": record.status,
        "error": (record.error or {}).get("type"),
        "events": [[e["type"], e["state"], e["attempt"]] for e in events],
        "payloads": [
            [e["type"], {k: e["payload"].get(k) for k in PINNED[e["type"]]}]
            for e in events
            if e["type"] in PINNED
        ],
    }


def _held(client: Client, monkeypatch: pytest.MonkeyPatch, run_id: str) -> None:
    monkeypatch.setenv("TIDEFLOW_SAMPLE_BROKEN", "booking.charge")
    client.start(SAMPLES / "booking_hold.yaml", TRIP, run_id=run_id)
    assert client.execute(run_id).status == "failed"
    monkeypatch.delenv("TIDEFLOW_SAMPLE_BROKEN")


def _retried_and_released(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run `retried`: held, retried after the fix, completed. Run `released`: held, given up."""
    _held(client, monkeypatch, "retried")
    client.retry("retried")
    client.execute("retried")
    _held(client, monkeypatch, "released")
    client.compensate("released")
    client.execute("released")


def test_histories_match_the_golden_ones(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    load_activity_modules([str(SAMPLES / "activities.py")])
    monkeypatch.delenv("TIDEFLOW_SAMPLE_LOG", raising=False)
    with Client(store_url) as client:
        _held(client, monkeypatch, "held")
        _retried_and_released(client, monkeypatch)
        found = {
            f"booking_hold/{name}": _story(client, name) for name in ("held", "retried", "released")
        }
    if os.environ.get("TIDEFLOW_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for key, story in found.items():
        assert story == golden[key], (
            f"the history of {key} changed; if that is intended, regenerate with "
            "TIDEFLOW_UPDATE_GOLDEN=1 and review the diff"
        )


def test_the_golden_retry_opens_a_segment_and_undoes_nothing() -> None:
    golden = json.loads(GOLDEN.read_text())
    retried = [event[0] for event in golden["booking_hold/retried"]["events"]]
    assert retried.count("RunRetried") == 1 and "CompensationStarted" not in retried
    assert retried[-1] == "RunCompleted"
    released = [event[0] for event in golden["booking_hold/released"]["events"]]
    assert released.count("CompensationStarted") == 2 and released[-1] == "RunFailed"


def test_replay_re_decides_a_retried_and_a_released_history(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tideflow replay` feeds the release to the core like any input: both histories match."""
    from interpreter.client import load_definition
    from interpreter.replay import decided_events, replay

    load_activity_modules([str(SAMPLES / "activities.py")])
    defn = load_definition(SAMPLES / "booking_hold.yaml")
    with Client(store_url) as client:
        _retried_and_released(client, monkeypatch)
        for run_id in ("retried", "released"):
            events = list(client.history(run_id, all_segments=True))
            result = replay(defn, run_id, events)
            assert result.compatible, result.first_difference
            assert result.events == len(decided_events(events)[0])  # a retry takes some back
    compensating = load_definition(SAMPLES / "booking_saga.yaml")
    assert not replay(compensating, "released", events).compatible  # hold -> compensate: not
