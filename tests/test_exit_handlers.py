"""Exit handlers (on_exit): which handler runs for which outcome, in which order, what it sees,
and that nothing a handler does (fail, time out, be cancelled) changes the run's outcome.
Terminate runs no handler. Every test runs on every configured store."""

from __future__ import annotations

import threading
from pathlib import Path

import activities_for_tests as acts
from run_helpers import history, of_type, run_to_end, types_of, wait_for, write_workflow

from interpreter import Client
from interpreter.store import RunRecord

HANDLERS = """
on_exit:
  success:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "success {{ run.status }}"}, end: true}
  failure:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "failure {{ run.status }} {{ run.error.type }}"}, end: true}
  cancel:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "cancel {{ run.status }} {{ run.error.type }}"}, end: true}
  timeout:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "timeout {{ run.status }} {{ run.error.type }}"}, end: true}
  always:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "always {{ run.status }}"}, end: true}
"""


def lines(path: Path) -> list[str]:
    return [entry["line"] for entry in acts.read_json_lines(path)] if path.exists() else []


def _workflow(tmp_path: Path, body: str, handlers: str = HANDLERS, head: str = "") -> Path:
    return write_workflow(tmp_path, f"name: exits\n{head}\n{body}\n{handlers}")


def _in_thread(store_url: str, run_id: str) -> tuple[threading.Thread, dict[str, RunRecord]]:
    """Drive the run in another thread (its own Client), so the test can signal and cancel."""
    out: dict[str, RunRecord] = {}

    def drive() -> None:
        with Client(store_url) as other:
            out["record"] = other.execute(run_id)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread, out


def _types(client: Client, run_id: str) -> list[str]:
    return types_of(history(client, run_id))


STEPS = """
states:
  work:
    type: activity
    activity: test.append
    input: {path: "{{ input.path }}", line: work, fail: "{{ input.fail | default(false) }}"}
    retry: {max_attempts: 1}
    compensate: {activity: test.append, input: {path: "{{ input.path }}", line: undo}}
    next: more
  more:
    type: activity
    activity: test.append
    input: {path: "{{ input.path }}", line: more, fail: "{{ input.fail_more | default(false) }}"}
    retry: {max_attempts: 1}
    result: last
    end: true
"""


def test_success_runs_success_then_always_and_keeps_the_output(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run = run_to_end(client, _workflow(tmp_path, STEPS), {"path": str(log)})
    assert run.status == "completed"
    assert run.output == {"line": "more", "id": "id-more"}  # a handler's result is not it
    assert lines(log) == ["work", "more", "success completed", "always completed"]
    events = history(client, run.id)
    assert [e["payload"]["handler"] for e in of_type(events, "ExitHandlerStarted")] == [
        "success",
        "always",
    ]
    assert types_of(events)[-1] == "RunCompleted"


def test_failure_runs_after_the_compensations_and_sees_the_error(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run = run_to_end(client, _workflow(tmp_path, STEPS), {"path": str(log), "fail_more": True})
    assert run.status == "failed"
    assert run.error["type"] == "AppendFailed"
    assert lines(log) == ["work", "more", "undo", "failure failed AppendFailed", "always failed"]


def test_a_run_without_the_matching_handler_runs_only_always(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    handlers = """
    on_exit:
      always:
        states:
          h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "always {{ run.status }}"}, end: true}
    """
    import textwrap

    wf = _workflow(tmp_path, STEPS, textwrap.dedent(handlers))
    run = run_to_end(client, wf, {"path": str(log), "fail": True})
    assert run.status == "failed"
    assert lines(log) == ["work", "always failed"]


def test_a_failing_handler_is_recorded_the_next_one_runs_the_outcome_stays(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    handlers = """
on_exit:
  success:
    states:
      broken: {type: fail, error: HandlerBroke, message: "cannot notify {{ run.output.line }}"}
  always:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "always {{ run.status }}"}, end: true}
"""
    run = run_to_end(client, _workflow(tmp_path, STEPS, handlers), {"path": str(log)})
    assert run.status == "completed"
    assert run.output == {"line": "more", "id": "id-more"}
    assert run.error is None
    assert lines(log) == ["work", "more", "always completed"]
    events = history(client, run.id)
    [failed] = of_type(events, "ExitHandlerFailed")
    assert failed["payload"] == {
        "handler": "success",
        "error": {"type": "HandlerBroke", "message": "cannot notify more", "details": None},
    }
    assert events[-1]["payload"]["exit_errors"] == [
        {"handler": "success", "error": failed["payload"]["error"]}
    ]
    # No compensation runs for a failed handler: the saga is over.
    assert not of_type(events, "CompensationStarted")
    assert client.status(run.id)["exit_handlers"]["errors"][0]["handler"] == "success"


def test_run_timeout_runs_the_timeout_handler_within_its_own_bound(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    body = """
states:
  nap: {type: sleep, duration: 30s, end: true}
"""
    handlers = """
on_exit:
  timeout:
    timeout: 20s
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "timeout {{ run.status }} {{ run.error.type }}"}, end: true}
  always:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "always {{ run.status }}"}, end: true}
"""
    wf = _workflow(tmp_path, body, handlers, head="timeout: 300ms")
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "timed_out"
    assert run.error["type"] == "Timeout"
    assert lines(log) == ["timeout timed_out Timeout", "always timed_out"]
    events = history(client, run.id)
    timers = [e["payload"]["kind"] for e in of_type(events, "TimerStarted")]
    assert timers == ["run_timeout", "sleep", "exit_timeout"]
    assert types_of(events)[-1] == "RunTimedOut"


def test_a_handler_past_its_own_timeout_fails_and_always_still_runs(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    handlers = """
on_exit:
  success:
    timeout: 200ms
    states:
      slow: {type: sleep, duration: 1h, end: true}
  always:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "always {{ run.status }}"}, end: true}
"""
    run = run_to_end(client, _workflow(tmp_path, STEPS, handlers), {"path": str(log)})
    assert run.status == "completed"
    assert lines(log) == ["work", "more", "always completed"]
    events = history(client, run.id)
    [failed] = of_type(events, "ExitHandlerFailed")
    assert failed["payload"]["error"]["type"] == "Timeout"
    assert "success" in failed["payload"]["error"]["message"]
    # The handler's sleep timer went with it.
    assert [e["payload"]["kind"] for e in of_type(events, "TimerFired")] == ["exit_timeout"]


WAITING = """
signals:
  go: {}
  ack: {}
states:
  work:
    type: activity
    activity: test.append
    input: {path: "{{ input.path }}", line: work}
    compensate: {activity: test.append, input: {path: "{{ input.path }}", line: undo}}
    next: hold
  hold: {type: wait, signal: go, end: true}
"""


def test_cancel_compensates_then_runs_cancel_and_always(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run_id = client.start(_workflow(tmp_path, WAITING), {"path": str(log)})
    thread, out = _in_thread(store_url, run_id)
    wait_for(lambda: "StateEntered" in _types(client, run_id) and lines(log) == ["work"], 20)
    wait_for(lambda: client.status(run_id)["current"][0]["state"] == "hold", 20)
    client.cancel(run_id)
    thread.join(30)
    assert out["record"].status == "cancelled"
    assert lines(log) == ["work", "undo", "cancel cancelled Cancelled", "always cancelled"]


def test_a_cancel_while_handlers_run_is_ignored(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    handlers = """
on_exit:
  success:
    states:
      hold: {type: wait, signal: ack, result: ack, next: note}
      note: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "acked {{ vars.ack }}"}, end: true}
"""
    run_id = client.start(_workflow(tmp_path, WAITING, handlers), {"path": str(log)})
    thread, out = _in_thread(store_url, run_id)
    wait_for(lambda: client.status(run_id)["current"][0]["state"] == "hold", 20)
    client.signal(run_id, "go")
    wait_for(lambda: (client.status(run_id)["exit_handlers"] or {}).get("running") == "success")
    client.cancel(run_id)
    wait_for(lambda: "CancelRequested" in _types(client, run_id), 20)
    client.signal(run_id, "ack", 7)
    thread.join(30)
    record = out["record"]
    assert record.status == "completed"
    assert lines(log) == ["work", "acked 7"]
    [cancel] = of_type(history(client, run_id), "CancelRequested")
    assert cancel["payload"]["ignored"] == "run is exiting"


def test_terminate_runs_no_handler(client: Client, store_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    run_id = client.start(_workflow(tmp_path, WAITING), {"path": str(log)})
    thread, out = _in_thread(store_url, run_id)
    wait_for(lambda: client.status(run_id)["current"][0]["state"] == "hold", 20)
    client.terminate(run_id, "ops said so")
    thread.join(30)
    assert out["record"].status == "terminated"
    assert lines(log) == ["work"]
    assert not of_type(history(client, run_id), "ExitHandlerStarted")


def test_terminate_during_a_handler_stops_it(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    handlers = """
on_exit:
  success:
    states:
      hold: {type: wait, signal: ack, end: true}
  always:
    states:
      h: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: always}, end: true}
"""
    run_id = client.start(_workflow(tmp_path, WAITING, handlers), {"path": str(log)})
    thread, out = _in_thread(store_url, run_id)
    wait_for(lambda: client.status(run_id)["current"][0]["state"] == "hold", 20)
    client.signal(run_id, "go")
    wait_for(lambda: (client.status(run_id)["exit_handlers"] or {}).get("running") == "success")
    client.terminate(run_id)
    thread.join(30)
    assert out["record"].status == "terminated"
    assert lines(log) == ["work"]


def test_handlers_see_the_runs_last_vars_and_can_fan_out(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "log"
    body = """
vars: {who: ada}
states:
  set: {type: set, vars: {n: 2}, end: true}
"""
    handlers = """
on_exit:
  always:
    states:
      both:
        type: parallel
        branches:
          - states:
              a: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "a {{ vars.who }} {{ vars.n }}"}, end: true}
          - states:
              b: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "b {{ run.status }}"}, end: true}
        end: true
"""
    run = run_to_end(client, _workflow(tmp_path, body, handlers), {"path": str(log)})
    assert run.status == "completed"
    assert run.output == {"who": "ada", "n": 2}
    assert sorted(lines(log)) == ["a ada 2", "b completed"]


def test_a_failure_before_the_first_state_still_runs_the_failure_handler(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    body = """
vars: {bad: "{{ input.missing.deeper }}"}
states:
  s: {type: succeed}
"""
    run = run_to_end(client, _workflow(tmp_path, body), {"path": str(log)})
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    assert lines(log) == ["failure failed ExpressionError", "always failed"]


def test_a_handler_can_start_a_child_named_like_a_top_level_one(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          k: {type: activity, activity: test.append, input: {path: "{{ input.path }}", line: "kid {{ input.why }}"}, end: true}
        """,
        name="kid.yaml",
    )
    body = """
states:
  notify: {type: child, workflow: kid, input: {path: "{{ input.path }}", why: main}, end: true}
"""
    handlers = """
on_exit:
  always:
    states:
      notify: {type: child, workflow: kid, input: {path: "{{ input.path }}", why: "{{ run.status }}"}, end: true}
"""
    wf = _workflow(tmp_path, body, handlers)
    run_id = client.start(wf, {"path": str(log)})
    run = client.execute(run_id, workflow_dirs=(tmp_path,))
    assert run.status == "completed"
    assert lines(log) == ["kid main", "kid completed"]
    children = sorted(r.id for r in client.list_runs() if r.parent_id == run_id)
    assert children == [f"{run_id}.notify", f"{run_id}.on_exit-always.notify"]


def test_a_run_at_its_history_limit_runs_no_handler(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "log"
    body = """
history_limit: 20
vars: {n: 0}
states:
  step: {type: activity, activity: test.echo, input: "{{ vars.n }}", next: count}
  count: {type: set, vars: {n: "{{ vars.n + 1 }}"}, next: again}
  again:
    type: choice
    choices: [{when: "{{ vars.n < 100 }}", next: step}]
    default: done
  done: {type: succeed}
"""
    run = run_to_end(client, _workflow(tmp_path, body), {"path": str(log)})
    assert run.status == "failed"
    assert run.error["type"] == "HistoryLimitExceeded"
    assert lines(log) == []
    assert not of_type(history(client, run.id), "ExitHandlerStarted")
