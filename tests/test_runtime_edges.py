"""Runtime edges found by QA: workflows `validate` accepted that then stalled a run (retry
backoff overflowing, durations past any real date), child ids that made a parent wait for
ever, children orphaned by a run timeout, and terminate not reaching an activity in flight."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import concurrency_activities as cc
import pytest
from conftest import run_cli
from run_helpers import assert_clean, cli_popen, finish, write_workflow

from interpreter import Client
from interpreter.core.definition import Retry

CHILDREN = Path(__file__).resolve().parent / "workflows_concurrency" / "children"
CC_ACTIVITIES = str(Path(cc.__file__).resolve())


@pytest.fixture
def cc_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cc.log"
    monkeypatch.setenv(cc.LOG_ENV, str(path))
    return path


# --------------------------------------------------------------------------- retries, durations


def test_backoff_past_the_float_range_waits_max_interval() -> None:
    doubling = Retry(2000, 0.1, 2.0, 0.1, ())
    assert doubling.delay_before(1025) == 0.1  # 2.0 ** 1023 overflows a float
    huge = Retry(5, 0.01, 1e200, 0.02, ())
    assert [huge.delay_before(n) for n in (2, 3, 4)] == [0.01, 0.02, 0.02]


def test_a_huge_backoff_runs_out_of_attempts_instead_of_stalling(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: huge_backoff
        states:
          flaky:
            type: activity
            activity: cc.fail
            input: {tag: x, type: Boom, retryable: true}
            retry: {max_attempts: 4, initial_interval: 10ms, backoff: 1e200, max_interval: 20ms}
            end: true
        """,
    )
    run = client.execute(client.start(wf))
    assert run.status == "failed"
    assert run.error["type"] == "Boom"


@pytest.mark.parametrize(
    ("duration", "reason"),
    [
        ('"inf"', "not a finite duration"),
        ('"nan"', "not a finite duration"),
        ("1e400", "not a finite duration"),
        ("99999999999d", "longer than 100 years"),
        ("3000000d", "longer than 100 years"),
    ],
)
def test_durations_that_cannot_be_scheduled_are_refused(
    tmp_path: Path, store_url: str, duration: str, reason: str
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: forever
        timeout: {duration}
        states:
          nap: {{type: sleep, duration: {duration}, next: done}}
          done: {{type: succeed}}
        """,
    )
    checked = run_cli("validate", str(wf))
    assert_clean(checked, 1)
    assert reason in checked.stdout
    started = run_cli("run", str(wf), "--db", store_url)
    assert_clean(started, 2)
    assert reason in started.stderr


# --------------------------------------------------------------------------- child ids


def _copy_kid(tmp_path: Path) -> None:
    shutil.copy(CHILDREN / "kid.yaml", tmp_path / "kid.yaml")


def test_children_of_one_run_sharing_an_id_fail_instead_of_waiting(
    client: Client, tmp_path: Path, cc_log: Path
) -> None:
    _copy_kid(tmp_path)
    wf = write_workflow(
        tmp_path,
        """
        name: same_ids
        states:
          each:
            type: map
            items: [1, 2, 3]
            concurrency: 3
            states:
              kid:
                type: child
                workflow: kid
                id: "{{ run.id }}-same"
                input: {value: "{{ item }}"}
                end: true
            catch: [{errors: [ChildIdInUse], result: err, next: clash}]
            end: true
          clash:
            type: succeed
            output: "{{ vars.err }}"
        """,
    )
    run = client.execute(client.start(wf, run_id="twins"))
    assert run.status == "completed", run.error
    assert run.output["type"] == "ChildIdInUse"
    assert "'twins-same' is already in use" in run.output["message"]


def test_a_child_id_of_another_run_fails_the_child_state(
    client: Client, tmp_path: Path, cc_log: Path
) -> None:
    _copy_kid(tmp_path)
    client.execute(client.start(tmp_path / "kid.yaml", {"value": 1}, run_id="taken"))
    wf = write_workflow(
        tmp_path,
        """
        name: steals
        states:
          kid: {type: child, workflow: kid, id: taken, input: {value: 2}, end: true}
        """,
    )
    run = client.execute(client.start(wf))
    assert run.status == "failed"
    assert run.error["type"] == "ChildFailed"
    assert "could not be started" in run.error["message"]
    assert run.error["details"]["error"]["type"] == "ChildIdInUse"
    assert client.get("taken").parent_id is None, "the other run is left alone"


@pytest.mark.parametrize(
    ("child_id", "reason"),
    [
        ('""', "must not be empty"),
        ('"{{ none }}"', "must be text, not null"),
        ("\"{{ 'x' * 300 }}\"", "300 characters long"),
        ("\"{{ 'a' ~ '\\n' ~ 'b' }}\"", "control character"),
    ],
    ids=["empty", "null", "long", "newline"],
)
def test_templated_child_ids_follow_the_run_id_rules(
    client: Client, tmp_path: Path, child_id: str, reason: str
) -> None:
    _copy_kid(tmp_path)
    wf = write_workflow(
        tmp_path,
        f"""
        name: bad_child_id
        states:
          kid: {{type: child, workflow: kid, id: {child_id}, input: {{value: 1}}, end: true}}
        """,
    )
    run = client.execute(client.start(wf))
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    assert reason in run.error["message"]


# --------------------------------------------------------------------------- ending runs


def test_a_run_timeout_cancels_its_running_children(
    client: Client, tmp_path: Path, cc_log: Path
) -> None:
    _copy_kid(tmp_path)
    wf = write_workflow(
        tmp_path,
        """
        name: slow_parent
        timeout: 1s
        states:
          kid: {type: child, workflow: kid, input: {value: 1, hold: true}, end: true}
        """,
    )
    run = client.execute(client.start(wf, run_id="impatient"))
    assert run.status == "timed_out"
    kids = client.store.list_runs(parent_id="impatient")
    assert [k.status for k in kids] == ["cancelled"], "the child is not left running"


def test_terminate_cancels_the_activity_in_flight(store_url: str, tmp_path: Path) -> None:
    log = tmp_path / "cc.log"
    wf = write_workflow(
        tmp_path,
        """
        name: long_step
        states:
          work: {type: activity, activity: cc.echo, input: {tag: long, delay: 60}, end: true}
        """,
    )
    env = {cc.LOG_ENV: str(log)}
    started = run_cli("start", str(wf), "--id", "doomed", "--db", store_url, env=env)
    assert_clean(started, 0)
    worker = cli_popen("worker", "--activities", CC_ACTIVITIES, "--db", store_url, env=env)
    try:
        cc.wait_until(lambda: cc.read_log(log) != [], timeout=20, what="the activity starts")
        assert_clean(run_cli("terminate", "doomed", "--db", store_url), 0)
        # The worker learns it at its next lease renewal (every 5 s) and cancels the attempt.
        cc.wait_until(
            lambda: any(e["event"] == "end" for e in cc.read_log(log)),
            timeout=20,
            what="the activity sees ctx.cancelled",
        )
    finally:
        worker.terminate()
        finish(worker, timeout=30)
    ends = [e for e in cc.read_log(log) if e["event"] == "end"]
    assert [e["outcome"] for e in ends] == ["cancelled"]
    assert time.time() - ends[0]["t"] < 60


def test_a_cancel_while_a_failure_is_compensated_keeps_the_failure(
    client: Client, store_url: str, tmp_path: Path, cc_log: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: fail_then_cancel
        states:
          book:
            type: activity
            activity: cc.noop
            input: booked
            compensate: {activity: cc.echo, input: {tag: unbook, delay: 1.5}}
            next: pay
          pay: {type: activity, activity: cc.fail, input: {tag: pay, type: Declined}, end: true}
        """,
    )
    run_id = client.start(wf)
    with cc.BackgroundWorker(store_url):
        cc.wait_until(
            lambda: any(e["tag"] == "unbook" for e in cc.read_log(cc_log)),
            what="the compensation starts",
        )
        client.cancel(run_id)
        final = client.result(run_id, timeout=30)
    assert final.status == "failed"
    assert final.error["type"] == "Declined"
    requested = [e for e in client.history(run_id) if e["type"] == "CancelRequested"]
    assert [e["payload"].get("ignored") for e in requested] == ["run is failing"]
    ends = [e for e in cc.read_log(cc_log) if e["tag"] == "unbook" and e["event"] == "end"]
    assert [e["outcome"] for e in ends] == ["ok"], "the compensation was not cut short"
