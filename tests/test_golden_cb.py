"""Golden histories of callback tasks (tests/golden/cb.json): the event sequence (type, state,
attempt) of a callback completed, failed and retried, timed out and caught, kept alive by
heartbeats, and completed while its activity still ran. Regenerate on purpose with
TIDEFLOW_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cb_activities  # noqa: F401  (registers the cb.* activities)
import pytest
from run_helpers import (
    Driven,
    assert_golden,
    event_rows,
    golden_found,
    token,
    wait_for,
    write_workflow,
)

from interpreter import Client

GOLDEN = Path(__file__).parent / "golden" / "cb.json"

WORKFLOW = """
name: golden_callbacks
defaults:
  retry: {{max_attempts: 2, initial_interval: 100ms}}
states:
  ask:
    type: activity
    activity: cb.send
    completion: callback
    input: {{dir: "{dir}", name: x, linger: "{{{{ input.linger }}}}"}}
    timeout: {timeout}
    result: answer
    catch:
      - errors: [Timeout]
        next: gave_up
    next: done
  gave_up:
    type: succeed
    output: no answer
  done:
    type: succeed
    output: "{{{{ vars.answer }}}}"
"""


def _has(client: Client, run_id: str, type_: str, count: int = 1) -> bool:
    return sum(e["type"] == type_ for e in client.history(run_id)) >= count


Action = Callable[[Client, str, Path], None]


def _approve(client: Client, run_id: str, folder: Path) -> None:
    sent = token(folder, "x")
    wait_for(lambda: _has(client, run_id, "CallbackWaiting"), 30)
    client.complete_callback(sent, "yes")


def _fail_then_approve(client: Client, run_id: str, folder: Path) -> None:
    sent = token(folder, "x")
    wait_for(lambda: _has(client, run_id, "CallbackWaiting"), 30)
    client.fail_callback(sent, "Busy", "later")
    again = token(folder, "x", 2)
    wait_for(lambda: _has(client, run_id, "CallbackWaiting", 2), 30)
    client.complete_callback(again, "second time")


def _heartbeats(client: Client, run_id: str, folder: Path) -> None:
    sent = token(folder, "x")
    wait_for(lambda: _has(client, run_id, "CallbackWaiting"), 30)
    for beat in range(3):
        client.heartbeat_callback(sent, {"beat": beat})
        threading.Event().wait(0.1)
    client.complete_callback(sent, "alive")


def _early(client: Client, run_id: str, folder: Path) -> None:
    client.complete_callback(token(folder, "x"), "before the activity returned")


BOUNDED = "{start_to_close: 30s, heartbeat: 10s}"
CASES: dict[str, tuple[Action | None, str, dict[str, Any]]] = {
    "approved": (_approve, BOUNDED, {"linger": 0}),
    "failed_then_approved": (_fail_then_approve, BOUNDED, {"linger": 0}),
    "heartbeats": (_heartbeats, BOUNDED, {"linger": 0}),
    "completed_while_running": (_early, BOUNDED, {"linger": 20}),
    "timed_out_and_caught": (None, "{start_to_close: 1s}", {"linger": 0}),
}


def _story(store: str, folder: Path, case: str) -> dict[str, Any]:
    action, timeout, input_ = CASES[case]
    folder.mkdir()
    wf = write_workflow(folder, WORKFLOW.format(dir=folder, timeout=timeout))
    with Client(store) as client:
        run_id = client.start(wf, input_, run_id=case)
        driven = Driven(store, run_id)
        if action is not None:
            action(client, run_id, folder)
        record = driven.result()
        return {
            "status": record.status,
            "output": record.output,
            "events": event_rows(client.history(run_id)),
        }


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("golden_cb")
    return golden_found(
        GOLDEN, {case: _story(str(base / "store.db"), base / case, case) for case in CASES}
    )


@pytest.mark.parametrize("case", list(CASES))
def test_history_matches_the_golden_one(stories: dict[str, Any], case: str) -> None:
    assert_golden(stories[case], GOLDEN, case)
