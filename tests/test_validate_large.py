"""A large generated workflow gets exactly the diagnostics a small one would: the linear
rewrites of the flow rules (TF203, TF204, TF205) and of the loader change speed, not findings.

The expected list was produced by the quadratic implementation before the rewrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import Diagnostic, validate_text
from dsl.loader import load_text
from dsl.schema_check import check_schema
from dsl.validate import _only_failing_states, _strict_validation

INVALID = Path(__file__).parent / "fixtures" / "invalid"

STATES = 3000


def large_workflow(states: int) -> str:
    lines = ['dsl: "1.0"', "name: large", "states:"]
    for i in range(states):
        if i == states // 3:  # a parallel state whose branch jumps out of its scope
            lines += [
                f"  step_{i}:",
                "    type: parallel",
                "    branches:",
                "      - states:",
                "          inner: {type: activity, activity: http, next: step_5}",
                f"    next: step_{i + 1}",
            ]
            continue
        lines += [
            f"  step_{i}:",
            "    type: activity",
            "    activity: http",
            "    input:",
            f'      url: "https://example.com/{{{{ input.id }}}}/{i}"',
        ]
        if i == states // 2:
            lines += ["    catch:", "      - errors: [HttpError]", "        next: loop_a"]
        if i == states * 2 // 3:
            lines += ["    catch:", "      - errors: [HttpError]", "        next: faild"]
        lines.append(f"    next: step_{i + 1}" if i + 1 < states else "    next: done")
    lines += [
        "  loop_a: {type: activity, activity: http, next: loop_b}",
        "  loop_b: {type: activity, activity: http, next: loop_a}",
        "  orphan: {type: succeed}",
        "  failed: {type: fail, error: Failed}",
        "  done: {type: succeed}",
    ]
    return "\n".join(lines) + "\n"


_LOOP_HINT = (
    "give the loop a way out: a choice branch or catch that leads to a state with end: true, "
    "or a succeed/fail state"
)
EXPECTED = [
    (
        "TF203",
        6008,
        57,
        "next of state 'inner' (branch 1 of parallel state 'step_1000') names 'step_5', "
        "which belongs to the top level",
    ),
    (
        "TF201",
        12014,
        15,
        "catch next of state 'step_2000' names 'faild', which is not a state of the top level",
    ),
    ("TF205", 18010, 3, "no path from state 'loop_a' reaches an end of the top level"),
    ("TF205", 18011, 3, "no path from state 'loop_b' reaches an end of the top level"),
    ("TF204", 18012, 3, "state 'orphan' can never be reached from 'step_0' in the top level"),
    ("TF204", 18013, 3, "state 'failed' can never be reached from 'step_0' in the top level"),
]


def test_large_workflow_diagnostics_are_exact() -> None:
    result = validate_text(large_workflow(STATES), "large.yaml")
    found = [(d.code, d.line, d.column, d.message) for d in result.diagnostics]
    assert found == EXPECTED
    assert all(d.severity.value == "error" and d.file == "large.yaml" for d in result.diagnostics)
    hints = {d.code: d.hint for d in result.diagnostics}
    assert hints["TF205"] == _LOOP_HINT
    assert hints["TF201"] is not None and hints["TF201"].startswith("did you mean 'failed'?")


def test_large_chain_without_problems_is_clean() -> None:
    """Every state of a 3,000-state chain finishes only through all the states after it (the
    case the old fixed-point loop took one pass per state for)."""
    lines = ['dsl: "1.0"', "name: chain", "states:"]
    for i in range(STATES):
        target = f"step_{i + 1}" if i + 1 < STATES else "done"
        lines.append(f"  step_{i}: {{type: activity, activity: http, next: {target}}}")
    lines.append("  done: {type: succeed}")
    assert validate_text("\n".join(lines) + "\n").diagnostics == []


def _schema_pass_both_ways(text: str) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(the pass over the whole document, the pass over the failing states), each sorted as
    validate reports them."""
    document = load_text(text).document
    assert document is not None
    workflow, error = _strict_validation(document.data)
    assert workflow is None and error is not None

    def ordered(found: list[Diagnostic]) -> list[Diagnostic]:
        return sorted(found, key=lambda d: (d.line, d.column, d.code, d.message))

    full = check_schema(document)
    return ordered(full), ordered(check_schema(_only_failing_states(document, error)))


@pytest.mark.parametrize(
    "name", sorted(p.name for p in INVALID.iterdir() if p.name.startswith("tf1"))
)
def test_schema_pass_on_the_failing_states_finds_the_same(name: str) -> None:
    """The jsonschema pass sees only the states the strict model rejected: for every schema
    fixture that gives exactly the findings of the pass over the whole document."""
    text = (INVALID / name).read_text(encoding="utf-8")
    full, restricted = _schema_pass_both_ways(text)
    assert full and restricted == full


def test_schema_errors_in_a_large_file() -> None:
    text = large_workflow(STATES).replace("next: step_1501", "nxt: step_1501", 1)
    text = text.replace("activity: http\n    input:", "activty: http\n    input:", 1)
    full, restricted = _schema_pass_both_ways(text)
    assert restricted == full
    assert [d.code for d in full] == ["TF101", "TF101"]
    assert validate_text(text).diagnostics == full
