"""Data at run time, on SQLite and PostgreSQL: nested result/set paths, fail states that
re-raise a caught error's type, input defaults and formats, x- keys, invalid children."""

from __future__ import annotations

import json
from pathlib import Path

import activities_for_tests  # registers test.echo and test.raise
import pytest
from conftest import run_cli
from run_helpers import run_to_end, write_workflow

from interpreter import Client
from interpreter.errors import InputInvalid

TEST_ACTIVITIES = str(Path(activities_for_tests.__file__).resolve())


def runs_in(client: Client) -> int:
    return len(client.store.list_runs(limit=1000))


# --------------------------------------------------------------------------- nested paths

NESTED = """
name: nested
vars:
  order: {id: A-1, status: new}
states:
  charge:
    type: activity
    activity: test.echo
    input: {paid: 12.5}
    result: order.payment
    next: mark
  mark:
    type: set
    vars:
      "order.status": paid
      order.audit.by: "{{ vars.order.payment.paid }}"
      plain: "{{ vars.order.status }}"
    next: boom
  boom:
    type: activity
    activity: test.raise
    input: {kind: Declined, message: no, non_retryable: true}
    catch: [{errors: ["*"], result: order.problem, next: done}]
    next: done
  done: {type: succeed, output: "{{ vars }}"}
"""


def test_result_set_and_catch_write_into_nested_objects(client: Client, tmp_path: Path) -> None:
    final = run_to_end(client, write_workflow(tmp_path, NESTED), None)
    assert final.status == "completed", final.error
    order = final.output["order"]
    assert order["id"] == "A-1"  # the rest of the object stays
    assert order["payment"] == {"paid": 12.5}
    assert order["status"] == "paid"
    assert order["audit"] == {"by": 12.5}  # missing objects on the way are created
    assert order["problem"]["type"] == "Declined"
    assert final.output["plain"] == "new"  # values see the vars from before the state


THROUGH_A_TEXT = """
name: through_text
vars: {order: "just text"}
states:
  mark:
    type: set
    vars: {"order.status": paid}
    next: done
  done: {type: succeed}
"""


def test_a_path_through_a_non_object_is_an_expression_error(client: Client, tmp_path: Path) -> None:
    final = run_to_end(client, write_workflow(tmp_path, THROUGH_A_TEXT), None)
    assert final.status == "failed"
    assert final.error is not None
    assert final.error["type"] == "ExpressionError"
    assert (
        "cannot store vars.order.status: vars.order is a text, not an object"
        in (final.error["message"])
    )


RESULT_THROUGH_A_LIST = """
name: result_through_list
vars: {order: [1]}
states:
  charge:
    type: activity
    activity: test.echo
    input: 1
    result: order.payment
    catch: [{errors: [ExpressionError], result: problem, next: caught}]
    next: caught
  caught: {type: succeed, output: "{{ vars.problem.message }}"}
"""


def test_a_bad_result_path_can_be_caught(client: Client, tmp_path: Path) -> None:
    final = run_to_end(client, write_workflow(tmp_path, RESULT_THROUGH_A_LIST), None)
    assert final.status == "completed", final.error
    assert "vars.order is a list, not an object" in final.output


# --------------------------------------------------------------------------- fail from templates

RERAISE = """
name: reraise
states:
  call:
    type: activity
    activity: test.raise
    input: {kind: "{{ input.kind }}", message: "card declined", non_retryable: true,
            details: {code: 51}}
    catch: [{errors: ["*"], result: problem, next: reraise}]
    end: true
  reraise:
    type: fail
    error: "{{ vars.problem.type }}"
    message: "again: {{ vars.problem.message }}"
    details: "{{ vars.problem.details }}"
"""


def test_a_fail_state_re_raises_the_caught_type(client: Client, tmp_path: Path) -> None:
    final = run_to_end(client, write_workflow(tmp_path, RERAISE), {"kind": "PaymentDeclined"})
    assert final.status == "failed"
    assert final.error == {
        "type": "PaymentDeclined",
        "message": "again: card declined",
        "details": {"code": 51},
    }


BAD_TYPE = """
name: bad_type
states:
  stop: {type: fail, error: "{{ input.kind }}"}
"""


@pytest.mark.parametrize("kind", [3, "", None])
def test_a_templated_error_type_must_be_a_name(
    client: Client, tmp_path: Path, kind: object
) -> None:
    final = run_to_end(client, write_workflow(tmp_path, BAD_TYPE), {"kind": kind})
    assert final.status == "failed"
    assert final.error is not None
    assert final.error["type"] == "ExpressionError"
    assert "an error type must be a non-empty text" in final.error["message"]


# --------------------------------------------------------------------------- input defaults

DEFAULTS = """
name: defaults
x-common: &common {type: string}
input_schema:
  type: object
  required: [email]
  $defs:
    money: {type: object, properties: {currency: {type: string, default: EUR}}}
  properties:
    email: {type: string, format: email}
    when: {type: string, format: date-time, default: "2026-01-01T00:00:00Z"}
    id: {type: string, format: uuid}
    site: {type: string, format: uri}
    day: {type: string, format: date}
    note: *common
    options:
      type: object
      default: {}
      properties:
        express: {type: boolean, default: false}
        depth: {type: object, properties: {level: {type: integer, default: 1}}}
    price: {$ref: "#/$defs/money"}
    lines:
      type: array
      items: {type: object, properties: {qty: {type: integer, default: 1}}}
states:
  done: {type: succeed, output: "{{ input }}"}
"""


def test_input_defaults_are_filled_in_before_the_run_starts(client: Client, tmp_path: Path) -> None:
    given = {
        "email": "a@b.example",
        "options": {"depth": {}},
        "price": {},
        "lines": [{}, {"qty": 3}],
    }
    run_id = client.start(write_workflow(tmp_path, DEFAULTS), given)
    assert client.get(run_id).input == {
        "email": "a@b.example",
        "when": "2026-01-01T00:00:00Z",
        "options": {"express": False, "depth": {"level": 1}},
        "price": {"currency": "EUR"},
        "lines": [{"qty": 1}, {"qty": 3}],
    }
    assert given == {
        "email": "a@b.example",
        "options": {"depth": {}},
        "price": {},
        "lines": [{}, {"qty": 3}],
    }
    final = client.execute(run_id)
    assert final.output["options"]["express"] is False
    # Starting the same id again with the same (unfilled) input is the same run.
    assert client.start(write_workflow(tmp_path, DEFAULTS), given, run_id=run_id) == run_id


@pytest.mark.parametrize(
    ("field", "value", "pointer", "format_"),
    [
        ("email", "not-an-address", "/email", "email"),
        ("when", "yesterday", "/when", "date-time"),
        ("when", "2026-01-01T10:00:00", "/when", "date-time"),  # no time zone
        ("id", "1234", "/id", "uuid"),
        ("site", "no scheme here", "/site", "uri"),
        ("day", "2026-13-01", "/day", "date"),
    ],
)
def test_formats_are_checked_and_nothing_is_created(
    client: Client, tmp_path: Path, field: str, value: str, pointer: str, format_: str
) -> None:
    good = {"email": "a@b.example", "id": "6f1c2b8e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"}
    good.update(site="https://example.com/x", day="2026-02-28", when="2026-02-28T10:00:00+01:00")
    client.start(write_workflow(tmp_path, DEFAULTS), good)  # every format right: accepted
    before = runs_in(client)
    with pytest.raises(InputInvalid) as caught:
        client.start(write_workflow(tmp_path, DEFAULTS), {**good, field: value})
    assert f"the input is invalid at {pointer}" in caught.value.message
    assert f"is not a '{format_}'" in caught.value.message
    assert runs_in(client) == before


def test_the_cli_exits_2_naming_the_path(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, DEFAULTS)
    for command in ("run", "start"):
        proc = run_cli(
            command,
            str(wf),
            "--input",
            json.dumps({"email": "x@y.z", "when": "soon"}),
            "--db",
            store_url,
        )
        assert proc.returncode == 2, proc.stderr
        assert "invalid at /when: 'soon' is not a 'date-time'" in proc.stderr
        assert "Traceback" not in proc.stderr
    with Client(store_url) as client:
        assert runs_in(client) == 0


def test_validate_input_uses_the_same_defaults_and_formats(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, DEFAULTS)
    ok = run_cli("validate", str(wf), "--input", json.dumps({"email": "x@y.z"}))
    assert ok.returncode == 0, ok.stdout
    bad = run_cli("validate", str(wf), "--input", json.dumps({"email": "x@y.z", "id": "7"}))
    assert bad.returncode == 1
    assert "TF110" in bad.stdout and "/id" in bad.stdout and "uuid" in bad.stdout


# --------------------------------------------------------------------------- children

PARENT = """
name: parent
states:
  call:
    type: child
    workflow: kid
    input: {}
    catch: [{errors: [ChildFailed], result: problem, next: caught}]
    next: caught
  caught: {type: succeed, output: "{{ vars.problem.details.error }}"}
"""
BROKEN = ('output: "{{ input }}"', "output: \"{{ input | regex_search('(') }}\"")
KID = """
name: kid
input_schema: {type: object, properties: {tries: {type: integer, default: 2}}}
states:
  done: {type: succeed, output: "{{ input }}"}
"""


def test_a_child_gets_its_input_defaults(client: Client, tmp_path: Path) -> None:
    parent = write_workflow(
        tmp_path, PARENT.replace("next: caught\n  caught", "end: true\n  caught")
    )
    write_workflow(tmp_path, KID, "kid.yaml")
    final = run_to_end(client, parent, None)
    assert final.status == "completed", final.error
    assert final.output == {"tries": 2}


def test_a_child_found_but_invalid_is_child_workflow_invalid(
    client: Client, tmp_path: Path
) -> None:
    parent = write_workflow(tmp_path, PARENT)
    kid = write_workflow(tmp_path, KID, "kid.yaml")
    run_id = client.start(parent)
    kid.write_text(kid.read_text().replace(*BROKEN))
    final = client.execute(run_id)
    assert final.status == "completed", final.error
    assert final.output["type"] == "ChildWorkflowInvalid"
    assert "was found" in final.output["message"] and "kid.yaml:" in final.output["message"]
    assert "[TF258]" in final.output["message"]


def test_a_child_input_against_its_schema_is_input_invalid(client: Client, tmp_path: Path) -> None:
    parent = write_workflow(tmp_path, PARENT.replace("input: {}", "input: {tries: many}"))
    write_workflow(tmp_path, KID, "kid.yaml")
    final = run_to_end(client, parent, None)
    assert final.status == "completed", final.error
    assert final.output["type"] == "InputInvalid"
    assert "invalid at /tries" in final.output["message"]


def test_validate_reports_a_childs_diagnostics_under_the_child_file(tmp_path: Path) -> None:
    parent = write_workflow(tmp_path, PARENT)
    write_workflow(tmp_path, KID.replace(*BROKEN), "kid.yaml")
    proc = run_cli("validate", "--format", "json", str(parent), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    assert report["files"] == 2
    found = [(Path(d["file"]).name, d["code"], d["line"]) for d in report["diagnostics"]]
    assert sorted(found) == [("kid.yaml", "TF258", 5), ("wf.yaml", "TF259", 6)]
    # text format: file:line:col of the child file
    text = run_cli("validate", str(parent), cwd=tmp_path)
    assert "kid.yaml:5:" in text.stdout and "error[TF258]" in text.stdout
    # and run refuses the parent before creating anything
    proc = run_cli("run", str(parent), "--db", str(tmp_path / "s.db"))
    assert proc.returncode == 2 and "TF259" in proc.stderr


def test_one_validator_per_schema_text_and_never_a_stale_one() -> None:
    """dsl.input_schema keeps the validator of each schema (by its JSON text): the same schema
    gets the same validator, a changed one a new validator, and changing the caller's dict
    afterwards changes nothing in the kept one."""
    from dsl.input_schema import validator

    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    first = validator(schema)
    # The keywords' order is the order errors are found in, so it is part of the key.
    reordered = {"properties": {"n": {"minimum": 1, "type": "integer"}}, "type": "object"}
    assert validator(reordered) is not first and validator(reordered) is validator(reordered)
    assert validator(json.loads(json.dumps(schema))) is first
    assert not first.is_valid({"n": 0})
    schema["properties"]["n"]["minimum"] = 0
    assert not first.is_valid({"n": 0})
    assert validator(schema) is not first and validator(schema).is_valid({"n": 0})
    assert not validator({"format": "email"}).is_valid("not an address")
