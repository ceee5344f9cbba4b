"""Golden histories of updates (tests/golden/upd.json): the events of a run that takes
updates, including the payload of each UpdateApplied, and the outcome stored for each update.
Regenerate with TIDEFLOW_UPDATE_GOLDEN=1 and review the diff (as tests/test_golden_histories.py).

The updates are stored before the run is driven (`Client.update` with timeout 0 stores them
and gives up waiting), so the worker takes them in one deterministic order at its first step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from run_helpers import assert_golden, event_rows, golden_found

from interpreter import Client, load_activity_modules
from interpreter.errors import UpdateTimeout

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "upd.json"
CASES: dict[str, tuple[Path, Any, list[tuple[str, str, Any]]]] = {
    "entity_greeting": (
        ROOT / "samples" / "entity_greeting.yaml",
        {"name": "Ada"},
        [
            ("u1", "set_language", {"language": "fr"}),
            ("u2", "set_language", {"language": "tlh"}),
            ("u3", "set_language", {"language": "de"}),
            ("u4", "finish", None),
        ],
    ),
    "upd_early": (
        Path(__file__).parent / "workflows" / "upd_early.yaml",
        None,
        [("u1", "go", 7), ("u2", "go", "early")],
    ),
}


def _story(client: Client, name: str) -> dict[str, Any]:
    workflow, input_, updates = CASES[name]
    run_id = client.start(workflow, input_, run_id=f"golden-{name}")
    for update_id, update, payload in updates:
        with pytest.raises(UpdateTimeout):
            client.update(run_id, update, payload, update_id=update_id, timeout=0)
    record = client.execute(run_id)
    outcomes = {}
    for update_id, _, _ in updates:
        stored = client.store.get_update(run_id, update_id)
        assert stored is not None
        outcomes[update_id] = [stored.status, stored.result, stored.message]
    return {
        "status": record.status,
        "output": record.output,
        "events": event_rows(client.history(run_id), ("UpdateApplied",)),
        "updates": outcomes,
    }


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    load_activity_modules([str(ROOT / "samples" / "activities.py")])
    with Client(str(tmp_path_factory.mktemp("golden") / "store.db")) as client:
        return golden_found(GOLDEN, {name: _story(client, name) for name in CASES})


@pytest.mark.parametrize("name", sorted(CASES))
def test_update_history_matches_the_golden_one(stories: dict[str, Any], name: str) -> None:
    assert_golden(stories[name], GOLDEN, name)
