"""Values a run cannot keep fail the step once, cleanly and catchably, instead of stalling it.

Before: an activity result or template result that JSON could not store (a lone surrogate,
an integer past 4,300 digits, NaN, nesting too deep) passed the first check, then failed
every commit, so the worker re-ran the activity every 5 s for ever. Templates could also
build values of any size (`'a' * 10**8`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from run_helpers import history, of_type, run_to_end, write_workflow

from interpreter import ActivityContext, Client, activity
from interpreter.jsondata import MAX_VALUE_BYTES, NotJsonData, check, parse

CALLS: dict[str, int] = {}


class _BadStr(Exception):
    def __str__(self) -> str:
        raise ValueError("str fails")


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


BAD_RESULTS: dict[str, Any] = {
    "surrogate": "\ud800",
    "huge_int": 10**5000,
    "nan": float("nan"),
    "deep": _deep(100_000),
    "too_large": "x" * (MAX_VALUE_BYTES + 1),
}


@activity("jl.bad_result")
def bad_result(ctx: ActivityContext, kind: str) -> Any:
    CALLS[kind] = CALLS.get(kind, 0) + 1
    return BAD_RESULTS[kind]


@activity("jl.bad_str")
def bad_str(kind: str) -> Any:
    CALLS[kind] = CALLS.get(kind, 0) + 1
    raise _BadStr()


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    CALLS.clear()
    with Client(store_url) as c:
        yield c


CALL_AND_CATCH = """
    name: bad_values
    states:
      call:
        type: activity
        activity: jl.bad_result
        input: "{{ input.kind }}"
        retry: {max_attempts: 3, initial_interval: 10ms}
        result: r
        catch: [{errors: ["*"], result: err, next: caught}]
        end: true
      caught:
        type: succeed
        output: "{{ vars.err }}"
"""


@pytest.mark.parametrize("kind", sorted(BAD_RESULTS))
def test_an_unstorable_result_fails_the_step_once_and_is_caught(
    client: Client, tmp_path: Path, kind: str
) -> None:
    run = run_to_end(client, write_workflow(tmp_path, CALL_AND_CATCH), {"kind": kind})
    assert run.status == "completed", run.error
    expected = "ResultTooLarge" if kind == "too_large" else "ResultNotSerializable"
    assert run.output["type"] == expected
    assert "cannot be kept in the run" in run.output["message"]
    assert CALLS[kind] == 1, "not retried: the same result would come back"
    assert len(of_type(history(client, run.id), "ActivityStarted")) == 1


def test_an_error_whose_str_raises_is_retried_and_reported(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: bad_str
        states:
          call:
            type: activity
            activity: jl.bad_str
            input: s
            retry: {max_attempts: 2, initial_interval: 10ms}
            end: true
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == "_BadStr"
    assert "str() raised ValueError" in run.error["message"]
    assert CALLS["s"] == 2, "an ordinary failure follows the retry policy"


@pytest.mark.parametrize(
    ("template", "input_", "reason"),
    [
        ("{{ [1] * 10**7 }}", {}, "repeating a sequence 10,000,000 items long"),
        ("{{ input.s * input.n }}", {"s": "ab", "n": 10**8}, "200,000,000 items"),
        ("{{ 2 ** input.n }}", {"n": 20000}, "a power of about 40,000 bits"),
        ("{{ 2 ** 20000 }}", {}, "a power of about 40,000 bits"),
        ("{{ (1e308) * 10 }}", {}, "NaN or Infinity"),
        ("{{ 9e999 }}", {}, "beyond the float range"),
        ("{% for i in range(100000) %}{{ 'abcdefghijk' }}{% endfor %}", {}, "1,100,000 characters"),
    ],
    ids=["repeat", "repeat_input", "power_input", "power", "overflow", "float_literal", "render"],
)
def test_templates_cannot_build_unbounded_or_unstorable_values(
    client: Client, tmp_path: Path, template: str, input_: Any, reason: str
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: big_template
        states:
          build:
            type: set
            vars: {{x: {template!r}}}
            end: true
        """,
    )
    run = run_to_end(client, wf, input_)
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionError"
    assert reason in run.error["message"]


def test_small_products_and_powers_still_work(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: small
        states:
          build:
            type: succeed
            output:
              line: "{{ '-' * 5 }}"
              grid: "{{ [0] * 3 }}"
              big: "{{ 2 ** 100 }}"
              area: "{{ input.w * input.h }}"
              pairs: "{{ input.d.items() }}"
        """,
    )
    run = run_to_end(client, wf, {"w": 3, "h": 4, "d": {"a": 1}})
    assert run.status == "completed", run.error
    assert run.output == {
        "line": "-----",
        "grid": [0, 0, 0],
        "big": 2**100,
        "area": 12,
        "pairs": [["a", 1]],
    }


def test_validate_reports_no_internal_error_for_a_huge_constant(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: huge_constant
        vars: {x: "{{ 2 ** 20000 }}", y: "{{ 9e999 }}"}
        states:
          done: {type: succeed}
        """,
    )
    proc = run_cli("validate", str(wf))
    assert "TF900" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("inf"), "NaN or Infinity"),
        ({"a": ["\udc80"]}, "lone surrogate"),
        (10**5000, "4,300 digits"),
        (_deep(100_000), "nested too deeply"),
        ({1, 2}, "not JSON serializable"),
    ],
    ids=["inf", "surrogate", "huge_int", "deep", "set"],
)
def test_check_names_the_reason(value: Any, reason: str) -> None:
    with pytest.raises(NotJsonData) as caught:
        check(value)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("9" * 5000, "4,300 digits"),
        ('"\\ud800"', "lone surrogate"),
        ('{"a": 1', "line 1, column 8"),
    ],
    ids=["nan", "infinity", "deep", "huge_int", "surrogate", "syntax"],
)
def test_parse_is_strict(text: str, reason: str) -> None:
    with pytest.raises(NotJsonData) as caught:
        parse(text)
    assert reason in caught.value.reason


def test_parse_accepts_ordinary_json() -> None:
    assert parse('{"a": [1, 2.5, "é", null, true]}') == {"a": [1, 2.5, "é", None, True]}


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.5, "b": [1, 2, {"c": 'é"\n\u2028'}], "d": None, "e": True, "f": 1e300},
        {"big": 10**40, "neg": -0.0, "empty": {}, "list": [], "nested": [[[]]]},
        {1: "int key", "x": False},
        {"lone": "\ud800", "x": 1},
        {"deep": _nested(300)},
        "a string",
        7,
    ],
    ids=["plain", "big_int", "int_key", "surrogate", "deep", "string", "int"],
)
def test_the_store_encodes_as_json_dumps_does(value: Any) -> None:
    """The store's encoder is orjson with the standard library for what orjson refuses (big
    integers, keys that are not strings, lone surrogates, deep nesting): the text must be the
    standard library's, byte for byte. (NaN and Infinity never reach a store: see
    test_parse_is_strict and the checks where values enter a run.)"""
    import json

    from interpreter.store.base import dumps

    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
