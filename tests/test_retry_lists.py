"""Retry policies by error: an ordered list, each policy with its own errors, attempt counter
and backoff, the `when` predicate over the error, and lists in defaults and compensations.
The engine tests run on every configured store; Retry.decide is also checked on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import activities_for_tests as acts
import pytest
from run_helpers import history, of_type, run_to_end, write_workflow

from interpreter import Client
from interpreter.core.definition import Definition, Retry


def _workflow(tmp_path: Path, retry: str, defaults: str = "") -> Path:
    return write_workflow(
        tmp_path,
        f"""
        name: retry-lists
        {defaults}
        states:
          step:
            type: activity
            activity: test.fail_sequence
            input: {{path: "{{{{ input.path }}}}", failures: "{{{{ input.failures }}}}"}}
            {retry}
            end: true
        """,
    )


def _failures(*spec: str | tuple[str, int] | dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in spec:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, tuple):
            out.append({"type": item[0], "status": item[1]})
        else:
            out.append({"type": item})
    return out


def _retries(client: Client, run_id: str) -> list[tuple[int, float]]:
    return [
        (e["payload"]["policy"], e["payload"]["delay"])
        for e in of_type(history(client, run_id), "RetryScheduled")
    ]


LIST = """retry:
              - errors: [Busy]
                max_attempts: 4
                initial_interval: 10ms
                backoff: 1
              - errors: [Down, Slow]
                max_attempts: 3
                initial_interval: 20ms
                backoff: 2
              - errors: ["*"]
                max_attempts: 1"""


def test_each_policy_counts_its_own_attempts_with_its_own_backoff(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    # Busy, Down, Busy, Down, Busy: 3 of Busy (< 4) and 2 of Down (< 3): all retried.
    failures = _failures("Busy", "Down", "Busy", "Down", "Busy")
    run = run_to_end(client, _workflow(tmp_path, LIST), {"path": str(log), "failures": failures})
    assert run.status == "completed", run.error
    assert run.output == {"calls": 6}
    assert _retries(client, run.id) == [(0, 0.01), (1, 0.02), (0, 0.01), (1, 0.04), (0, 0.01)]
    # The attempt number counts every attempt of the step.
    assert [c["attempt"] for c in acts.read_json_lines(log)] == [1, 2, 3, 4, 5, 6]


def test_a_policy_that_runs_out_fails_the_step_even_when_others_have_attempts_left(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    failures = _failures("Down", "Busy", "Slow", "Down")  # third failure of policy 1 (max 3)
    run = run_to_end(client, _workflow(tmp_path, LIST), {"path": str(log), "failures": failures})
    assert run.status == "failed"
    assert run.error["type"] == "Down"
    assert len(acts.read_json_lines(log)) == 4


def test_an_error_that_only_the_catch_all_takes_gets_its_attempts(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    run = run_to_end(
        client, _workflow(tmp_path, LIST), {"path": str(log), "failures": _failures("Other")}
    )
    assert run.status == "failed"  # "*" with max_attempts 1: no retry
    assert len(acts.read_json_lines(log)) == 1


def test_an_error_no_policy_names_is_not_retried(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    retry = "retry: [{errors: [Busy], max_attempts: 5, initial_interval: 10ms}]"
    run = run_to_end(
        client, _workflow(tmp_path, retry), {"path": str(log), "failures": _failures("Down")}
    )
    assert run.status == "failed"
    assert len(acts.read_json_lines(log)) == 1


WHEN = """retry:
              - errors: [HttpError]
                when: "{{ error.details.status == 202 }}"
                max_attempts: 5
                initial_interval: 10ms
                backoff: 1
              - errors: [HttpError]
                when: "{{ error.details.status >= 500 and attempt < 3 }}"
                max_attempts: 5
                initial_interval: 10ms"""


def test_the_when_predicate_chooses_the_policy_and_can_stop_retries(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    # Raised as non-retryable (as the http activity does for a status outside `expect`): a
    # policy that names HttpError still retries it.
    failures = [
        {"type": "HttpError", "status": 202, "final": True},
        {"type": "HttpError", "status": 202, "final": True},
        {"type": "HttpError", "status": 503, "final": True},
        {"type": "HttpError", "status": 503, "final": True},
        {"type": "HttpError", "status": 503, "final": True},
    ]
    run = run_to_end(client, _workflow(tmp_path, WHEN), {"path": str(log), "failures": failures})
    assert run.status == "failed"
    # 202, 202: policy 0; 503 on attempt 3: policy 1's `attempt < 3` is false: no retry.
    assert _retries(client, run.id) == [(0, 0.01), (0, 0.01)]
    assert run.error["details"]["status"] == 503
    assert len(acts.read_json_lines(log)) == 3


def test_a_catch_all_never_retries_an_error_raised_as_non_retryable(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    retry = 'retry: [{errors: ["*"], max_attempts: 5, initial_interval: 10ms}]'
    failures = [{"type": "HttpError", "status": 404, "final": True}]
    run = run_to_end(client, _workflow(tmp_path, retry), {"path": str(log), "failures": failures})
    assert run.status == "failed"
    assert len(acts.read_json_lines(log)) == 1


def test_a_predicate_that_fails_fails_the_step_with_the_cause(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "calls"
    retry = 'retry: [{errors: [Busy], when: "{{ error.details.status.nope.deeper }}"}]'
    run = run_to_end(
        client, _workflow(tmp_path, retry), {"path": str(log), "failures": _failures("Busy")}
    )
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    assert run.error["details"]["cause"]["type"] == "Busy"
    assert len(acts.read_json_lines(log)) == 1


def test_defaults_retry_may_be_a_list(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    defaults = """defaults:
          retry:
            - errors: [Busy]
              max_attempts: 3
              initial_interval: 10ms
            - errors: ["*"]
              max_attempts: 1"""
    failures = _failures("Busy", "Busy")
    run = run_to_end(
        client, _workflow(tmp_path, "", defaults), {"path": str(log), "failures": failures}
    )
    assert run.status == "completed"
    assert _retries(client, run.id) == [(0, 0.01), (0, 0.02)]


def test_a_compensation_may_retry_by_error(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    wf = write_workflow(
        tmp_path,
        """
        name: comp-retry
        states:
          book:
            type: activity
            activity: test.echo
            input: ok
            compensate:
              activity: test.fail_sequence
              input: {path: "{{ input.path }}", failures: [{type: Busy}, {type: Busy}]}
              retry:
                - errors: [Busy]
                  max_attempts: 3
                  initial_interval: 10ms
                  backoff: 1
                - errors: ["*"]
                  max_attempts: 1
            next: boom
          boom: {type: fail, error: Boom}
        """,
    )
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "failed"
    assert run.error["type"] == "Boom"  # the compensation succeeded on its third attempt
    events = history(client, run.id)
    assert len(of_type(events, "CompensationFailed")) == 2
    assert len(of_type(events, "CompensationCompleted")) == 1
    assert [e["payload"]["policy"] for e in of_type(events, "RetryScheduled")] == [0, 0]


# --- the policy list on its own (pure) ------------------------------------------------------


def _retry(retry: Any, defaults: Any = None) -> Retry:
    doc: dict[str, Any] = {
        "dsl": "1.0",
        "name": "r",
        "states": {"s": {"type": "activity", "activity": "a", "retry": retry, "end": True}},
    }
    if defaults is not None:
        doc["defaults"] = {"retry": defaults}
    defn = Definition.from_data(doc)
    state = defn.workflow.states["s"]
    return defn.retry_for(state.retry)  # type: ignore[union-attr]


def test_a_list_fills_missing_keys_from_one_default_policy() -> None:
    retry = _retry(
        [{"errors": ["A"], "max_attempts": 5}, {"errors": ["*"]}],
        {"initial_interval": "2s", "max_attempts": 2},
    )
    assert [(p.errors, p.max_attempts, p.initial_interval) for p in retry.policies] == [
        (("A",), 5, 2.0),
        (("*",), 2, 2.0),
    ]


def test_a_single_policy_round_trips_in_the_old_task_shape() -> None:
    retry = _retry({"max_attempts": 4})
    assert retry.rest == ()
    data = retry.to_json()
    assert "rest" not in data and "errors" not in data  # what tasks stored before lists
    assert Retry.from_json(json.loads(json.dumps(data))) == retry
    listed = _retry([{"errors": ["A"], "when": "{{ attempt < 2 }}"}, {"max_attempts": 1}])
    assert Retry.from_json(json.loads(json.dumps(listed.to_json()))) == listed


def test_decide_counts_per_policy() -> None:
    retry = _retry([{"errors": ["A"], "max_attempts": 2}, {"errors": ["B"], "max_attempts": 3}])
    counts = [0, 0]
    err_a = {"type": "A", "message": "", "details": None}
    err_b = {"type": "B", "message": "", "details": None}
    assert retry.decide(err_b, counts, 1).retry
    assert retry.decide(err_a, counts, 2).retry
    assert retry.decide(err_b, counts, 3).retry
    assert counts == [1, 2]
    decision = retry.decide(err_b, counts, 4)
    assert (decision.rule, decision.retry) == (1, False)
    assert retry.decide({"type": "C", "message": "", "details": None}, counts, 5).rule is None


@pytest.mark.parametrize("retry", ["[]", "[{errors: []}]"])
def test_an_empty_list_of_policies_or_errors_is_refused(retry: str) -> None:
    from dsl.validate import validate_text

    text = f'dsl: "1.0"\nname: e\nstates:\n  a: {{type: activity, activity: x, retry: {retry}, end: true}}\n'
    result = validate_text(text)
    assert [d.code for d in result.diagnostics] == ["TF106"]
    assert result.workflow is None


def test_templated_intervals_in_a_list_of_policies_come_from_the_input(
    client: Client, tmp_path: Path
) -> None:
    """Retry lists (by error) and templated durations together: each policy's interval is
    evaluated when the step starts, at its own index."""
    log = tmp_path / "calls"
    retry = """retry:
              - errors: [Busy]
                max_attempts: 3
                initial_interval: "{{ input.busy_wait }}"
                backoff: 1
              - errors: ["*"]
                max_attempts: 2
                initial_interval: "{{ input.other_wait }}\""""
    path = _workflow(tmp_path, retry)
    failures = _failures("Busy", "Other")
    data = {"path": str(log), "failures": failures, "busy_wait": "30ms", "other_wait": 0.05}
    run = run_to_end(client, path, data)
    assert run.status == "completed", run.error
    assert _retries(client, run.id) == [(0, 0.03), (1, 0.05)]
    bad = run_to_end(client, path, {**data, "busy_wait": "soon"})
    assert bad.status == "failed" and bad.error["type"] == "InvalidDuration"
    assert "retry[0].initial_interval" in bad.error["message"]
