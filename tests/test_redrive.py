"""`tideflow retry` and `tideflow fork` (Client.retry / Client.fork): an ended run continues from
the step that ended it, reusing the recorded results; a fork starts a new run from a state.
Real subprocesses, the activity log counts what really ran."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import write_workflow

from interpreter import Client

TESTS = Path(__file__).resolve().parent
RD_ACTIVITIES = str(TESTS / "redrive_activities.py")

CHAIN = """
name: chain
states:
  first:
    type: activity
    activity: rd.step
    input: {n: 1}
    result: first
    next: second
  second:
    type: activity
    activity: rd.fragile
    result: second
    next: third
  third:
    type: activity
    activity: rd.step
    input: "{{ vars.first.input }}"
    result: third
    end: true
output:
  first: "{{ vars.first.done }}"
  second: "{{ vars.second.done }}"
  third: "{{ vars.third.done }}"
"""


def cli(
    store: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, "--db", store, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def calls(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    return [(line["run_id"], line["state"]) for line in lines]


def failed_chain(store: str, tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    wf = write_workflow(tmp_path, CHAIN)
    log = tmp_path / "calls.log"
    env = {"TIDEFLOW_RD_LOG": str(log), "TIDEFLOW_RD_BROKEN": "1"}
    proc = cli(store, "run", str(wf), "--activities", RD_ACTIVITIES, "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    assert calls(log) == [(run_id, "first"), (run_id, "second")]
    return run_id, log, {"TIDEFLOW_RD_LOG": str(log), "TIDEFLOW_RD_BROKEN": "0"}


def test_retry_after_the_fix_does_not_run_completed_steps_again(
    store_url: str, tmp_path: Path
) -> None:
    run_id, log, fixed = failed_chain(store_url, tmp_path)
    proc = cli(store_url, "retry", run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "running"
    proc = cli(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, "--json", env=fixed)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "completed"
    assert out["output"] == {"first": "first", "second": "second", "third": "third"}
    # `first` ran once (before the failure); the retry ran `second` again, then `third`.
    assert calls(log) == [(run_id, s) for s in ("first", "second", "second", "third")]

    client = Client(store_url)
    segments = client.segments(run_id)
    assert [s.segment for s in segments] == [1, 2]
    current = list(client.history(run_id))
    assert current[0]["type"] == "RunRetried" and current[0]["state"] == "second"
    assert current[0]["payload"]["from"] == "ActivityFailed"
    every = list(client.history(run_id, all_segments=True))
    assert [e["type"] for e in every].count("ActivityCompleted") == 3
    client.close()

    # A retried run still replays: its history is the core's, segment by segment.
    wf = tmp_path / "wf.yaml"
    proc = cli(store_url, "replay", str(wf), "--json")
    assert proc.returncode == 0, proc.stdout
    # Completed: nothing to retry, a clear refusal.
    proc = cli(store_url, "retry", run_id)
    assert proc.returncode == 1 and "only failed, timed-out or cancelled" in proc.stderr


def test_retry_onto_an_edited_definition_only_when_replay_agrees(
    store_url: str, tmp_path: Path
) -> None:
    run_id, _log, fixed = failed_chain(store_url, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    bad = write_workflow(other, CHAIN.replace("input: {n: 1}", "input: {n: 2}"))
    proc = cli(store_url, "retry", run_id, "--definition", str(bad))
    assert proc.returncode == 1
    assert "not compatible" in proc.stderr and "ActivityScheduled" in proc.stderr
    with Client(store_url) as client:
        assert client.get(run_id).status == "failed"  # nothing changed

    # Compatible: `second` now catches the error (the recorded run never got one handled).
    good = write_workflow(
        other,
        CHAIN.replace(
            "    result: second\n",
            "    result: second\n    catch:\n      - errors: [Broken]\n        next: third\n",
        ),
        "good.yaml",
    )
    proc = cli(store_url, "retry", run_id, "--definition", str(good), "--json")
    assert proc.returncode == 0, proc.stderr
    proc = cli(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, "--json", env=fixed)
    assert json.loads(proc.stdout)["status"] == "completed", proc.stderr
    client = Client(store_url)
    status = client.status(run_id)
    assert (
        status["definition_hash"]
        != json.loads(cli(store_url, "history", run_id, "--segment", "1", "--json").stdout)[0][
            "payload"
        ]["hash"]
    )
    client.close()


def test_a_booking_saga_that_compensated_is_not_retried(store_url: str) -> None:
    inputs = SAMPLES / "inputs"
    proc = cli(
        store_url,
        "run",
        str(SAMPLES / "booking_saga.yaml"),
        "--input",
        f"@{inputs / 'booking_payment_fails.json'}",
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--json",
    )
    run_id = json.loads(proc.stdout)["run_id"]
    with Client(store_url) as client:
        before = list(client.history(run_id, all_segments=True))
        proc = cli(store_url, "retry", run_id)
        assert proc.returncode == 1
        assert "compensated already" in proc.stderr and "fork" in proc.stderr
        assert list(client.history(run_id, all_segments=True)) == before


def test_fork_reuses_the_results_before_the_state_and_is_linked(
    store_url: str, tmp_path: Path
) -> None:
    run_id, log, fixed = failed_chain(store_url, tmp_path)
    proc = cli(store_url, "fork", run_id, "--from", "second", "--id", "the-fork", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "run_id": "the-fork",
        "forked_from": run_id,
        "state": "second",
    }
    proc = cli(store_url, "resume", "the-fork", "--activities", RD_ACTIVITIES, "--json", env=fixed)
    out = json.loads(proc.stdout)
    assert out["status"] == "completed", proc.stderr
    assert out["output"]["first"] == "first"
    # The fork never ran `first`: its result came from the original's history.
    assert [c for c in calls(log) if c[0] == "the-fork"] == [
        ("the-fork", "second"),
        ("the-fork", "third"),
    ]
    status = json.loads(cli(store_url, "status", "the-fork", "--json").stdout)
    assert status["forked_from"] == {"run": run_id, "state": "second"}
    proc = cli(store_url, "fork", run_id, "--from", "nowhere")
    assert proc.returncode == 1 and "never entered state 'nowhere'" in proc.stderr


def test_bulk_retry_takes_the_list_filters(store_url: str, tmp_path: Path) -> None:
    """`retry` with filters instead of an id: it counts the matching ended runs, asks (or
    refuses without a terminal unless --yes), retries each in its own transaction and reports
    the ones it refused."""
    first, _log, fixed = failed_chain(store_url, tmp_path)
    second = json.loads(
        cli(
            store_url, "run", str(tmp_path / "wf.yaml"), "--activities", RD_ACTIVITIES, "--json",
            env={**fixed, "TIDEFLOW_RD_BROKEN": "1"},
        ).stdout
    )["run_id"]  # fmt: skip
    proc = cli(store_url, "retry", "--workflow", "chain")
    assert proc.returncode == 2 and "2 run(s) match" in proc.stderr and "--yes" in proc.stderr
    proc = cli(store_url, "retry", "--workflow", "chain", "--error", "Broken", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"matched": 2, "done": 2, "skipped": 0}
    for run_id in (first, second):
        done = cli(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, "--json", env=fixed)
        assert json.loads(done.stdout)["status"] == "completed", done.stderr
    # Both are completed now: no failed run matches; a completed one given by status is refused.
    proc = cli(store_url, "retry", "--workflow", "chain", "--yes", "--json")
    assert json.loads(proc.stdout) == {"matched": 0, "done": 0, "skipped": 0}
    proc = cli(store_url, "retry", "--status", "completed", "--yes")
    assert proc.returncode == 0 and "2 skipped" in proc.stdout
    assert "only failed, timed-out or cancelled" in proc.stderr
