"""Stopping a worker (or `tideflow run`) while a sync activity runs: it waits at most its grace,
then abandons the attempt, exits at once and leaves the run to the next worker."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import activities_for_tests as acts
from conftest import run_cli
from run_helpers import (
    assert_clean,
    cli_popen,
    events_or_empty,
    finish,
    of_type,
    one_json,
    wait_for,
    write_workflow,
)

from interpreter import Client

# The first call sleeps `seconds` in a thread and never looks at ctx.cancelled; once the flag
# file exists (a later attempt), it returns at once.
NAP_ACTIVITIES = """\
import json, os, time

from interpreter import activity


def _log(path, **record):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\\n").encode())
    finally:
        os.close(fd)


@activity("shutdown.nap")
def nap(ctx, payload):
    _log(payload["log"], event="start", pid=os.getpid(), key=ctx.idempotency_key)
    first = not os.path.exists(payload["flag"])
    if first:
        open(payload["flag"], "w").close()
        time.sleep(payload["seconds"])
    _log(payload["log"], event="end", pid=os.getpid())
    return {"first": first}
"""

NAP_WORKFLOW = """
    name: napper
    states:
      nap:
        type: activity
        activity: shutdown.nap
        input: "{{ input }}"
        timeout: {start_to_close: 5m}
        end: true
"""

ABANDONED = "abandoning 1 activity attempt still running"
SAME_KEY = "it will run again on the next worker (same idempotency key)"


class Nap:
    """The files of one test: workflow, activities, log and flag."""

    def __init__(self, tmp_path: Path, store_url: str, seconds: float) -> None:
        self.store_url = store_url
        self.workflow = write_workflow(tmp_path, NAP_WORKFLOW)
        self.activities = tmp_path / "nap_activities.py"
        self.activities.write_text(NAP_ACTIVITIES)
        self.log = tmp_path / "nap.log"
        self.input = json.dumps(
            {"seconds": seconds, "log": str(self.log), "flag": str(tmp_path / "flag")}
        )

    def args(self, *command: str) -> tuple[str, ...]:
        return (*command, "--activities", str(self.activities), "--db", self.store_url)

    def start(self, run_id: str) -> None:
        assert_clean(
            run_cli(*self.args("start", str(self.workflow)), "--id", run_id, "--input", self.input),
            0,
        )

    def entries(self, event: str) -> list[dict[str, object]]:
        return [e for e in acts.read_json_lines(self.log) if e["event"] == event]

    def wait_started(self, count: int = 1) -> None:
        wait_for(lambda: len(self.entries("start")) >= count, timeout=20)

    def assert_released_then_finished_by_another_worker(self, run_id: str) -> None:
        with Client(self.store_url) as client:
            record = client.get(run_id)
            assert record.status == "running"
            assert record.lease_owner is None, "the run was released, not left leased"
        resumed = run_cli(*self.args("resume", run_id), "--json", timeout=60)
        assert_clean(resumed, 0)
        assert one_json(resumed)["output"] == {"first": False}
        starts = self.entries("start")
        assert len(starts) == 2
        assert starts[0]["key"] == starts[1]["key"], "the restart keeps its idempotency key"
        assert starts[0]["pid"] != starts[1]["pid"]
        assert starts[0]["pid"] not in {e["pid"] for e in self.entries("end")}
        with Client(self.store_url) as client:
            events = events_or_empty(client, run_id)
        assert of_type(events, "ActivityInterrupted")


def test_sigterm_abandons_a_sync_activity_after_the_grace_and_exits(
    store_url: str, tmp_path: Path
) -> None:
    nap = Nap(tmp_path, store_url, 25)
    nap.start("nap-1")
    worker = cli_popen(*nap.args("worker"), "--grace", "1")
    try:
        nap.wait_started()
        worker.send_signal(signal.SIGTERM)
        # The thread sleeps 25 s more: the process must not wait for it (it used to).
        result = finish(worker, timeout=8)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    assert f"{ABANDONED} after the 1s grace; {SAME_KEY}" in result.stderr
    nap.assert_released_then_finished_by_another_worker("nap-1")


def test_a_second_sigterm_abandons_at_once(store_url: str, tmp_path: Path) -> None:
    nap = Nap(tmp_path, store_url, 25)
    nap.start("nap-2")
    worker = cli_popen(*nap.args("worker"), "--grace", "60")
    try:
        nap.wait_started()
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        result = finish(worker, timeout=8)  # far less than the 60 s grace
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    assert f"{ABANDONED} (stopped a second time); {SAME_KEY}" in result.stderr
    nap.assert_released_then_finished_by_another_worker("nap-2")


def test_a_sync_activity_that_ends_within_the_grace_is_committed(
    store_url: str, tmp_path: Path
) -> None:
    nap = Nap(tmp_path, store_url, 1.5)
    nap.start("nap-3")
    worker = cli_popen(*nap.args("worker"), "--grace", "30")
    try:
        nap.wait_started()
        worker.send_signal(signal.SIGTERM)
        result = finish(worker, timeout=20)  # ends with the activity, not after the grace
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    assert "abandoning" not in result.stderr
    with Client(store_url) as client:
        record = client.get("nap-3")
        assert record.status == "completed"
        assert record.output == {"first": True}
    assert len(nap.entries("start")) == 1
    assert len(nap.entries("end")) == 1


def test_run_interrupted_by_sigint_exits_after_the_grace(store_url: str, tmp_path: Path) -> None:
    """`tideflow run` drives the run with a Worker in-process, with its own --grace."""
    nap = Nap(tmp_path, store_url, 60)
    proc = cli_popen(
        *nap.args("run", str(nap.workflow)), "--id", "nap-4", "--input", nap.input, "--grace", "1"
    )
    try:
        nap.wait_started()
        proc.send_signal(signal.SIGINT)
        result = finish(proc, timeout=25)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean(result, 130)
    assert f"{ABANDONED} after the 1s grace; {SAME_KEY}" in result.stderr
    nap.assert_released_then_finished_by_another_worker("nap-4")


def test_run_interrupted_twice_abandons_at_once(store_url: str, tmp_path: Path) -> None:
    nap = Nap(tmp_path, store_url, 25)
    proc = cli_popen(*nap.args("run", str(nap.workflow)), "--id", "nap-5", "--input", nap.input)
    try:
        nap.wait_started()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        result = finish(proc, timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean(result, 130)
    assert f"{ABANDONED} (stopped a second time); {SAME_KEY}" in result.stderr
    nap.assert_released_then_finished_by_another_worker("nap-5")
