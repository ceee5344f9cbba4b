"""Client.execute drives its run on an event loop kept for the calling thread
(interpreter/local_drive.py): nothing of one call may run on into the next, as with the new
loop per call that asyncio.run gave."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import concurrency_activities as cc
import pytest
from run_helpers import write_workflow

from interpreter import Client

LEFT_BEHIND = """
name: left_behind
description: One branch fails while the other's async activity takes a while to give in.
states:
  fan:
    type: parallel
    branches:
      - states:
          stubborn:
            type: activity
            activity: cc.stubborn_async
            input: {delay: 10, linger: 0.3, tag: stubborn}
            end: true
      - states:
          boom:
            type: activity
            activity: cc.fail
            input: {delay: 0.05, type: Other, tag: boom}
            end: true
    end: true
"""
PAUSE = """
name: pause
states:
  wait:
    type: activity
    activity: cc.echo
    input: {delay: 0.6, tag: pause, value: done}
    end: true
"""


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    with Client(store_url) as c:
        yield c


@pytest.fixture
def cc_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cc.log"
    monkeypatch.setenv(cc.LOG_ENV, str(path))
    return path


def test_nothing_of_one_execute_runs_into_the_next(
    client: Client, cc_log: Path, tmp_path: Path
) -> None:
    """The run fails (and its driver ends) while the other branch's async attempt is still in
    its clean-up: execute cancels and finishes it before returning, as asyncio.run did,
    instead of leaving it suspended on the thread's loop to wake up in the next call."""
    first = client.execute(client.start(write_workflow(tmp_path, LEFT_BEHIND)))
    returned_at = time.time()
    assert first.status == "failed" and first.error["type"] == "Other", first.error
    # The next call on this thread's loop idles for longer than that clean-up would take.
    pause = write_workflow(tmp_path, PAUSE, "pause.yaml")
    assert client.execute(client.start(pause)).status == "completed"
    late = [e for e in cc.read_log(cc_log) if e["run_id"] == first.id and e["t"] > returned_at]
    assert late == []


def test_execute_inside_a_running_event_loop_is_refused(client: Client, tmp_path: Path) -> None:
    workflow = write_workflow(tmp_path, LEFT_BEHIND)
    run_id = client.start(workflow)

    async def inside() -> None:
        client.execute(run_id)

    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(inside())


def test_threads_each_drive_on_their_own_loop(client: Client, tmp_path: Path) -> None:
    """One Client, runs executed from several threads at once, each on its thread's loop."""
    workflow = write_workflow(
        tmp_path,
        """
        name: two_steps
        states:
          a: {type: activity, activity: cc.noop, input: {n: 1}, next: b}
          b: {type: activity, activity: cc.noop, input: {n: 2}, end: true}
        """,
    )
    results: list[str] = []
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            for _ in range(3):
                results.append(client.execute(client.start(workflow)).status)
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=drive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert results == ["completed"] * 12
