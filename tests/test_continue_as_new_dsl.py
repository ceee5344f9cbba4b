"""continue_as_new and history_limit in the language: schema, lint (TF290-TF292), graph export."""

from __future__ import annotations

import textwrap

from conftest import SAMPLES, run_cli
from test_lint import codes, run_lint

from dsl import validate_text
from dsl.graph import to_dot, to_mermaid
from dsl.model import Workflow

LOOP = """
dsl: "1.0"
name: loop
input_schema: {type: object, required: [n], properties: {n: {type: integer}}}
states:
  work: {type: activity, activity: a, next: again}
  again: {type: continue_as_new, input: {n: "{{ input.n + 1 }}"}}
"""


def test_a_top_level_continue_as_new_with_a_template_input_is_clean() -> None:
    assert codes(run_lint(LOOP)) == []


def test_continue_as_new_in_a_parallel_branch_is_tf290_with_the_owner_in_the_hint() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: branchy
        states:
          both:
            type: parallel
            branches:
              - states:
                  again: {type: continue_as_new}
            end: true
        """
    )
    assert codes(found) == ["TF290"]
    assert found[0].line == 9 and "branch 1 of parallel state 'both'" in found[0].message
    assert "'both'" in (found[0].hint or "")


def test_tf291_points_at_the_bad_field_and_skips_templates() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: bad
        input_schema: {type: object, properties: {n: {type: integer}}}
        states:
          pick:
            type: choice
            choices: [{when: "{{ input.n > 1 }}", next: a}]
            default: b
          a: {type: continue_as_new, input: {n: "two"}}
          b: {type: continue_as_new, input: {n: "{{ 'two' }}"}}
        """
    )
    assert codes(found) == ["TF291"]
    assert (found[0].line, "/n" in found[0].message) == (10, True)


def test_tf292_bounds() -> None:
    base = 'dsl: "1.0"\nname: x\nhistory_limit: {}\nstates:\n  s: {{type: succeed}}\n'
    assert codes(run_lint(base.format(20))) == []
    assert codes(run_lint(base.format(1_000_000))) == []
    assert codes(run_lint(base.format(19))) == ["TF292"]
    assert codes(run_lint(base.format(1_000_001))) == ["TF292"]


def test_the_schema_refuses_next_on_continue_as_new() -> None:
    text = textwrap.dedent(
        """
        dsl: "1.0"
        name: x
        states:
          a: {type: continue_as_new, next: a}
        """
    )
    result = validate_text(text, "x.yaml")
    assert not result.ok
    assert any(d.line == 5 for d in result.diagnostics), result.diagnostics


def test_graph_draws_an_edge_back_to_the_start() -> None:
    from test_lint import load

    workflow, _ = load(textwrap.dedent(LOOP))
    assert isinstance(workflow, Workflow)
    mermaid = to_mermaid(workflow)
    # n1 is the top level's start marker; the continue_as_new state points back at it.
    assert '-.->|"new segment"| n1' in mermaid
    assert "continue as new" in mermaid
    dot = to_dot(workflow)
    assert 'n4 -> n1 [style=dashed, color=blue3, fontcolor=blue3, label="new segment"]' in dot


def test_graph_cli_on_the_poller_sample() -> None:
    for fmt in ("mermaid", "dot"):
        proc = run_cli("graph", str(SAMPLES / "poller.yaml"), "--format", fmt)
        assert proc.returncode == 0 and "new segment" in proc.stdout, proc.stderr
