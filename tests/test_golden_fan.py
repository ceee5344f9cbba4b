"""Golden histories of the completion-rule and detached-child samples (tests/golden/fan.json):
the event sequence (type, state, attempt) of each, pinned like tests/test_golden_histories.py.
Regenerate on purpose with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff.

Only deterministic sequences are pinned: the maps run one item at a time (concurrency 1); the
race's parallel branches all start in one step and the winner answers at once while the others
wait 30 s or an hour, so the decision always comes in the same place; the detached sample's
own history (not its children's, which run beside it).
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
GOLDEN = Path(__file__).parent / "golden" / "fan.json"
CASES = [
    ("race", "race"),
    ("race", "race_no_mirror"),
    ("quorum", "quorum"),
    ("quorum", "quorum_lost"),
    ("detached", "detached"),
]


def _story(client: Client, workflow: str, input_name: str) -> dict[str, Any]:
    data = json.loads((SAMPLES / "inputs" / f"{input_name}.json").read_text())
    run_id = client.start(SAMPLES / f"{workflow}.yaml", data, run_id=f"golden-{input_name}")
    record = client.execute(run_id)
    return {
        "status": record.status,
        "output": record.output,
        "error": record.error,
        "events": [
            [e["type"], e["state"], e["attempt"]]
            + (
                [e["payload"]]
                if e["type"] in ("CompletionDecided", "ParentClosePolicyApplied")
                else []
            )
            for e in client.history(run_id)
        ],
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
