"""Crash tests for concurrent and interactive runs: a real `tideflow` subprocess is SIGKILLed
in the middle of a parallel state (activities in flight in both branches), of a map with
concurrency 4, of a child run, and around signals (stored but not consumed yet, or consumed just
before the kill); then `tideflow resume` finishes the run.

Each test checks: the output equals an uninterrupted run's; no step whose completion was
recorded before the kill runs again; every interrupted attempt runs again with the same
idempotency key; every step has exactly one recorded completion; no signal is lost or consumed
twice. The activity log (fsynced O_APPEND lines) is the ground truth of what really ran.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import concurrency_activities as cc
import pytest
from conftest import ROOT

from interpreter import Client

pytestmark = pytest.mark.slow

WF = Path(__file__).resolve().parent / "workflows_concurrency"
CC_ACTIVITIES = str(Path(cc.__file__).resolve())


class Tideflow:
    """`python -m interpreter` subprocesses on one store, the concurrency activities loaded and
    their log in `log`."""

    def __init__(self, db: str, log: Path) -> None:
        self.db = db
        self.log = log
        self.env = {**os.environ, cc.LOG_ENV: str(log)}
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), self.env.get("PYTHONPATH")])
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "interpreter", *args, "--activities", CC_ACTIVITIES, "--db", self.db, "--json"],
            env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def start_run(self, workflow: Path, input_: Any, run_id: str) -> subprocess.Popen[str]:
        return self.spawn("run", str(workflow), "--input", json.dumps(input_), "--id", run_id)

    def resume(self, run_id: str) -> subprocess.Popen[str]:
        return self.spawn("resume", run_id)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"did not end within {timeout}s\n{out}\n{err}") from None
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    result: dict[str, Any] = json.loads(out)
    return result


def sigkill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the process ended before the kill"


def in_flight(lines: list[dict[str, Any]]) -> set[str]:
    """Tags of attempts that started and have not ended."""
    running: Counter[str] = Counter()
    for line in lines:
        running[line["tag"]] += 1 if line["event"] == "start" else -1
    return {tag for tag, n in running.items() if n > 0}


def histories(client: Client, run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs' histories, each event tagged with its run (task ids are per run)."""
    return [
        {**e, "run": run_id}
        for run_id in run_ids
        if client.store.get_run(run_id)
        for e in client.history(run_id)
    ]


def task_keys(events: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {
        (e["run"], e["payload"]["task"]): e["payload"]["idempotency_key"]
        for e in events
        if e["type"] == "ActivityScheduled"
    }


def completed_keys(events: list[dict[str, Any]]) -> Counter[str]:
    keys = task_keys(events)
    return Counter(
        keys[(e["run"], e["payload"]["task"])] for e in events if e["type"] == "ActivityCompleted"
    )


def check_recovery(
    client: Client,
    run_ids: list[str],
    before: list[dict[str, Any]],
    log_before: list[dict[str, Any]],
    log_after: list[dict[str, Any]],
) -> None:
    """`before`: the histories as recorded at the kill; logs split at the kill."""
    done_before = set(completed_keys(before))
    rerun = [line for line in log_after if line["event"] == "start" and line["key"] in done_before]
    assert not rerun, f"steps completed before the kill ran again: {rerun}"
    interrupted = {line["key"] for line in log_before if line["event"] == "start"} - done_before
    restarted = {line["key"] for line in log_after if line["event"] == "start"}
    assert interrupted <= restarted, (
        f"interrupted attempts not run again: {interrupted - restarted}"
    )
    after = histories(client, run_ids)
    completed = completed_keys(after)
    assert set(completed) == set(task_keys(after).values()), "a scheduled step never completed"
    assert all(n == 1 for n in completed.values()), f"a step completed twice: {completed}"
    ok_runs = Counter(line["key"] for line in log_before + log_after if line.get("outcome") == "ok")
    for key, count in ok_runs.items():
        assert count <= (2 if key in interrupted else 1), f"step {key} succeeded {count} times"


@pytest.fixture
def tf(store_url: str, tmp_path: Path) -> Tideflow:
    return Tideflow(store_url, tmp_path / "cc.log")


# --------------------------------------------------------------------------- parallel, map, child


def test_kill_during_a_parallel_state_with_both_branches_in_flight(
    client: Client, tf: Tideflow
) -> None:
    proc = tf.start_run(WF / "crash_parallel.yaml", {"delay": 3}, "par")
    cc.wait_until(
        lambda: {"left-2", "right-2"} <= in_flight(cc.read_log(tf.log)),
        what="both second steps run",
    )
    cc.wait_until(
        lambda: sum(completed_keys(histories(client, ["par"])).values()) == 2,
        what="first steps recorded",
    )
    sigkill(proc)
    log_before, before = cc.read_log(tf.log), histories(client, ["par"])
    assert in_flight(log_before) == {"left-2", "right-2"}
    assert client.get("par").status == "running"

    result = finish(tf.resume("par"))
    assert result["status"] == "completed", result
    assert result["output"] == "l1+l2,r1+r2"
    check_recovery(client, ["par"], before, log_before, cc.read_log(tf.log)[len(log_before) :])
    interrupted = [e["state"] for e in client.history("par") if e["type"] == "ActivityInterrupted"]
    assert sorted(interrupted) == ["left_2", "right_2"]


def test_kill_during_a_map_with_concurrency_four(client: Client, tf: Tideflow) -> None:
    count = 14
    proc = tf.start_run(WF / "crash_map.yaml", {"count": count, "delay": 0.5}, "map")

    def mid_way() -> bool:
        return (
            sum(completed_keys(histories(client, ["map"])).values()) >= 5
            and len(in_flight(cc.read_log(tf.log))) == 4
        )

    cc.wait_until(mid_way, what="5 items done, 4 in flight")
    sigkill(proc)
    log_before, before = cc.read_log(tf.log), histories(client, ["map"])
    assert cc.max_in_flight(log_before, "cc.echo") == 4
    assert 5 <= sum(completed_keys(before).values()) < count

    result = finish(tf.resume("map"))
    assert result["status"] == "completed", result
    assert result["output"] == [n * n for n in range(count)]
    log_after = cc.read_log(tf.log)[len(log_before) :]
    assert cc.max_in_flight(log_after, "cc.echo") <= 4
    check_recovery(client, ["map"], before, log_before, log_after)


def test_kill_while_a_child_runs(client: Client, tf: Tideflow) -> None:
    proc = tf.start_run(WF / "crash_parent.yaml", {"delay": 3}, "pc")
    cc.wait_until(
        lambda: "kid-2" in in_flight(cc.read_log(tf.log)), what="the child's second step runs"
    )
    sigkill(proc)
    log_before, before = cc.read_log(tf.log), histories(client, ["pc", "pc.call"])
    assert client.get("pc.call").status == "running"

    result = finish(tf.resume("pc"))
    assert result["status"] == "completed", result
    assert result["output"] == "p1/k1+k2"
    assert [r.id for r in client.list_runs() if r.parent_id == "pc"] == ["pc.call"]
    assert client.get("pc.call").status == "completed"
    check_recovery(
        client, ["pc", "pc.call"], before, log_before, cc.read_log(tf.log)[len(log_before) :]
    )


# --------------------------------------------------------------------------- signals


def signals_received(client: Client, run_id: str) -> list[Any]:
    return [
        e["payload"]["payload"] for e in client.history(run_id) if e["type"] == "SignalReceived"
    ]


def pending(client: Client, run_id: str) -> list[Any]:
    return [item.payload for item in client.store.read_inbox(run_id)[0]]


def test_kill_with_signals_stored_before_the_wait(client: Client, tf: Tideflow) -> None:
    """Both signals arrive while the run's first step executes; the worker dies before any
    `wait` consumed them."""
    proc = tf.start_run(WF / "signals.yaml", {"delay": 3}, "sig")
    cc.wait_until(lambda: "work" in in_flight(cc.read_log(tf.log)), what="`work` runs")
    client.signal("sig", "go", {"n": 1})
    client.signal("sig", "go", {"n": 2})
    sigkill(proc)
    assert signals_received(client, "sig") == []
    assert pending(client, "sig") == [{"n": 1}, {"n": 2}]

    result = finish(tf.resume("sig"))
    assert result["output"] == [1, 2]
    assert signals_received(client, "sig") == [{"n": 1}, {"n": 2}]
    assert pending(client, "sig") == []


def test_kill_between_a_signal_being_stored_and_consumed(client: Client, tf: Tideflow) -> None:
    """The worker is frozen (SIGSTOP) while the run waits, the signal is stored, then the worker
    is killed: the signal is in the store and nowhere else."""
    proc = tf.start_run(WF / "signals.yaml", {"delay": 0}, "sig2")
    cc.wait_until(
        lambda: client.store.get_run("sig2") and cc.current_states(client, "sig2") == {"first"},
        what="waiting",
    )
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        client.signal("sig2", "go", {"n": 7})
    finally:
        sigkill(proc)
    assert pending(client, "sig2") == [{"n": 7}]
    assert signals_received(client, "sig2") == []

    resumed = tf.resume("sig2")
    try:
        cc.wait_until(
            lambda: cc.current_states(client, "sig2") == {"second"}, what="first signal consumed"
        )
        assert signals_received(client, "sig2") == [{"n": 7}]
        client.signal("sig2", "go", {"n": 8})
    finally:
        result = finish(resumed)
    assert result["output"] == [7, 8]
    assert signals_received(client, "sig2") == [{"n": 7}, {"n": 8}]
    assert pending(client, "sig2") == []


def test_kill_right_after_a_signal_was_consumed(client: Client, tf: Tideflow) -> None:
    proc = tf.start_run(WF / "signals.yaml", {"delay": 0}, "sig3")
    cc.wait_until(
        lambda: client.store.get_run("sig3") and cc.current_states(client, "sig3") == {"first"},
        what="waiting",
    )
    client.signal("sig3", "go", {"n": 1})
    cc.wait_until(lambda: cc.current_states(client, "sig3") == {"second"}, what="consumed")
    sigkill(proc)

    resumed = tf.resume("sig3")
    try:
        client.signal("sig3", "go", {"n": 2})
    finally:
        result = finish(resumed)
    assert result["output"] == [1, 2]
    assert signals_received(client, "sig3") == [{"n": 1}, {"n": 2}]
