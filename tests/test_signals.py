"""Signals and queries: schema checks before anything is stored, clear errors, durable and
ordered delivery (buffered before the `wait`, one per `wait`, with or without a worker running),
wait timeouts, queries at every stage of a run, `status` with several active branches, and the
approval sample driven from the CLI against a `tideflow worker` subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import concurrency_activities as cc
import pytest
from conftest import ROOT, SAMPLES, run_cli

from interpreter import Client, InputInvalid, RunFinished, RunNotFound, TideflowError

WF = Path(__file__).resolve().parent / "workflows_concurrency"
CC_ACTIVITIES = Path(cc.__file__).resolve()


@pytest.fixture
def cc_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cc.log"
    monkeypatch.setenv(cc.LOG_ENV, str(path))
    return path


def pending_signals(client: Client, run_id: str) -> list[tuple[str, Any]]:
    items, _ = client.store.read_inbox(run_id)
    return [(item.name, item.payload) for item in items if item.kind == "signal"]


def received(client: Client, run_id: str) -> list[tuple[str | None, Any]]:
    return [
        (e["state"], e["payload"]["payload"]) for e in cc.events(client, run_id, "SignalReceived")
    ]


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# --------------------------------------------------------------------------- sending


def test_invalid_payload_is_refused_before_it_is_stored(client: Client, store_url: str) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0})
    with pytest.raises(InputInvalid) as caught:
        client.signal(run_id, "go", {"n": "three"})
    assert "/n" in caught.value.message and "integer" in caught.value.message
    with pytest.raises(InputInvalid):
        client.signal(run_id, "go", {"n": 1, "extra": True})  # additionalProperties: false
    with pytest.raises(InputInvalid):
        client.signal(run_id, "go", None)
    assert pending_signals(client, run_id) == []

    proc = run_cli("signal", run_id, "go", "--data", '{"n": "three"}', "--db", store_url)
    assert proc.returncode == 2, proc.stderr
    assert "/n" in proc.stderr and "integer" in proc.stderr
    assert_no_traceback(proc)
    assert pending_signals(client, run_id) == []

    # A valid one is stored, and its id is printed with --json.
    proc = run_cli("signal", run_id, "go", "--data", '{"n": 3}', "--db", store_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["signal"] == "go"
    assert pending_signals(client, run_id) == [("go", {"n": 3})]


def test_signal_errors_are_clear(client: Client, store_url: str, tmp_path: Path) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0})

    with pytest.raises(TideflowError) as caught:
        client.signal(run_id, "stop", {})
    assert "declares no signal 'stop'" in caught.value.message
    assert "go" in (caught.value.hint or "") and "ping" in (caught.value.hint or "")
    proc = run_cli("signal", run_id, "stop", "--db", store_url)
    assert proc.returncode == 1 and "declares no signal 'stop'" in proc.stderr
    assert_no_traceback(proc)

    with pytest.raises(RunNotFound):
        client.signal("no-such-run", "go", {"n": 1})
    proc = run_cli("signal", "no-such-run", "go", "--data", '{"n": 1}', "--db", store_url)
    assert proc.returncode == 4 and "no run with id 'no-such-run'" in proc.stderr
    assert_no_traceback(proc)

    proc = run_cli("signal", run_id, "go", "--data", "{not json", "--db", store_url)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    assert_no_traceback(proc)
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"n": 7}')
    proc = run_cli("signal", run_id, "go", "--data", f"@{payload_file}", "--db", store_url)
    assert proc.returncode == 0, proc.stderr
    assert pending_signals(client, run_id) == [("go", {"n": 7})]

    client.terminate(run_id)
    with pytest.raises(RunFinished):
        client.signal(run_id, "go", {"n": 1})
    proc = run_cli("signal", run_id, "go", "--data", '{"n": 1}', "--db", store_url)
    assert proc.returncode == 1 and "already ended" in proc.stderr
    assert_no_traceback(proc)


# --------------------------------------------------------------------------- delivery


def test_signals_sent_before_the_wait_are_buffered_and_consumed_in_order(client: Client) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0})
    client.signal(run_id, "go", {"n": 1})
    client.signal(run_id, "ping", {"ignored": True})  # another name never satisfies `go`
    client.signal(run_id, "go", {"n": 2})
    client.signal(run_id, "go", {"n": 3})  # one more than the run waits for: stays buffered
    final = client.execute(run_id)
    assert final.status == "completed", final.error
    assert final.output == [1, 2]
    assert received(client, run_id) == [("first", {"n": 1}), ("second", {"n": 2})]
    assert pending_signals(client, run_id) == [("ping", {"ignored": True}), ("go", {"n": 3})]


def test_signal_sent_while_a_worker_runs_an_earlier_step(
    client: Client, store_url: str, cc_log: Path
) -> None:
    """The run is held by a worker (busy in `work`) when the signals arrive; the worker must
    look at the inbox again when the run reaches its waits."""
    run_id = client.start(WF / "signals.yaml", {"delay": 0.6})
    with cc.BackgroundWorker(store_url):
        cc.wait_until(lambda: cc.read_log(cc_log), what="`work` started")
        assert cc.current_states(client, run_id) == {"work"}
        client.signal(run_id, "go", {"n": 10})
        client.signal(run_id, "go", {"n": 20})
        final = client.result(run_id, timeout=15)
    assert final.status == "completed", final.error
    assert final.output == [10, 20]
    assert received(client, run_id) == [("first", {"n": 10}), ("second", {"n": 20})]


def test_signal_sent_while_the_run_waits_with_a_worker_running(
    client: Client, store_url: str
) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0})
    with cc.BackgroundWorker(store_url):
        cc.wait_until(lambda: cc.current_states(client, run_id) == {"first"}, what="at first")
        client.signal(run_id, "go", {"n": 1})
        cc.wait_until(lambda: cc.current_states(client, run_id) == {"second"}, what="at second")
        assert client.query(run_id, "summary")["got"] == [1]
        client.signal(run_id, "go", {"n": 2})
        final = client.result(run_id, timeout=15)
    assert final.output == [1, 2]


def test_signal_sent_while_no_worker_runs_is_delivered_when_one_starts(
    client: Client, store_url: str
) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0})
    with cc.BackgroundWorker(store_url):
        cc.wait_until(lambda: cc.current_states(client, run_id) == {"first"}, what="at first")
    # No worker now: the signals are only stored.
    client.signal(run_id, "go", {"n": 5})
    client.signal(run_id, "go", {"n": 6})
    assert client.get(run_id).status == "running"
    assert cc.current_states(client, run_id) == {"first"}
    assert len(pending_signals(client, run_id)) == 2
    final = client.execute(run_id)
    assert final.output == [5, 6]
    assert pending_signals(client, run_id) == []
    assert len(cc.events(client, run_id, "SignalReceived")) == 2


def test_a_run_that_starts_with_a_wait_takes_signals_from_a_running_worker(
    client: Client, store_url: str
) -> None:
    run_id = client.start(WF / "wait_first.yaml")
    with cc.BackgroundWorker(store_url):
        cc.wait_until(
            lambda: (
                client.status(run_id)["current"]
                == [{"frame": "f1", "state": "hold", "waiting_for": "signal", "signal": "go"}]
            ),
            what="the worker started the wait",
        )
        client.signal(run_id, "go", "first")
        cc.wait_until(lambda: cc.current_states(client, run_id) == {"nap"}, what="asleep")
        # Buffered while the run sleeps; the wait that follows begins when the timer fires.
        client.signal(run_id, "go", "second")
        final = client.result(run_id, timeout=10)
    assert final.output == ["first", "second"]


def test_branches_waiting_for_the_same_signal_take_one_each(client: Client, store_url: str) -> None:
    # Stored before anything waits: branch b waits at once, branch a after a short sleep, so b
    # takes the first signal and a the second.
    run_id = client.start(WF / "parallel_same_signal.yaml")
    client.signal(run_id, "go", "one")
    client.signal(run_id, "go", "two")
    final = client.execute(run_id)
    assert final.output == ["two", "one"]
    assert received(client, run_id) == [("take_b", "one"), ("take_a", "two")]

    # Both already wait: the branch created first (the first declared) takes the first signal.
    run_id = client.start(WF / "parallel_same_signal.yaml")
    with cc.BackgroundWorker(store_url):
        cc.wait_until(
            lambda: {"take_a", "take_b"} <= cc.current_states(client, run_id), what="both wait"
        )
        client.signal(run_id, "go", "x")
        client.signal(run_id, "go", "y")
        final = client.result(run_id, timeout=10)
    assert final.output == ["x", "y"]


def test_wait_timeout_with_and_without_on_timeout(client: Client) -> None:
    final = client.execute(client.start(WF / "wait_timeout.yaml"))
    assert final.status == "completed", final.error
    assert final.output["first"] == "expired"
    assert final.output["error"] == "Timeout"  # the branch's Timeout, caught by the parallel
    assert "go" in final.output["message"]
    fired = [e["payload"]["kind"] for e in cc.events(client, final.id, "TimerFired")]
    assert fired == ["wait_timeout", "wait_timeout"]


def test_a_signal_before_the_timeout_lands_in_result(client: Client) -> None:
    run_id = client.start(WF / "wait_timeout.yaml")
    client.signal(run_id, "go", {"approved": "yes"})
    final = client.execute(run_id)
    assert final.output["first"] == {"approved": "yes"}
    assert final.output["error"] == "Timeout"  # the second wait got nothing
    # The consumed signal cancelled its timer: only the second wait's timer fired.
    assert len(cc.events(client, run_id, "TimerFired")) == 1

    run_id = client.start(WF / "wait_timeout.yaml")
    client.signal(run_id, "go", "A")
    client.signal(run_id, "go", ["B"])
    final = client.execute(run_id)
    assert final.output == {"first": "A", "second": ["B"]}
    assert cc.events(client, run_id, "TimerFired") == []


def test_uncaught_wait_timeout_fails_the_run(client: Client) -> None:
    final = client.execute(client.start(WF / "wait_timeout_uncaught.yaml"))
    assert final.status == "failed"
    assert final.error["type"] == "Timeout"


# --------------------------------------------------------------------------- queries and status


def test_queries_at_every_stage(client: Client, store_url: str, cc_log: Path) -> None:
    run_id = client.start(WF / "signals.yaml", {"delay": 0.8})
    # Not started by any worker yet.
    assert client.query(run_id, "stage") == "starting"
    with cc.BackgroundWorker(store_url):
        cc.wait_until(lambda: cc.read_log(cc_log), what="`work` started")
        # While an activity executes.
        assert client.query(run_id, "stage") == "starting"
        assert client.query(run_id, "summary") == {
            "stage": "starting",
            "got": [],
            "run_status": "running",
        }
        cc.wait_until(lambda: client.query(run_id, "stage") == "waiting", what="waiting")
    # While waiting, with no worker running; from the CLI too.
    proc = run_cli("query", run_id, "summary", "--json", "--db", store_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "run_id": run_id,
        "query": "summary",
        "value": {"stage": "waiting", "got": [], "run_status": "running"},
    }
    proc = run_cli("query", run_id, "stage", "--db", store_url)
    assert proc.returncode == 0 and proc.stdout.strip() == "waiting"

    client.signal(run_id, "go", {"n": 4})
    client.signal(run_id, "go", {"n": 2})
    assert client.execute(run_id).status == "completed"
    # After the end.
    assert client.query(run_id, "summary") == {
        "stage": "done",
        "got": [4, 2],
        "run_status": "completed",
    }

    # Errors: undeclared query, a template that fails, unknown run; no traceback.
    with pytest.raises(TideflowError, match="declares no query 'nope'"):
        client.query(run_id, "nope")
    for args, message, code in (
        ((run_id, "nope"), "declares no query 'nope'", 1),
        ((run_id, "broken"), "missing", 1),
        (("no-such-run", "stage"), "no run with id", 4),  # its own exit code
    ):
        proc = run_cli("query", *args, "--db", store_url)
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr
        assert_no_traceback(proc)


def test_status_lists_every_active_branch(client: Client, store_url: str, cc_log: Path) -> None:
    run_id = client.start(WF / "parallel_waits.yaml", {"delay": 3.0})
    with cc.BackgroundWorker(store_url):
        cc.wait_until(lambda: cc.read_log(cc_log), what="`busy` started")
        current = client.status(run_id)["current"]
        assert sorted((c["state"], c["waiting_for"]) for c in current) == [
            ("busy", "task"),
            ("wait_left", "signal"),
            ("wait_right", "signal"),
        ]
        assert client.query(run_id, "phase") == "fanning"
        proc = run_cli("status", run_id, "--db", store_url)
        assert proc.returncode == 0, proc.stderr
        for state in ("busy", "wait_left", "wait_right"):
            assert f"current    {state}" in proc.stdout
        proc = run_cli("status", run_id, "--json", "--db", store_url)
        assert {c["state"] for c in json.loads(proc.stdout)["current"]} == {
            "busy",
            "wait_left",
            "wait_right",
        }

        client.signal(run_id, "right", "R")
        cc.wait_until(
            lambda: cc.current_states(client, run_id) <= {"busy", "wait_left"}, what="right done"
        )
        client.signal(run_id, "left", "L")
        final = client.result(run_id, timeout=15)
    assert final.status == "completed"
    assert final.output == ["L", "R", "busy"]
    assert client.status(run_id)["current"] == []


# --------------------------------------------------------------------------- the approval sample


def _cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def cli_worker(store_url: str) -> Iterator[subprocess.Popen[str]]:
    """A `tideflow worker` subprocess on the store, with the sample activities."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "interpreter", "worker", "--db", store_url,
            "--activities", str(SAMPLES / "activities.py"), "--grace", "1",
        ],
        env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize(
    ("decision", "status", "by"),
    [
        ({"approved": True, "by": "alice"}, "approved", "alice"),
        ({"approved": False, "by": "carol"}, "rejected", "carol"),
    ],
)
def test_approval_sample_from_the_cli(
    store_url: str,
    cli_worker: subprocess.Popen[str],
    decision: dict[str, Any],
    status: str,
    by: str,
) -> None:
    # A long timeout from the input: on a loaded machine the CLI calls below can take longer
    # than the sample's default 5 s, which would expire the request before the decision.
    request = {**json.loads((SAMPLES / "inputs" / "approval.json").read_text()), "timeout": "10m"}
    proc = run_cli(
        "start", str(SAMPLES / "approval.yaml"), "--input", json.dumps(request),
        "--activities", str(SAMPLES / "activities.py"), "--db", store_url,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()

    def query() -> Any:
        out = run_cli("query", run_id, "status", "--json", "--db", store_url)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["value"]

    cc.wait_until(lambda: query()["status"] == "awaiting_approval", what="awaiting approval")
    assert query() == {"request_id": "R-7", "status": "awaiting_approval", "decided_by": None}
    out = run_cli("status", run_id, "--json", "--db", store_url)
    assert [c["state"] for c in json.loads(out.stdout)["current"]] == ["wait_for_decision"]

    bad = run_cli("signal", run_id, "approve", "--data", '{"approved": "yes"}', "--db", store_url)
    assert bad.returncode == 2 and "approved" in bad.stderr
    good = run_cli("signal", run_id, "approve", "--data", json.dumps(decision), "--db", store_url)
    assert good.returncode == 0, good.stderr

    def ended() -> Any:
        out = run_cli("status", run_id, "--json", "--db", store_url)
        info = json.loads(out.stdout)
        return info if info["status"] != "running" else None

    info = cc.wait_until(ended, timeout=20, interval=0.1, what="the run ends")
    assert info["status"] == "completed", info["error"]
    assert info["output"] == {
        "request_id": "R-7",
        "ticket": "apr-R-7",
        "status": status,
        "decided_by": by,
    }
    assert query() == {"request_id": "R-7", "status": status, "decided_by": by}
    assert cli_worker.poll() is None, "the worker died"
