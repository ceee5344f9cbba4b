"""Generated run ids: `<workflow>-<time><random>`, later ids sorting after earlier ones (so a
new run's rows go to the end of the indexes keyed by its id), never longer than the commands
accept, on every store."""

from __future__ import annotations

import re
import time
from pathlib import Path

from run_helpers import write_workflow

from interpreter import Client
from interpreter.core.records import MAX_RUN_ID_LENGTH, run_id_problem

HOLD = """
name: {name}
states:
  hold:
    type: sleep
    duration: 1h
    end: true
"""

GENERATED = re.compile(r"^(?P<name>.+)-(?P<ms>[0-9a-f]{11})(?P<random>[0-9a-f]{12})$")


def test_generated_ids_name_the_workflow_and_sort_in_start_order(
    client: Client, tmp_path: Path
) -> None:
    workflow = write_workflow(tmp_path, HOLD.format(name="orders"))
    ids = []
    for _ in range(4):
        ids.append(client.start(workflow, {}))
        time.sleep(0.002)  # the next id is made in a later millisecond
    assert ids == sorted(ids)
    for run_id in ids:
        match = GENERATED.match(run_id)
        assert match is not None, run_id
        assert match["name"] == "orders"
        assert abs(int(match["ms"], 16) / 1000 - time.time()) < 60
    assert len({GENERATED.match(i)["random"] for i in ids}) == len(ids)  # type: ignore[index]


def test_a_long_workflow_name_is_cut_so_the_id_stays_usable(client: Client, tmp_path: Path) -> None:
    name = "w" * (MAX_RUN_ID_LENGTH + 20)
    workflow = write_workflow(tmp_path, HOLD.format(name=name))
    run_id = client.start(workflow, {})
    assert len(run_id) == MAX_RUN_ID_LENGTH
    assert run_id_problem(run_id) is None
    assert run_id.startswith("w" * 100) and GENERATED.match(run_id) is not None
    assert client.get(run_id).workflow == name
