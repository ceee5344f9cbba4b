"""Retry policies (durable waits included), activity timeouts, heartbeats and the run timeout."""

from __future__ import annotations

import itertools
import json
import signal
import time
from pathlib import Path

import activities_for_tests as acts
import pytest
from conftest import run_cli
from run_helpers import (
    TEST_ACTIVITIES,
    assert_clean,
    cli_popen,
    events_or_empty,
    history,
    of_type,
    one_json,
    run_to_end,
    types_of,
    wait_for,
    write_workflow,
)

from dsl.model import RetryPolicy, Workflow
from interpreter import Client
from interpreter.core.definition import Definition


def flaky_workflow(tmp_path: Path, retry: str, *, defaults: str = "", name: str = "flaky") -> Path:
    return write_workflow(
        tmp_path,
        f"""
        name: {name}
        {defaults}
        states:
          step:
            type: activity
            activity: test.fail_n_times
            input:
              path: "{{{{ input.path }}}}"
              n: "{{{{ input.n }}}}"
              type: "{{{{ input.type | default('Flaky') }}}}"
              non_retryable: "{{{{ input.non_retryable | default(false) }}}}"
            {retry}
            result: r
            end: true
        """,
    )


def calls(path: Path) -> list[dict[str, object]]:
    return acts.read_json_lines(path)


# --------------------------------------------------------------------------- retry policy


def test_retry_backoff_and_max_interval(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path,
        "retry: {max_attempts: 5, initial_interval: 100ms, backoff: 3, max_interval: 400ms}",
    )
    run = run_to_end(client, wf, {"path": str(log), "n": 3})
    assert run.status == "completed", run.error
    assert run.output == {"calls": 4, "attempt": 4}
    events = history(client, run.id)
    retries = of_type(events, "RetryScheduled")
    # 100ms, then x3 = 300ms, then x3 = 900ms capped at 400ms.
    assert [(r["attempt"], r["payload"]["delay"]) for r in retries] == [
        (2, pytest.approx(0.1)),
        (3, pytest.approx(0.3)),
        (4, pytest.approx(0.4)),
    ]
    assert [e["attempt"] for e in of_type(events, "ActivityStarted")] == [1, 2, 3, 4]
    failed = of_type(events, "ActivityFailed")
    assert [f["payload"]["will_retry"] for f in failed] == [True, True, True]
    assert [f["payload"]["error"]["type"] for f in failed] == ["Flaky"] * 3
    times = [c["t"] for c in calls(log)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, wanted in zip(gaps, [0.1, 0.3, 0.4], strict=True):
        assert gap >= wanted - 0.02, (gaps, "a retry ran before its interval")


def test_retries_exhausted_fail_with_the_last_error(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(tmp_path, "retry: {max_attempts: 3, initial_interval: 20ms}")
    run = run_to_end(client, wf, {"path": str(log), "n": 10, "type": "Unavailable"})
    assert run.status == "failed"
    assert run.error["type"] == "Unavailable"
    assert run.error["details"] == {"call": 3}
    assert len(calls(log)) == 3
    last = of_type(history(client, run.id), "ActivityFailed")[-1]
    assert last["attempt"] == 3
    assert "will_retry" not in last["payload"]


def test_default_policy_is_three_attempts(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    # Only the interval is shortened (to keep the test fast); max_attempts is the default.
    wf = flaky_workflow(tmp_path, "retry: {initial_interval: 10ms}")
    run = run_to_end(client, wf, {"path": str(log), "n": 10})
    assert run.status == "failed"
    assert len(calls(log)) == 3
    defn = Definition.from_data({"dsl": "1.0", "name": "d", "states": {"s": {"type": "succeed"}}})
    default = defn.retry_for(None)
    assert (
        default.max_attempts,
        default.initial_interval,
        default.backoff,
        default.max_interval,
    ) == (3, 1.0, 2.0, 30.0)
    assert default.non_retryable == ()


def test_workflow_defaults_apply_and_the_state_overrides_them(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path,
        "retry: {max_attempts: 2}",
        defaults="defaults: {retry: {max_attempts: 5, initial_interval: 10ms, backoff: 1}}",
    )
    run = run_to_end(client, wf, {"path": str(log), "n": 10})
    assert run.status == "failed"
    assert len(calls(log)) == 2
    assert [r["payload"]["delay"] for r in of_type(history(client, run.id), "RetryScheduled")] == [
        0.01
    ]


def test_max_attempts_one_means_no_retry(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(tmp_path, "retry: {max_attempts: 1, initial_interval: 10ms}")
    run = run_to_end(client, wf, {"path": str(log), "n": 1})
    assert run.status == "failed"
    assert len(calls(log)) == 1
    assert not of_type(history(client, run.id), "RetryScheduled")


def test_non_retryable_types_in_the_policy(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path,
        "retry: {max_attempts: 5, initial_interval: 10ms, non_retryable: [CardDeclined, Fraud]}",
    )
    run = run_to_end(client, wf, {"path": str(log), "n": 3, "type": "Fraud"})
    assert run.status == "failed"
    assert run.error["type"] == "Fraud"
    assert len(calls(log)) == 1
    # A type that is not in the list is retried as usual.
    other_log = tmp_path / "other.log"
    run = run_to_end(client, wf, {"path": str(other_log), "n": 2, "type": "Glitch"})
    assert run.status == "completed"
    assert len(calls(other_log)) == 3


def test_non_retryable_from_workflow_defaults(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path,
        "retry: {max_attempts: 4}",
        defaults="defaults: {retry: {initial_interval: 10ms, non_retryable: [Fraud]}}",
    )
    run = run_to_end(client, wf, {"path": str(log), "n": 3, "type": "Fraud"})
    assert run.status == "failed"
    assert len(calls(log)) == 1


def test_application_error_non_retryable(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(tmp_path, "retry: {max_attempts: 5, initial_interval: 10ms}")
    run = run_to_end(
        client, wf, {"path": str(log), "n": 3, "type": "Declined", "non_retryable": True}
    )
    assert run.status == "failed"
    assert run.error == {
        "type": "Declined",
        "message": "call 1 fails on purpose",
        "details": {"call": 1},
    }
    assert len(calls(log)) == 1
    assert not of_type(history(client, run.id), "RetryScheduled")


def test_retry_policy_values_are_parsed_from_durations() -> None:
    workflow = Workflow.model_validate(
        {"dsl": "1.0", "name": "d", "states": {"s": {"type": "succeed"}}}
    )
    defn = Definition.from_data(workflow.model_dump(by_alias=True, exclude_none=True))
    retry = defn.retry_for(RetryPolicy(initial_interval="1m30s", max_interval="PT2M", backoff=1.5))
    assert (retry.initial_interval, retry.max_interval, retry.backoff) == (90.0, 120.0, 1.5)
    assert [retry.delay_before(n) for n in (2, 3, 4, 5)] == [90.0, 120.0, 120.0, 120.0]


# --------------------------------------------------------------------------- durable retry wait


def test_retry_wait_survives_a_process_kill(store_url: str, tmp_path: Path) -> None:
    """Kill the process during a 2 s retry wait; `resume` runs the next attempt at its due time
    (not at once, and not never)."""
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path, "retry: {max_attempts: 3, initial_interval: 2s}", name="durable_retry"
    )
    proc = cli_popen(
        "run",
        str(wf),
        "--id",
        "r1",
        "--db",
        store_url,
        "--activities",
        str(TEST_ACTIVITIES),
        "--input",
        json.dumps({"path": str(log), "n": 1}),
        "--json",
    )
    try:
        with Client(store_url) as client:

            def retry_scheduled() -> list[dict[str, object]]:
                return of_type(events_or_empty(client, "r1"), "RetryScheduled")

            scheduled = wait_for(retry_scheduled, timeout=20)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed_at = time.time()
            first = calls(log)
            assert len(first) == 1, "the kill happened during the retry wait"
            assert client.get("r1").status == "running"
            resumed = run_cli(
                "resume", "r1", "--db", store_url, "--activities", str(TEST_ACTIVITIES), "--json"
            )
            assert_clean(resumed, 0)
            assert one_json(resumed)["status"] == "completed"
            attempts = calls(log)
            assert [a["attempt"] for a in attempts] == [1, 2]
            due = first[0]["t"] + 2.0
            assert killed_at < due - 1.0, "resume must start well before the retry is due"
            assert attempts[1]["t"] >= due - 0.1, "the retry ran before its due time"
            assert attempts[1]["t"] < max(due, killed_at) + 5
            assert attempts[1]["pid"] != attempts[0]["pid"]
            assert attempts[1]["key"] == attempts[0]["key"]
            events = history(client, "r1")
            assert len(of_type(events, "RetryScheduled")) == 1
            assert scheduled[0]["payload"]["delay"] == 2.0
            assert types_of(events)[-1] == "RunCompleted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- timeouts


def timeout_workflow(
    tmp_path: Path,
    activity: str,
    timeout: str,
    retry: str = "{max_attempts: 1}",
    input_: str = "{seconds: 5}",
) -> Path:
    return write_workflow(
        tmp_path,
        f"""
        name: timeouts
        states:
          slow:
            type: activity
            activity: {activity}
            input: {input_}
            timeout: {timeout}
            retry: {retry}
            end: true
        """,
    )


@pytest.mark.parametrize("activity", ["test.hang_async", "test.hang", "test.sleep"])
def test_start_to_close_ends_an_attempt_that_never_returns(
    client: Client, tmp_path: Path, activity: str
) -> None:
    wf = timeout_workflow(tmp_path, activity, "{start_to_close: 300ms}", input_="{seconds: 3}")
    started = time.monotonic()
    run = run_to_end(client, wf)
    elapsed = time.monotonic() - started
    assert run.status == "failed"
    assert run.error["type"] == "Timeout"
    assert "start_to_close" in run.error["message"]
    assert 0.29 <= elapsed < 2.5


def test_start_to_close_timeout_is_retried(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = timeout_workflow(
        tmp_path,
        "test.hang",
        "{start_to_close: 200ms}",
        "{max_attempts: 2, initial_interval: 10ms}",
        input_='{path: "{{ input.path }}"}',
    )
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "failed"
    assert run.error["type"] == "Timeout"
    assert [c["attempt"] for c in calls(log) if c.get("event") == "start"] == [1, 2]
    # The abandoned attempt is told so through ctx.cancelled.
    wait_for(lambda: len([c for c in calls(log) if c.get("event") == "abandoned"]) == 2, timeout=3)


def test_schedule_to_close_bounds_all_attempts(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = flaky_workflow(
        tmp_path,
        "retry: {max_attempts: 20, initial_interval: 150ms, backoff: 1}\n            timeout: {schedule_to_close: 700ms}",
    )
    started = time.monotonic()
    run = run_to_end(client, wf, {"path": str(log), "n": 100})
    elapsed = time.monotonic() - started
    assert run.status == "failed"
    assert run.error["type"] == "Timeout"
    assert "schedule_to_close" in run.error["message"]
    details = run.error["details"]
    if "last_error" in details:  # the deadline left no time for another attempt
        assert details["last_error"]["type"] == "Flaky"
    else:
        # On a loaded machine an attempt can start just before the deadline and still be
        # running when it comes: the deadline cuts that attempt (seen once on PostgreSQL).
        assert details == {"timeout": "schedule_to_close"}, details
    assert 2 <= len(calls(log)) <= 5
    assert elapsed < 2.5


def test_schedule_to_close_cuts_a_hanging_attempt(client: Client, tmp_path: Path) -> None:
    wf = timeout_workflow(
        tmp_path,
        "test.hang_async",
        "{start_to_close: 10s, schedule_to_close: 400ms}",
        "{max_attempts: 5, initial_interval: 10ms}",
    )
    started = time.monotonic()
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == "Timeout"
    assert "schedule_to_close" in run.error["message"]
    assert time.monotonic() - started < 2.5
    assert len(of_type(history(client, run.id), "ActivityStarted")) == 1


def test_heartbeat_timeout_and_details_reach_the_next_attempt(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    wf = write_workflow(
        tmp_path,
        """
        name: beats
        states:
          work:
            type: activity
            activity: test.heartbeat_then_hang
            input: {path: "{{ input.path }}", beats: 3}
            timeout: {start_to_close: 10s, heartbeat: 300ms}
            retry: {max_attempts: 2, initial_interval: 10ms}
            end: true
        """,
    )
    started = time.monotonic()
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "completed", run.error
    assert time.monotonic() - started < 4
    # The last details attempt 1 reported (not the first) are handed to attempt 2.
    assert run.output == {"seen": {"step": 3, "attempt": 1}, "attempt": 2}
    failed = of_type(history(client, run.id), "ActivityFailed")
    assert [f["payload"]["error"]["type"] for f in failed] == ["HeartbeatTimeout"]
    # The error names what the stuck attempt last reported.
    assert failed[0]["payload"]["error"]["details"] == {
        "heartbeat_details": {"step": 3, "attempt": 1}
    }
    seen = [c["seen"] for c in calls(log)]
    assert seen == [None, {"step": 3, "attempt": 1}]


def test_steady_heartbeats_keep_a_long_attempt_alive(client: Client, tmp_path: Path) -> None:
    wf = timeout_workflow(
        tmp_path,
        "test.heartbeat_steadily",
        "{start_to_close: 10s, heartbeat: 250ms}",
        input_="{seconds: 0.8}",
    )
    run = run_to_end(client, wf)
    assert run.status == "completed", run.error
    assert run.output["beats"] >= 5


def test_whole_run_timeout_ends_timed_out(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bounded
        timeout: 500ms
        states:
          first:
            type: activity
            activity: test.echo
            input: 1
            compensate: {activity: test.echo, input: undo}
            next: nap
          nap:
            type: sleep
            duration: 30s
            next: done
          done:
            type: succeed
        """,
    )
    started = time.monotonic()
    run = run_to_end(client, wf)
    assert run.status == "timed_out"
    assert run.error["type"] == "Timeout"
    assert time.monotonic() - started < 3
    events = history(client, run.id)
    assert types_of(events)[-1] == "RunTimedOut"
    assert not of_type(events, "CompensationStarted"), "a timed-out run ends at once"


@pytest.mark.parametrize("kind", ["ExpressionError", "Cancelled"])
def test_types_that_can_never_succeed_on_retry_are_not_retried(
    client: Client, tmp_path: Path, kind: str
) -> None:
    log = tmp_path / "calls.log"
    wf = write_workflow(
        tmp_path,
        """
        name: never_again
        states:
          step:
            type: activity
            activity: test.raise
            input: {kind: "{{ input.kind }}", path: "{{ input.path }}"}
            retry: {max_attempts: 5, initial_interval: 10ms}
            catch:
              - errors: ["*"]
                result: err
                next: caught
            end: true
          caught:
            type: succeed
            output: "{{ vars.err.type }}"
        """,
    )
    run = run_to_end(client, wf, {"kind": kind, "path": str(log)})
    assert run.status == "completed"
    assert run.output == kind
    assert len(calls(log)) == 1
