"""Golden histories of the completion-rule and detached-child samples (tests/golden/fan.json):
the event sequence (type, state, attempt) of each, pinned like tests/test_golden_histories.py.
Regenerate on purpose with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff.

Only deterministic sequences are pinned: the maps run one item at a time (concurrency 1); the
race's parallel branches all start in one step and the winner answers at once while the others
wait 30 s or an hour, so the decision always comes in the same place; the detached sample's
own history (not its children's, which run beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, golden_found, run_sample, story

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
    record = run_sample(client, workflow, input_name, run_id=f"golden-{input_name}")
    return story(
        record, client.history(record.id), ("CompletionDecided", "ParentClosePolicyApplied")
    )


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
