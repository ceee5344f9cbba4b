"""Validation of the data features: TF256 (templates only in template fields), x- keys in the
schema and the model, nested result paths in the schema, and the graph of a templated fail."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dsl import validate_text
from dsl.graph import to_dot, to_mermaid
from dsl.model import Workflow

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "workflow.schema.json").read_text()
)


def codes(text: str) -> list[tuple[str, int]]:
    result = validate_text(textwrap.dedent(text))
    return [(d.code, d.line) for d in result.diagnostics]


def test_the_issue_case_is_now_a_template_and_passes_strict() -> None:
    assert (
        codes(
            """\
        dsl: "1.0"
        name: reraise
        states:
          call:
            type: activity
            activity: http
            input: {url: "http://127.0.0.1:1/"}
            catch: [{errors: ["*"], result: error, next: stop}]
            end: true
          stop: {type: fail, error: "{{ vars.error.type }}"}
        """
        )
        == []
    )


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("type: activity\n    activity: '{{ input.kind }}'", 6),
        ("type: activity\n    activity: http\n    catch: [{errors: ['{{ x }}'], next: b}]", 7),
    ],
)
def test_a_template_outside_a_template_field_is_tf256(field: str, line: int) -> None:
    found = codes(
        f"""\
dsl: "1.0"
name: t
states:
  a:
    {field}
    next: b
  b: {{type: succeed}}
"""
    )
    assert ("TF256", line) in found


@pytest.mark.parametrize(
    "state",
    [
        "{type: child, workflow: '{{ input.name }}', next: b}",
        "{type: wait, signal: '{{ input.s }}', next: b}",
        "{type: choice, choices: [{when: '{{ true }}', next: b}], default: '{{ b }}'}",
    ],
)
def test_tf256_covers_names_of_every_kind(state: str) -> None:
    found = codes(
        f"""\
dsl: "1.0"
name: t
signals: {{s: {{}}}}
states:
  a: {state}
  b: {{type: succeed}}
"""
    )
    assert "TF256" in [code for code, _ in found]


def test_free_text_schemas_and_x_keys_may_hold_braces() -> None:
    assert (
        codes(
            """\
        dsl: "1.0"
        name: free
        description: "a {{ template }} in free text"
        x-snippets: {greeting: "{{ input.name }}"}
        input_schema:
          type: object
          properties: {a: {type: string, default: "{{ not evaluated }}", description: "{{ x }}"}}
        signals: {s: {schema: {const: "{{ x }}"}, description: "{{ y }}"}}
        states:
          a: {type: succeed, description: "{{ here too }}"}
        """
        )
        == []
    )


def test_x_keys_are_allowed_by_the_schema_and_the_model_and_ignored() -> None:
    data = {
        "dsl": "1.0",
        "name": "x",
        "x-anchors": {"retry": {"max_attempts": 2}},
        "x-1": None,
        "states": {"a": {"type": "succeed"}},
    }
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []
    workflow = Workflow.model_validate(data, strict=True)
    assert "x-anchors" not in workflow.model_dump(by_alias=True)
    bad = {**data, "y-key": 1}
    assert list(Draft202012Validator(SCHEMA).iter_errors(bad)) != []
    assert [d.code for d in validate_text(json.dumps(bad)).diagnostics] == ["TF101"]


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        ("order", True),
        ("order.payment", True),
        ("a.b_2.c", True),
        ("order.", False),
        ("order..x", False),
        ("1st.x", False),
        ("a.1", False),
        ("a-b", False),
    ],
)
def test_result_takes_a_dotted_path(result: str, ok: bool) -> None:
    text = f"""\
dsl: "1.0"
name: r
states:
  a: {{type: activity, activity: http, result: "{result}", end: true}}
"""
    found = codes(text)
    assert (found == []) is ok, found
    data = {"dsl": "1.0", "name": "r", "states": {"a": {"type": "activity", "activity": "x"}}}
    data["states"]["a"].update(result=result, end=True)
    assert (list(Draft202012Validator(SCHEMA).iter_errors(data)) == []) is ok


def test_the_graph_of_a_templated_fail_shows_its_template() -> None:
    result = validate_text(
        'dsl: "1.0"\nname: g\nstates:\n  f: {type: fail, error: "{{ vars.problem.type }}"}\n'
    )
    assert result.workflow is not None
    assert "fail: {{ vars.problem.type }}" in to_mermaid(result.workflow)
    assert "fail: {{ vars.problem.type }}" in to_dot(result.workflow)
