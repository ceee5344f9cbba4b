"""The deterministic clock, the date helpers, templated durations/timestamps/limits, and waiting
for one of several signals or until a deadline (issue 11 items 1-2, issue 10 item 5).

Each run test runs in-process (`Client(store_url).execute`) on every configured store.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import activities_for_tests  # noqa: F401  (registers test.echo, test.hang, ...)
import pytest
from run_helpers import history, of_type, run_to_end, write_workflow

from dsl.templates import TemplateError, render
from interpreter import Client


def entered_at(events: list[dict[str, Any]], state: str) -> list[str]:
    return [e["payload"]["at"] for e in of_type(events, "StateEntered") if e["state"] == state]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------- the clock


CLOCK = """
    name: clock
    states:
      first:
        type: set
        vars:
          first_now: "{{ now }}"
          first_entered: "{{ state.entered_at }}"
          first_name: "{{ state.name }}"
          started: "{{ run.started_at }}"
        next: nap
      nap: {type: sleep, duration: 300ms, next: second}
      second:
        type: set
        vars:
          second_now: "{{ now }}"
          waited: "{{ now | time_diff(vars.first_now) }}"
          tomorrow: "{{ now | start_of_day | add_duration('1d') }}"
        end: true
"""


def test_now_is_the_recorded_time_the_state_was_entered(client: Client, tmp_path: Path) -> None:
    run = run_to_end(client, write_workflow(tmp_path, CLOCK))
    assert run.status == "completed", run.error
    out = run.output
    events = history(client, run.id)
    assert entered_at(events, "first") == [out["first_now"]]
    assert entered_at(events, "second") == [out["second_now"]]
    assert out["first_entered"] == out["first_now"] and out["first_name"] == "first"
    assert out["started"] == run.state["run"]["started_at"]
    span = parse(out["second_now"]) - parse(out["first_now"])
    assert out["waited"] == span.total_seconds() >= 0.3  # the sleep lies between the two
    day = parse(out["second_now"]).date() + timedelta(days=1)
    assert out["tomorrow"] == f"{day.isoformat()}T00:00:00Z"


def test_queries_read_the_clock_of_the_run_not_the_wall(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: q
        signals: {go: {}}
        queries:
          since: "{{ now }}"
        states:
          hold: {type: wait, signal: go, end: true}
        """,
    )
    run_id = client.start(wf)
    events = history(client, run_id)
    assert client.query(run_id, "since") == entered_at(events, "hold")[0]


# --------------------------------------------------------------------------- date helpers


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ '2026-12-02T10:30:00+01:00' | to_time }}", "2026-12-02T09:30:00Z"),
        ("{{ '2026-12-02' | to_time }}", "2026-12-02T00:00:00Z"),
        ("{{ '2026-12-02T09:30:00Z' | to_time('Asia/Tokyo') }}", "2026-12-02T18:30:00+09:00"),
        ("{{ '2026-12-02T09:30:00Z' | add_duration('1h30m') }}", "2026-12-02T11:00:00Z"),
        ("{{ '2026-12-02T09:30:00Z' | add_duration('-1d') }}", "2026-12-01T09:30:00Z"),
        ("{{ '2026-12-02T09:30:00Z' | add_duration(90) }}", "2026-12-02T09:31:30Z"),
        ("{{ '2026-12-02T09:30:00Z' | subtract_duration('PT30M') }}", "2026-12-02T09:00:00Z"),
        ("{{ '2026-12-02T10:00:00Z' | time_diff('2026-12-02T09:30:00+00:00') }}", 1800.0),
        ("{{ '2026-12-02T10:00:00+01:00' | time_diff('2026-12-02T09:00:00Z') }}", 0.0),
        ("{{ '2026-12-02T09:00:00Z' | time_before('2026-12-02T10:00:00+00:30') }}", True),
        ("{{ '2026-12-02T09:00:00Z' | time_after('2026-12-02T10:00:00+01:00') }}", False),
        ("{{ '2026-12-02T09:05:00Z' | format_time('%d.%m.%Y %H:%M') }}", "02.12.2026 09:05"),
        ("{{ '2026-12-02T23:05:00Z' | format_time('%a %H:%M', 'Europe/Paris') }}", "Thu 00:05"),
        # 23:30 UTC is already the next day in Paris; the month of a day in the zone.
        (
            "{{ '2026-12-02T23:30:00Z' | start_of_day('Europe/Paris') }}",
            "2026-12-03T00:00:00+01:00",
        ),
        (
            "{{ '2026-12-31T23:30:00Z' | start_of_month('Europe/Paris') }}",
            "2027-01-01T00:00:00+01:00",
        ),
        (
            "{{ '2026-07-15T12:00:00Z' | start_of_month('Europe/Paris') }}",
            "2026-07-01T00:00:00+02:00",
        ),
        (
            "{{ '2026-03-29T12:00:00Z' | start_of_day('Europe/Paris') }}",
            "2026-03-29T00:00:00+01:00",
        ),
        ("{{ '2026-12-02T09:30:00Z' | start_of_day }}", "2026-12-02T00:00:00Z"),
    ],
)
def test_date_helpers(template: str, expected: Any) -> None:
    assert render(template, {}) == expected


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ 'tuesday' | to_time }}", "'tuesday' is not an RFC 3339 timestamp"),
        ("{{ '2026-12-02T09:30:00' | to_time }}", "has no time zone"),
        ("{{ 1700000000 | to_time }}", "expected an RFC 3339 timestamp text"),
        ("{{ '2026-12-02T09:30:00Z' | add_duration('soon') }}", "'soon' is not a duration"),
        ("{{ '9998-12-31T00:00:00Z' | add_duration('7d') }}", "outside the years"),
        ("{{ '2026-12-02T09:30:00Z' | start_of_day('Mars/Base') }}", "unknown time zone"),
        ("{{ '2026-12-02T09:30:00Z' | start_of_day('../../etc/passwd') }}", "not a time zone"),
        ("{{ '2026-12-02T09:30:00Z' | format_time('%Y' * 101) }}", "at most 200"),
        ("{{ '2026-12-02T09:30:00Z' | format_time('%s') }}", "%s is not allowed"),
        ("{{ '2026-12-02T09:30:00Z' | format_time('%c') }}", "%c is not allowed"),
        ("{{ '2026-12-02T09:30:00Z' | format_time('100%') }}", "write %% for a percent sign"),
    ],
)
def test_date_helpers_refuse_bad_values_clearly(template: str, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, {})
    assert words in caught.value.message


# --------------------------------------------------------------------------- templated limits


def test_durations_and_limits_from_input(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: limits
        timeout: "{{ input.run_timeout }}"
        signals: {go: {}}
        states:
          nap: {type: sleep, duration: "{{ input.nap }}", next: hold}
          hold:
            type: wait
            signal: go
            timeout: "{{ input.patience }}"
            on_timeout: call
            next: call
          call:
            type: activity
            activity: test.hang
            timeout: {start_to_close: "{{ input.attempt_limit }}"}
            retry: {max_attempts: 2, initial_interval: "{{ input.pause }}", backoff: 1}
            catch: [{errors: [Timeout], next: fan}]
            next: fan
          fan:
            type: map
            items: [1, 2, 3]
            concurrency: "{{ input.parallel }}"
            states:
              one: {type: activity, activity: test.echo, input: "{{ item }}", end: true}
            result: echoed
            end: true
        """,
    )
    inputs = {
        "run_timeout": "1m",
        "nap": 0.1,
        "patience": "200ms",
        "attempt_limit": "PT0.2S",
        "pause": "150ms",
        "parallel": "1",
    }
    run = run_to_end(client, wf, inputs)
    assert run.status == "completed", run.error
    assert run.output == [1, 2, 3]
    events = history(client, run.id)
    timers = {e["payload"]["kind"]: e["payload"]["delay"] for e in of_type(events, "TimerStarted")}
    assert timers == {"run_timeout": 60.0, "sleep": 0.1, "wait_timeout": 0.2}
    failures = of_type(events, "ActivityFailed")
    assert [f["payload"]["error"]["type"] for f in failures] == ["Timeout", "Timeout"]
    assert [e["payload"]["delay"] for e in of_type(events, "RetryScheduled")] == [0.15]
    # concurrency 1: each iteration starts after the one before it completed
    order = [
        (e["type"], e["state"])
        for e in events
        if e["state"] == "one" and e["type"] in ("StateEntered", "ActivityCompleted")
    ]
    assert order == [("StateEntered", "one"), ("ActivityCompleted", "one")] * 3


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("soon", "'soon' is not a duration"),
        (-5, "must be greater than zero"),
        (0, "must be greater than zero"),
        ("inf", "not a finite duration"),
        (4_000_000_000, "longer than 100 years"),
        ([1], "expected a duration"),
        (None, "expected a duration"),
    ],
)
def test_a_bad_templated_duration_is_a_catchable_invalid_duration(
    client: Client, tmp_path: Path, value: Any, words: str
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bad-duration
        states:
          call:
            type: activity
            activity: test.echo
            timeout: {start_to_close: "{{ input.limit }}"}
            catch: [{errors: [InvalidDuration], result: problem, next: caught}]
            end: true
          caught: {type: succeed, output: "{{ vars.problem }}"}
        """,
    )
    run = run_to_end(client, wf, {"limit": value})
    assert run.status == "completed", run.error
    problem = run.output
    assert problem["type"] == "InvalidDuration"
    assert problem["details"] == {"field": "timeout.start_to_close", "value": value}
    assert words in problem["message"] and "'call'" in problem["message"]
    assert of_type(history(client, run.id), "ActivityScheduled") == []


def test_a_bad_run_timeout_from_input_fails_the_run(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bad-run-timeout
        timeout: "{{ input.limit }}"
        states:
          done: {type: succeed}
        """,
    )
    run = run_to_end(client, wf, {"limit": "forever"})
    assert run.status == "failed"
    assert run.error["type"] == "InvalidDuration"
    assert run.error["details"] == {"field": "timeout", "value": "forever"}


@pytest.mark.parametrize("value", [0, "two", 1.5, True, -1])
def test_a_bad_templated_concurrency_is_an_invalid_value(
    client: Client, tmp_path: Path, value: Any
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bad-concurrency
        states:
          fan:
            type: map
            items: [1, 2]
            concurrency: "{{ input.n }}"
            states:
              one: {type: succeed}
            catch: [{errors: [InvalidValue], result: problem, next: caught}]
            end: true
          caught: {type: succeed, output: "{{ vars.problem }}"}
        """,
    )
    run = run_to_end(client, wf, {"n": value})
    assert run.status == "completed", run.error
    assert run.output["type"] == "InvalidValue"
    assert run.output["details"] == {"field": "concurrency", "value": value}


def test_a_zero_templated_sleep_or_wait_ends_at_once(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: zero
        signals: {go: {}}
        states:
          nap: {type: sleep, duration: "{{ input.zero }}", next: hold}
          hold: {type: wait, signal: go, timeout: "{{ input.zero }}", on_timeout: done, next: done}
          done: {type: succeed, output: ok}
        """,
    )
    run = run_to_end(client, wf, {"zero": 0})
    assert run.status == "completed" and run.output == "ok", run.error


# --------------------------------------------------------------------------- until


UNTIL = """
    name: until
    signals: {go: {}}
    states:
      nap: {type: sleep, until: "{{ now | add_duration('200ms') }}", next: hold}
      hold:
        type: wait
        signal: go
        until: "{{ input.deadline | default(now | add_duration('150ms'), true) }}"
        on_timeout: late
        result: got
        next: done
      late: {type: succeed, output: late}
      done: {type: succeed, output: "{{ vars.got }}"}
"""


def test_sleep_and_wait_until_a_templated_time(client: Client, tmp_path: Path) -> None:
    run = run_to_end(client, write_workflow(tmp_path, UNTIL), {"deadline": None})
    assert run.status == "completed", run.error
    assert run.output == "late"
    events = history(client, run.id)
    for state, offset in (("nap", 0.2), ("hold", 0.15)):
        [started] = [e for e in of_type(events, "TimerStarted") if e["state"] == state]
        [at] = entered_at(events, state)
        due = parse(started["payload"]["due"]).timestamp()
        assert math.isclose(due, parse(at).timestamp() + offset, abs_tol=1e-6)


def test_wait_until_the_past_times_out_at_once_and_a_bad_until_is_invalid(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(tmp_path, UNTIL)
    past = run_to_end(client, wf, {"deadline": "2001-01-01T00:00:00Z"})
    assert past.status == "completed" and past.output == "late"
    bad = run_to_end(client, wf, {"deadline": "2300-01-01T00:00:00Z"})
    assert bad.status == "failed"
    assert bad.error["type"] == "InvalidValue"
    assert bad.error["details"] == {"field": "until", "value": "2300-01-01T00:00:00Z"}
    assert "more than 100 years away" in bad.error["message"]


# --------------------------------------------------------------------------- several signals


SEVERAL = """
    name: several
    signals: {approve: {}, reject: {}, note: {}}
    states:
      decide:
        type: wait
        signals: [approve, reject]
        result: decision
        next: noted
      noted:
        type: wait
        signal: note
        result: note
        next: done
      done:
        type: succeed
        output: {decision: "{{ vars.decision }}", note: "{{ vars.note }}"}
"""


def test_wait_for_one_of_several_signals_says_which_came(client: Client, tmp_path: Path) -> None:
    run_id = client.start(write_workflow(tmp_path, SEVERAL))
    client.signal(run_id, "note", {"text": "sent first, kept for the second wait"})
    client.signal(run_id, "reject", {"by": "ana"})
    client.signal(run_id, "approve", {"by": "bo"})  # nobody waits for it any more
    run = client.execute(run_id)
    assert run.status == "completed", run.error
    assert run.output == {
        "decision": {"signal": "reject", "payload": {"by": "ana"}},
        "note": {"text": "sent first, kept for the second wait"},
    }
    received = [
        (e["state"], e["payload"]["signal"])
        for e in of_type(history(client, run_id), "SignalReceived")
    ]
    assert received == [("decide", "reject"), ("noted", "note")]
    items, _ = client.store.read_inbox(run_id)
    assert [(i.name, i.payload) for i in items if i.kind == "signal"] == [("approve", {"by": "bo"})]


def test_several_signals_with_a_timeout_names_them_all(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: several-timeout
        signals: {approve: {}, reject: {}}
        states:
          route:
            type: choice
            choices: [{when: "{{ input.until | default(false) }}", next: one}]
            default: decide
          decide: {type: wait, signals: [approve, reject], timeout: 100ms, end: true}
          one: {type: wait, signal: approve, timeout: "{{ input.patience }}", end: true}
        """,
    )
    run = run_to_end(client, wf, {"patience": 0.25})
    assert run.status == "failed"
    assert run.error["type"] == "Timeout"
    assert run.error["message"] == "none of the signals approve, reject came within 100ms"
    later = run_to_end(client, wf, {"patience": 0.25, "until": True})
    assert later.error["message"] == "no signal 'approve' within 250ms"


def test_each_branch_and_iteration_has_its_own_clock(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: clocks
        states:
          fan:
            type: map
            items: [1, 2, 3]
            concurrency: 1
            states:
              nap: {type: sleep, duration: 50ms, next: stamp}
              stamp: {type: succeed, output: "{{ state.name }}@{{ now }}"}
            result: stamps
            end: true
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "completed", run.error
    events = history(client, run.id)
    assert run.output == [f"stamp@{at}" for at in entered_at(events, "stamp")]
    assert len(set(run.output)) == 3


def test_a_compensation_with_a_bad_templated_timeout_fails_its_step(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bad-comp
        states:
          charge:
            type: activity
            activity: test.echo
            compensate:
              activity: test.echo
              timeout: {start_to_close: "{{ input.undo_limit }}"}
            catch: [{errors: [InvalidDuration], result: problem, next: caught}]
            end: true
          caught: {type: succeed, output: "{{ vars.problem.details }}"}
        """,
    )
    run = run_to_end(client, wf, {"undo_limit": "later"})
    assert run.status == "completed", run.error
    assert run.output == {"field": "timeout.start_to_close", "value": "later"}
    good = run_to_end(client, wf, {"undo_limit": "2m"})
    assert good.status == "completed" and good.state["comp_stack"][0]["timeouts"] == {
        "start_to_close": 120.0,
        "schedule_to_close": None,
        "heartbeat": None,
    }
