"""SIGKILL around a retry (tests/crash_util.py picks the exact transaction): a retry killed
before its one transaction leaves the failed run as it was; killed after it, or killed while
the retried run executes, a resume finishes it with every activity exactly once (an attempt
whose completion was lost runs again with the same idempotency key and attempt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from crash_util import CRASH_ENV, ROOT
from test_redrive import RD_ACTIVITIES, calls, failed_chain

from interpreter import Client

CRASH_CLI = str(Path(__file__).resolve().parent / "crash_util.py")


def crash_cli(store: str, crash: str, *args: str, env: dict[str, str]) -> int:
    full = {**os.environ, **env, CRASH_ENV: crash}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, CRASH_CLI, *args, "--db", store],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def status(store: str, run_id: str) -> str:
    with Client(store) as client:
        return client.get(run_id).status


def test_kill_before_the_retry_commits_changes_nothing(store_url: str, tmp_path: Path) -> None:
    run_id, log, fixed = failed_chain(store_url, tmp_path)
    code = crash_cli(store_url, "before:RunRetried:1", "retry", run_id, env=fixed)
    assert code == -9
    assert status(store_url, run_id) == "failed"
    with Client(store_url) as client:
        assert len(client.segments(run_id)) == 1
    # The retry can simply be run again.
    code = crash_cli(store_url, "after:RunRetried:1", "retry", run_id, env=fixed)
    assert code == -9  # killed right after its transaction: the run is reopened
    assert status(store_url, run_id) == "running"
    from conftest import run_cli

    proc = run_cli("resume", run_id, "--activities", RD_ACTIVITIES, "--db", store_url, env=fixed)
    assert proc.returncode == 0, proc.stderr
    assert calls(log) == [(run_id, s) for s in ("first", "second", "second", "third")]


def test_kill_while_the_retried_run_executes(store_url: str, tmp_path: Path) -> None:
    run_id, log, fixed = failed_chain(store_url, tmp_path)
    from conftest import run_cli

    assert run_cli("retry", run_id, "--db", store_url).returncode == 0
    # The retried `second` completes, and the kill loses that completion.
    code = crash_cli(
        store_url,
        "before:ActivityCompleted:1",
        "resume",
        run_id,
        "--activities",
        RD_ACTIVITIES,
        env=fixed,
    )
    assert code == -9
    proc = run_cli("resume", run_id, "--activities", RD_ACTIVITIES, "--db", store_url, env=fixed)
    assert proc.returncode == 0, proc.stderr
    assert (
        json.loads(run_cli("status", run_id, "--db", store_url, "--json").stdout)["status"]
        == "completed"
    )
    got = Counter(state for _, state in calls(log))
    # `first` never again; `second` failed once, then ran in the retry and once more after
    # the kill lost its completion; `third` once.
    assert got == Counter({"first": 1, "second": 3, "third": 1})
    with Client(store_url) as client:
        events = list(client.history(run_id, all_segments=True))
    done = [e["state"] for e in events if e["type"] == "ActivityCompleted"]
    assert done == ["first", "second", "third"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_kill_right_after_retries_of_the_new_endings(store_url: str, tmp_path: Path) -> None:
    """A failed child retried with its parent, and an expression error retried onto a fixed
    definition: SIGKILL right after the retry's one transaction, then the run is resumed;
    every completed activity ran once."""
    from conftest import run_cli
    from run_helpers import write_workflow
    from test_redrive_endings import KID, PARENT, TEMPLATE, env

    write_workflow(tmp_path, KID, "kid.yaml")
    parent_wf = write_workflow(tmp_path, PARENT, "parent.yaml")
    log = tmp_path / "calls.log"
    proc = run_cli(
        "run", str(parent_wf), "--activities", RD_ACTIVITIES, "--db", store_url, "--json",
        env=env(log, True),
    )  # fmt: skip
    parent = json.loads(proc.stdout)["run_id"]
    assert crash_cli(store_url, "after:RunRetried:2", "retry", parent, env=env(log, False)) == -9
    assert (
        status(store_url, parent) == "running" and status(store_url, f"{parent}.kid") == "running"
    )
    proc = run_cli(
        "resume", parent, "--activities", RD_ACTIVITIES, "--db", store_url, env=env(log, False)
    )
    assert proc.returncode == 0, proc.stderr
    assert Counter(state for _, state in calls(log)) == Counter(
        {"before": 1, "first": 1, "second": 2, "after": 1}
    )

    wf = write_workflow(tmp_path, TEMPLATE, "template.yaml")
    fixed = write_workflow(
        tmp_path, TEMPLATE.replace("vars.missing.value", "vars.first.input"), "fixed.yaml"
    )
    tlog = tmp_path / "template.log"
    proc = run_cli(
        "run", str(wf), "--activities", RD_ACTIVITIES, "--db", store_url, "--json",
        env=env(tlog, False),
    )  # fmt: skip
    run_id = json.loads(proc.stdout)["run_id"]
    code = crash_cli(
        store_url, "after:RunRetried:1", "retry", run_id, "--definition", str(fixed),
        env=env(tlog, False),
    )  # fmt: skip
    assert code == -9 and status(store_url, run_id) == "running"
    proc = run_cli(
        "resume", run_id, "--activities", RD_ACTIVITIES, "--db", store_url, env=env(tlog, False)
    )
    assert proc.returncode == 0, proc.stderr
    assert calls(tlog) == [(run_id, "first"), (run_id, "second")]


def test_kill_around_the_retry_of_a_wait_that_timed_out(store_url: str, tmp_path: Path) -> None:
    """A wait that timed out: killed before the retry's transaction the run stays failed;
    killed right after it, the run waits again (one fresh timeout) and, once signalled and
    resumed, runs the step after the wait; the step before it ran once."""
    from conftest import run_cli
    from run_helpers import write_workflow
    from test_redrive_endings import WAITS, env

    wf = write_workflow(tmp_path, WAITS)
    log = tmp_path / "calls.log"
    proc = run_cli(
        "run", str(wf), "--activities", RD_ACTIVITIES, "--db", store_url, "--json",
        env=env(log, False),
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["status"] == "failed" and out["error"]["type"] == "Timeout", proc.stderr
    run_id = out["run_id"]
    assert crash_cli(store_url, "before:RunRetried:1", "retry", run_id, env=env(log, False)) == -9
    assert status(store_url, run_id) == "failed"
    assert crash_cli(store_url, "after:RunRetried:1", "retry", run_id, env=env(log, False)) == -9
    with Client(store_url) as client:
        record = client.get(run_id)
        assert record.status == "running" and len(client.segments(run_id)) == 2
        assert [t["kind"] for t in record.state["timers"].values()] == ["wait_timeout"]
        client.signal(run_id, "approve", {"ok": True})
    proc = run_cli(
        "resume", run_id, "--activities", RD_ACTIVITIES, "--db", store_url, "--json",
        env=env(log, False),
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["status"] == "completed" and out["output"] == {"third": {"ok": True}}, proc.stderr
    assert calls(log) == [(run_id, "first"), (run_id, "third")]
    with Client(store_url) as client:
        events = list(client.history(run_id, all_segments=True))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events].count("RunRetried") == 1


def test_kill_right_after_the_retry_of_an_expired_callback_wait(
    store_url: str, tmp_path: Path
) -> None:
    """A callback wait that expired: killed right after the retry's transaction, the same
    attempt waits again (its token was reopened in that transaction); the token completes it,
    and the resumed run neither runs the step before nor sends the callback request again."""
    from conftest import run_cli
    from run_helpers import write_workflow
    from test_redrive_endings import CALLBACK, CB_ACTIVITIES, env

    # The callback task of test_redrive_endings after a step that completes.
    first = "  first: {type: activity, activity: rd.step, result: first, next: ask}\n"
    wf = write_workflow(tmp_path, CALLBACK.replace("states:\n", "states:\n" + first, 1))
    log = tmp_path / "calls.log"
    acts = ("--activities", RD_ACTIVITIES, "--activities", CB_ACTIVITIES)
    proc = run_cli(
        "run", str(wf), "--input", json.dumps({"dir": str(tmp_path)}), *acts, "--db", store_url,
        "--json", env=env(log, False),
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["status"] == "failed" and out["error"]["type"] == "Timeout", proc.stderr
    run_id = out["run_id"]
    token_file = tmp_path / "ask-1.token"
    token, sent_at = token_file.read_text("utf-8"), token_file.stat().st_mtime_ns
    assert crash_cli(store_url, "after:RunRetried:1", "retry", run_id, env=env(log, False)) == -9
    with Client(store_url) as client:
        assert client.get(run_id).status == "running"
        client.complete_callback(token, {"approved": True})
    proc = run_cli("resume", run_id, *acts, "--db", store_url, "--json", env=env(log, False))
    out = json.loads(proc.stdout)
    assert out["status"] == "completed", proc.stderr
    assert out["output"] == {"approved": True}
    assert calls(log) == [(run_id, "first")]
    assert sorted(p.name for p in tmp_path.glob("*.token")) == ["ask-1.token"]
    assert token_file.stat().st_mtime_ns == sent_at  # the request was not sent again
