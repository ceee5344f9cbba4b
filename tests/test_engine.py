"""The engine through the Python client: every simple state type, catch, the output rules,
input validation, expression errors, activity calling conventions, ActivityContext and pinning.

Each test runs in-process (`Client(store_url).execute`) on every configured store.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import activities_for_tests as acts
import pytest
from run_helpers import history, of_type, run_to_end, types_of, write_workflow

from interpreter import Client, InputInvalid

# --------------------------------------------------------------------------- state types


TOUR = """
    name: tour
    version: 3
    vars:
      visits: 0
    states:
      fetch:
        type: activity
        activity: test.echo
        input: {amount: "{{ input.amount }}", tag: "t-{{ input.amount }}"}
        result: order
        next: mark
      mark:
        type: set
        vars:
          visits: "{{ vars.visits + 1 }}"
          label: "{{ vars.order.tag | upper }}"
        next: route
      route:
        type: choice
        choices:
          - when: "{{ vars.order.amount > 100 }}"
            next: big
          - when: "{{ vars.order.amount > 10 }}"
            next: medium
        default: small
      big:
        type: set
        vars: {size: big}
        next: done
      medium:
        type: set
        vars: {size: medium}
        next: done
      small:
        type: set
        vars: {size: small}
        next: done
      done:
        type: succeed
        output:
          size: "{{ vars.size }}"
          label: "{{ vars.label }}"
          visits: "{{ vars.visits }}"
          amount: "{{ vars.order.amount }}"
"""


@pytest.mark.parametrize(
    ("amount", "size"), [(500, "big"), (50, "medium"), (5, "small"), (100, "medium")]
)
def test_activity_set_choice_succeed(
    client: Client, tmp_path: Path, amount: int, size: str
) -> None:
    wf = write_workflow(tmp_path, TOUR)
    run = run_to_end(client, wf, {"amount": amount})
    assert run.status == "completed", run.error
    assert run.output == {"size": size, "label": f"T-{amount}", "visits": 1, "amount": amount}
    events = history(client, run.id)
    entered = [e["state"] for e in of_type(events, "StateEntered")]
    assert entered == ["fetch", "mark", "route", size, "done"]
    assert types_of(events)[0] == "RunStarted"
    assert types_of(events)[-1] == "RunCompleted"


def test_choice_without_match_or_default_fails_with_no_choice_matched(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: nochoice
        states:
          route:
            type: choice
            choices:
              - when: "{{ input.x == 1 }}"
                next: one
          one:
            type: succeed
        """,
    )
    assert run_to_end(client, wf, {"x": 1}).status == "completed"
    run = run_to_end(client, wf, {"x": 2})
    assert run.status == "failed"
    assert run.error["type"] == "NoChoiceMatched"
    assert "route" in run.error["message"]


def test_sleep_duration_is_a_durable_timer(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: napper
        states:
          nap:
            type: sleep
            duration: 400ms
            next: done
          done:
            type: succeed
            output: woke
        """,
    )
    started = time.monotonic()
    run = run_to_end(client, wf)
    elapsed = time.monotonic() - started
    assert run.status == "completed"
    assert run.output == "woke"
    assert elapsed >= 0.38
    events = history(client, run.id)
    timer = of_type(events, "TimerStarted")
    assert [(t["state"], t["payload"]["kind"], t["payload"]["delay"]) for t in timer] == [
        ("nap", "sleep", 0.4)
    ]
    fired = of_type(events, "TimerFired")
    assert [f["payload"]["timer"] for f in fired] == [timer[0]["payload"]["timer"]]
    assert fired[0]["time"] - timer[0]["time"] >= 0.38


def _until_workflow(tmp_path: Path) -> Path:
    return write_workflow(
        tmp_path,
        """
        name: until
        states:
          nap:
            type: sleep
            until: "{{ input.until }}"
            next: done
          done:
            type: succeed
            output: awake
        """,
    )


def test_sleep_until_a_timestamp(client: Client, tmp_path: Path) -> None:
    wf = _until_workflow(tmp_path)
    until = datetime.now(UTC) + timedelta(seconds=0.5)
    started = time.time()
    run = run_to_end(client, wf, {"until": until.isoformat().replace("+00:00", "Z")})
    assert run.status == "completed", run.error
    assert time.time() >= until.timestamp() - 0.02
    delay = of_type(history(client, run.id), "TimerStarted")[0]["payload"]["delay"]
    assert 0 < delay <= 0.5
    assert time.time() - started < 5


def test_sleep_until_the_past_does_not_wait(client: Client, tmp_path: Path) -> None:
    wf = _until_workflow(tmp_path)
    started = time.monotonic()
    run = run_to_end(client, wf, {"until": "2001-01-01T00:00:00+00:00"})
    assert run.status == "completed"
    assert time.monotonic() - started < 2
    assert of_type(history(client, run.id), "TimerStarted")[0]["payload"]["delay"] == 0


@pytest.mark.parametrize(
    ("until", "words"),
    [("tomorrow", "not an RFC 3339 timestamp"), ("2030-01-01T00:00:00", "no time zone")],
)
def test_sleep_until_a_bad_timestamp_is_an_invalid_value(
    client: Client, tmp_path: Path, until: str, words: str
) -> None:
    run = run_to_end(client, _until_workflow(tmp_path), {"until": until})
    assert run.status == "failed"
    assert run.error["type"] == "InvalidValue"
    assert run.error["details"] == {"field": "until", "value": until}
    assert words in run.error["message"]
    assert "'nap'" in run.error["message"]


def test_fail_state_renders_message_and_details(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: failer
        states:
          check:
            type: activity
            activity: test.echo
            input: {order: "{{ input.order }}"}
            result: checked
            next: reject
          reject:
            type: fail
            error: OrderRejected
            message: "order {{ vars.checked.order }} rejected"
            details: {order: "{{ vars.checked.order }}", code: 7}
        """,
    )
    run = run_to_end(client, wf, {"order": "A-1"})
    assert run.status == "failed"
    assert run.output is None
    assert run.error == {
        "type": "OrderRejected",
        "message": "order A-1 rejected",
        "details": {"order": "A-1", "code": 7},
    }
    assert types_of(history(client, run.id))[-1] == "RunFailed"


# --------------------------------------------------------------------------- catch

CATCHER = """
    name: catcher
    states:
      risky:
        type: activity
        activity: test.raise
        input: {kind: "{{ input.kind }}", message: boom, details: {n: 1}, non_retryable: true}
        retry: {max_attempts: 1}
        catch:
          - errors: [OutOfStock, PaymentDeclined]
            result: problem
            next: handled_specific
          - errors: ["*"]
            result: anything
            next: handled_any
        next: fine
      fine:
        type: succeed
        output: fine
      handled_specific:
        type: succeed
        output: {via: specific, error: "{{ vars.problem }}"}
      handled_any:
        type: succeed
        output: {via: any, error: "{{ vars.anything }}", specific_set: "{{ 'problem' in vars }}"}
"""


@pytest.mark.parametrize("kind", ["OutOfStock", "PaymentDeclined"])
def test_catch_by_type_stores_the_error_as_a_var(client: Client, tmp_path: Path, kind: str) -> None:
    run = run_to_end(client, write_workflow(tmp_path, CATCHER), {"kind": kind})
    assert run.status == "completed", run.error
    assert run.output == {
        "via": "specific",
        "error": {"type": kind, "message": "boom", "details": {"n": 1}},
    }
    caught = of_type(history(client, run.id), "ErrorCaught")
    assert [(c["state"], c["payload"]["next"]) for c in caught] == [("risky", "handled_specific")]


def test_catch_star_catches_any_other_type(client: Client, tmp_path: Path) -> None:
    run = run_to_end(client, write_workflow(tmp_path, CATCHER), {"kind": "InventoryMismatch"})
    assert run.status == "completed", run.error
    assert run.output["via"] == "any"
    assert run.output["error"]["type"] == "InventoryMismatch"
    assert run.output["specific_set"] is False


def test_uncaught_error_fails_the_run_with_that_error(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: narrow
        states:
          risky:
            type: activity
            activity: test.raise
            input: {kind: Unexpected, message: nope, non_retryable: true}
            catch:
              - errors: [OutOfStock]
                next: never
            end: true
          never:
            type: succeed
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == "Unexpected"
    assert run.error["message"] == "nope"
    assert not of_type(history(client, run.id), "ErrorCaught")


# --------------------------------------------------------------------------- output rules


def test_output_of_succeed_wins_over_top_level_output(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: out1
        output: {from: top}
        states:
          a:
            type: activity
            activity: test.echo
            input: {v: 1}
            result: r
            next: done
          done:
            type: succeed
            output: {from: succeed, v: "{{ vars.r.v }}"}
        """,
    )
    assert run_to_end(client, wf).output == {"from": "succeed", "v": 1}


def test_output_top_level_on_end_true(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: out2
        output: {from: top, v: "{{ vars.r.v }}", who: "{{ input.who }}"}
        states:
          a:
            type: activity
            activity: test.echo
            input: {v: 2}
            result: r
            end: true
        """,
    )
    assert run_to_end(client, wf, {"who": "ada"}).output == {"from": "top", "v": 2, "who": "ada"}


def test_output_falls_back_to_the_last_result(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: out3
        states:
          a:
            type: activity
            activity: test.echo
            input: {v: first}
            result: r
            next: b
          b:
            type: activity
            activity: test.echo
            input: {v: last}
            next: tidy
          tidy:
            type: set
            vars: {ignored: true}
            end: true
        """,
    )
    assert run_to_end(client, wf).output == {"v": "last"}


def test_output_of_succeed_without_output_is_the_last_result(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: out4
        states:
          a:
            type: activity
            activity: test.echo
            input: [1, 2, 3]
            next: done
          done:
            type: succeed
        """,
    )
    assert run_to_end(client, wf).output == [1, 2, 3]


def test_output_falls_back_to_vars_without_any_result(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: out5
        vars: {x: 1, who: "{{ input.who }}"}
        states:
          a:
            type: set
            vars: {y: "{{ vars.x + 1 }}"}
            end: true
        """,
    )
    assert run_to_end(client, wf, {"who": "bo"}).output == {"x": 1, "who": "bo", "y": 2}


# --------------------------------------------------------------------------- input schema


SCHEMA_WF = """
    name: typed
    input_schema:
      type: object
      required: [customer]
      properties:
        customer:
          type: object
          required: [age]
          properties:
            age: {type: integer, minimum: 18}
    states:
      a:
        type: activity
        activity: test.echo
        input: "{{ input }}"
        end: true
"""


@pytest.mark.parametrize(
    ("bad", "pointer", "reason"),
    [
        ({"customer": {"age": "old"}}, "/customer/age", "is not of type 'integer'"),
        ({"customer": {"age": 12}}, "/customer/age", "less than the minimum of 18"),
        ({"customer": {}}, "/customer", "'age' is a required property"),
        ({}, "/", "'customer' is a required property"),
    ],
)
def test_input_schema_violation_stores_nothing(
    client: Client, tmp_path: Path, bad: object, pointer: str, reason: str
) -> None:
    wf = write_workflow(tmp_path, SCHEMA_WF)
    with pytest.raises(InputInvalid) as info:
        client.start(wf, bad)
    assert f"at {pointer}:" in info.value.message
    assert reason in info.value.message
    assert client.list_runs() == []
    good = run_to_end(client, wf, {"customer": {"age": 30}})
    assert good.status == "completed"
    assert [r.id for r in client.list_runs()] == [good.id]


# --------------------------------------------------------------------------- expressions


EXPR_WF = """
    name: expr
    states:
      compute:
        type: activity
        activity: test.echo
        input: {v: "{{ input.order.total * 2 }}"}
        catch:
          - errors: ["{{CATCH}}"]
            result: err
            next: handled
        end: true
      handled:
        type: succeed
        output: "{{ vars.err }}"
"""


def test_expression_error_names_template_and_state_and_fails_without_running(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(tmp_path, EXPR_WF.replace("{{CATCH}}", "SomethingElse"))
    run = run_to_end(client, wf, {"order": {}})
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    message = run.error["message"]
    assert "'compute'" in message
    assert "input.order.total * 2" in message
    events = history(client, run.id)
    assert not of_type(events, "ActivityStarted")
    assert not of_type(events, "RetryScheduled")


def test_expression_error_is_catchable(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, EXPR_WF.replace("{{CATCH}}", "ExpressionError"))
    run = run_to_end(client, wf, {"order": {}})
    assert run.status == "completed", run.error
    assert run.output["type"] == "ExpressionError"
    assert "compute" in run.output["message"]


def test_number_filters_refuse_text_that_is_not_a_number(client: Client, tmp_path: Path) -> None:
    """Jinja's int/float turn '12a' into 0 silently; here that fails unless a default is named."""
    wf = write_workflow(
        tmp_path,
        """
        name: numbers
        states:
          parse:
            type: succeed
            output:
              qty: "{{ input.qty | int }}"
              price: "{{ input.price | float }}"
              fallback: "{{ input.bad | int(-1) }}"
        """,
    )
    good = run_to_end(client, wf, {"qty": "12", "price": "9.5", "bad": "n/a"})
    assert good.status == "completed", good.error
    assert good.output == {"qty": 12, "price": 9.5, "fallback": -1}
    bad = run_to_end(client, wf, {"qty": "12a", "price": "9.5", "bad": "n/a"})
    assert bad.status == "failed"
    assert bad.error["type"] == "ExpressionError"
    assert "'12a' is not a number" in bad.error["message"]


def test_expression_error_in_initial_vars_fails_the_run(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: badvars
        vars: {n: "{{ input.nothing.here }}"}
        states:
          a: {type: succeed}
        """,
    )
    run = run_to_end(client, wf, {})
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    assert "input.nothing.here" in run.error["message"]


# --------------------------------------------------------------------------- activities


def test_sync_async_and_one_parameter_activities(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: styles
        states:
          sync_plain:
            type: activity
            activity: test.echo_plain
            input: {n: 1}
            result: a
            next: async_ctx
          async_ctx:
            type: activity
            activity: test.echo_async
            input: {n: 2}
            result: b
            next: async_plain
          async_plain:
            type: activity
            activity: test.echo_async_plain
            input: "just text"
            result: c
            next: done
          done:
            type: succeed
            output: ["{{ vars.a }}", "{{ vars.b }}", "{{ vars.c }}"]
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "completed", run.error
    assert run.output == [
        {"got": {"n": 1}, "type": "dict"},
        {"async": True, "got": {"n": 2}},
        {"async_plain": True, "got": "just text"},
    ]


def test_activity_context_and_idempotency_keys(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "ctx.log"
    wf = write_workflow(
        tmp_path,
        """
        name: ctxflow
        vars: {round: 0}
        states:
          step:
            type: activity
            activity: test.context
            input: {path: "{{ input.path }}", fail_until_attempt: 2}
            retry: {max_attempts: 3, initial_interval: 50ms}
            result: info
            next: count
          count:
            type: set
            vars: {round: "{{ vars.round + 1 }}"}
            next: again
          again:
            type: choice
            choices:
              - when: "{{ vars.round < 2 }}"
                next: step
            default: done
          done:
            type: succeed
            output: "{{ vars.info }}"
        """,
    )
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "completed", run.error
    calls = acts.read_json_lines(log)
    assert [c["attempt"] for c in calls] == [1, 2, 1, 2]
    assert {c["run_id"] for c in calls} == {run.id}
    assert {c["workflow"] for c in calls} == {"ctxflow"}
    assert {c["state"] for c in calls} == {"step"}
    keys = [c["key"] for c in calls]
    assert keys[0] == keys[1], "attempts of one visit share the idempotency key"
    assert keys[2] == keys[3]
    assert keys[0] != keys[2], "a second visit of the state gets a new key"
    assert run.output["idempotency_key"] == keys[3]
    assert run.output["attempt"] == 2
    assert run.output["cancelled"] is False
    scheduled = of_type(history(client, run.id), "ActivityScheduled")
    assert [s["payload"]["idempotency_key"] for s in scheduled] == [keys[0], keys[2]]


def test_idempotency_keys_differ_between_runs(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: keys
        states:
          step: {type: activity, activity: test.context, end: true}
        """,
    )
    first, second = run_to_end(client, wf), run_to_end(client, wf)
    assert first.output["idempotency_key"] != second.output["idempotency_key"]
    assert first.output["run_id"] == first.id


@pytest.mark.parametrize(
    ("kind", "type_", "message"),
    [
        ("InventoryMismatch", "InventoryMismatch", "counts differ"),
        ("KeyError", "KeyError", "'missing'"),
    ],
)
def test_exception_class_name_becomes_the_error_type(
    client: Client, tmp_path: Path, kind: str, type_: str, message: str
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: raiser
        states:
          step:
            type: activity
            activity: test.raise
            input: {{kind: {kind}}}
            retry: {{max_attempts: 1}}
            end: true
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == type_
    assert run.error["message"] == message


def test_result_that_is_not_json_fails_the_step_clearly(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wf = write_workflow(
        tmp_path,
        """
        name: notjson
        states:
          step:
            type: activity
            activity: test.not_json
            input: {path: "{{ input.path }}"}
            retry: {max_attempts: 3, initial_interval: 50ms}
            end: true
        """,
    )
    run = run_to_end(client, wf, {"path": str(log)})
    assert run.status == "failed"
    assert run.error["type"] == "ResultNotSerializable"
    assert "not JSON" in run.error["message"]
    assert len(acts.read_json_lines(log)) == 1, "a result that cannot be stored is not retried"


def test_unregistered_activity_fails_the_step(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: ghost
        states:
          step: {type: activity, activity: nobody.registered.this, end: true}
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == "ActivityNotRegistered"
    assert "nobody.registered.this" in run.error["message"]
    assert len(of_type(history(client, run.id), "ActivityStarted")) == 1


# --------------------------------------------------------------------------- pinning

PINNED = """
    name: pinned
    version: {version}
    states:
      nap:
        type: sleep
        duration: 10ms
        next: done
      done:
        type: succeed
        output: {{said: "{said}"}}
"""


def test_editing_the_file_does_not_change_an_in_flight_run(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, PINNED.format(version=1, said="old"))
    run_id = client.start(wf)
    before = client.status(run_id)
    assert before["version"] == "1"
    assert len(before["definition_hash"]) == 64
    write_workflow(tmp_path, PINNED.format(version=2, said="new"))
    run = client.execute(run_id)
    assert run.status == "completed"
    assert run.output == {"said": "old"}
    after = client.status(run_id)
    assert (after["version"], after["definition_hash"]) == ("1", before["definition_hash"])
    fresh = run_to_end(client, wf)
    assert fresh.output == {"said": "new"}
    fresh_status = client.status(fresh.id)
    assert fresh_status["version"] == "2"
    assert fresh_status["definition_hash"] != before["definition_hash"]
    started = of_type(history(client, run_id), "RunStarted")[0]
    assert started["payload"]["hash"] == before["definition_hash"]


# --------------------------------------------------------------------------- child workflows


def test_child_as_the_first_state_at_every_level(client: Client, tmp_path: Path) -> None:
    """The first decisions of a run are made where it is created; a child started there (and a
    grandchild started by that child's first decisions) must still be created by the worker."""
    write_workflow(
        tmp_path,
        """
        name: leaf
        states:
          echo:
            type: activity
            activity: test.echo
            input: {leaf: "{{ input.n }}"}
            end: true
        """,
        name="leaf.yaml",
    )
    write_workflow(
        tmp_path,
        """
        name: middle
        states:
          call_leaf:
            type: child
            workflow: leaf
            input: {n: "{{ input.n }}"}
            result: leaf
            next: done
          done:
            type: succeed
            output: {middle: "{{ vars.leaf }}"}
        """,
        name="middle.yaml",
    )
    outer = write_workflow(
        tmp_path,
        """
        name: outer
        states:
          call_middle:
            type: child
            workflow: middle
            input: {n: "{{ input.n }}"}
            end: true
        """,
        name="outer.yaml",
    )
    run = run_to_end(client, outer, {"n": 7})
    assert run.status == "completed", run.error
    assert run.output == {"middle": {"leaf": 7}}
    children = client.status(run.id)["children"]
    assert len(children) == 1
    assert client.get(children[0]).workflow == "middle"
    assert client.get(children[0]).status == "completed"
