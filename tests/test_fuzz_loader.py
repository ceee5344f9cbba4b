"""Property tests: whatever text or data is thrown at validation, no exception escapes, every
finding is a located Diagnostic, and the schema and the model agree."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dsl import Diagnostic, ValidationResult, validate_text
from dsl import validate as validate_module
from dsl.loader import load_text
from dsl.model import Workflow
from dsl.schema_check import check_schema
from dsl.source import SourceDocument

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
dsl: "1.0"
name: fuzz
input_schema:
  type: object
  properties:
    id: {type: integer}
vars:
  count: 0
  tags: [a, b]
defaults:
  retry: {max_attempts: 3, initial_interval: 1s}
states:
  fetch:
    type: activity
    activity: http
    input: {url: "https://example.com/{{ input.id }}"}
    result: page
    catch:
      - errors: [HttpError]
        next: failed
    next: route
  route:
    type: choice
    choices:
      - when: "{{ vars.page.ok }}"
        next: each
    default: failed
  each:
    type: map
    items: "{{ vars.tags }}"
    states:
      work:
        type: sleep
        duration: 1s
        end: true
    next: done
  done:
    type: succeed
    output: "{{ vars.page }}"
  failed:
    type: fail
    error: FetchFailed
"""

SAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "samples").glob("*.yaml"))]
SEEDS = [BASE, *SAMPLE_TEXTS[:6]]

YAML_ALPHABET = st.sampled_from(
    [*"abcdefxyz019 \n\t:-,[]{}#&*!|>'\"%@`?~.\\", "\r\n", "{{", "}}", "---", "<<: ", "\ufeff"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_sane(result: ValidationResult, text: str) -> None:
    assert isinstance(result, ValidationResult)
    assert isinstance(result.diagnostics, list)
    lines = text.count("\n") + text.count("\r") + 2
    for d in result.diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.code.startswith("TF") and d.code != "TF900", d
        assert d.message
        assert 1 <= d.line <= lines, d
        assert d.column >= 1, d
    if result.document is None:
        assert not result.ok
    if result.workflow is not None:
        assert result.document is not None


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _assert_sane(validate_text(text, "fuzz.yaml"), text)


@FUZZ
@given(st.lists(YAML_ALPHABET, max_size=120).map("".join))
def test_yaml_punctuation_soup(text: str) -> None:
    _assert_sane(validate_text(text, "fuzz.yaml"), text)


_MUTATION = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate", "swap", "indent", "dedent"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.lists(YAML_ALPHABET, max_size=6).map("".join),
)


def _mutate(text: str, mutations: list[tuple[str, int, int, str]]) -> str:
    for kind, a, b, snippet in mutations:
        lines = text.split("\n")
        if kind == "delete" and text:
            start = a % len(text)
            text = text[:start] + text[start + b % 20 :]
        elif kind == "insert":
            at = a % (len(text) + 1)
            text = text[:at] + snippet + text[at:]
        elif kind == "duplicate":
            i = a % len(lines)
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif kind == "swap":
            i, j = a % len(lines), b % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "indent":
            i = a % len(lines)
            lines[i] = " " * (1 + b % 4) + lines[i]
            text = "\n".join(lines)
        elif kind == "dedent":
            i = a % len(lines)
            lines[i] = lines[i][1 + b % 4 :] if lines[i].startswith(" ") else lines[i]
            text = "\n".join(lines)
    return text


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_valid_yaml(seed: str, mutations: list[tuple[str, int, int, str]]) -> None:
    text = _mutate(seed, mutations)
    _assert_sane(validate_text(text, "fuzz.yaml"), text)


@FUZZ
@given(JSON_VALUES)
def test_random_json_documents(value: Any) -> None:
    text = json.dumps(value)
    _assert_sane(validate_text(text, "fuzz.json"), text)


# --- schema and model agree ----------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


_KEYS = st.sampled_from(
    [
        "next",
        "end",
        "type",
        "retry",
        "timeout",
        "catch",
        "states",
        "items",
        "as",
        "errors",
        "max_attempts",
        "backoff",
        "duration",
        "signal",
        "x",
        "result",
        "default",
        "choices",
    ]
)
_DATA_MUTATION = st.tuples(
    st.sampled_from(["replace", "delete", "add"]), st.integers(min_value=0), _KEYS, JSON_VALUES
)


def _mutate_data(data: Any, mutations: list[tuple[str, int, str, Any]]) -> Any:
    data = copy.deepcopy(data)
    for kind, index, key, value in mutations:
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = paths[index % len(paths)]
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if kind == "replace":
            parent[last] = value
        elif kind == "delete":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][key] = value
    return data


BASE_DATA = load_text(BASE).document.data  # type: ignore[union-attr]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_DATA_MUTATION, min_size=1, max_size=3))
def test_schema_and_model_agree(mutations: list[tuple[str, int, str, Any]]) -> None:
    """Strict model accepts => schema accepts (the fast path of validate relies on it), and
    schema accepts => the model builds (no drift, TF108 never fires)."""
    data = _mutate_data(BASE_DATA, mutations)
    assume(isinstance(data, dict))
    document = SourceDocument("m.yaml", "", data)
    schema_errors = check_schema(document)
    if validate_module._strict_model(data) is not None:
        assert schema_errors == [], schema_errors
    if not schema_errors:
        Workflow.model_validate(data)
    for d in schema_errors:
        assert d.code in {"TF101", "TF102", "TF103", "TF104", "TF105", "TF106", "TF107"}, d
