"""dsl/common_schema.py answers "valid JSON Schema" only where jsonschema agrees, and does
answer it for the schemas the samples hold (else lint would import jsonschema for nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from dsl.common_schema import certainly_valid
from dsl.loader import load_file

ROOT = Path(__file__).resolve().parent.parent


def _jsonschema_accepts(schema: Any) -> bool:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return False
    return True


_ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.floats(-3, 5)
    | st.just(float("nan"))
    | st.sampled_from(["string", "object", "integer", "nope", "a+", "(", "[a-z]", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_TYPES = st.sampled_from(["string", "integer", "number", "object", "null", "strnig"])


def _keyword_values(schemas: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    """Each keyword with values that are mostly right for it and sometimes just wrong."""
    counts = st.integers(0, 3)
    bad_counts = st.sampled_from([-1, 1.5, 2.0, True, "1"])
    numbers = st.integers(-2, 3) | st.floats(-2, 3) | st.just(float("nan"))
    bad_numbers = st.sampled_from([True, "1", None, [1]])
    texts = st.text(max_size=3)
    bad_texts = st.sampled_from([1, None, True, ["a"]])
    bad_schemas = st.sampled_from([1, "a", None, [], [{}]])
    schema_maps = st.dictionaries(st.sampled_from(["a", "b"]), schemas, max_size=2)
    bad_maps = st.sampled_from([[], "a", {"a": 1}, {"a": "string"}])
    schema_lists = st.lists(schemas, min_size=1, max_size=2)
    bad_lists = st.sampled_from([[], {}, [1], "a"])
    both: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
        "type": (
            _TYPES | st.lists(_TYPES, min_size=1, max_size=3, unique=True),
            st.sampled_from(["strnig", [], ["string", "string"], ["strnig"], 1, None]),
        ),
        "enum": (st.lists(_ANY_VALUE, max_size=3), st.sampled_from(["a", 1, {}, None])),
        "const": (_ANY_VALUE, st.nothing()),
        "multipleOf": (
            st.integers(1, 3) | st.floats(0.5, 3),
            st.sampled_from([0, -1, 0.0, float("nan"), True, "2"]),
        ),
        "maximum": (numbers, bad_numbers),
        "exclusiveMinimum": (numbers, bad_numbers),
        "minLength": (counts, bad_counts),
        "maxItems": (counts, bad_counts),
        "minProperties": (counts, bad_counts),
        "pattern": (st.sampled_from(["a+", "[a-z]", "", "^x$"]), st.sampled_from(["(", "*", 1])),
        "uniqueItems": (st.booleans(), st.sampled_from([0, 1, "true", None])),
        "required": (
            st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
            st.sampled_from([["a", "a"], "a", [1], None, {}]),
        ),
        "format": (texts, bad_texts),
        "title": (texts, bad_texts),
        "description": (texts, bad_texts),
        "default": (_ANY_VALUE, st.nothing()),
        "examples": (st.lists(_ANY_VALUE, max_size=2), st.sampled_from(["a", 1, {}, None])),
        "deprecated": (st.booleans(), st.sampled_from([0, 1, "true", None])),
        "items": (schemas, bad_schemas),
        "additionalProperties": (schemas, bad_schemas),
        "not": (schemas, bad_schemas),
        "properties": (schema_maps, bad_maps),
        "$defs": (schema_maps, bad_maps),
        "allOf": (schema_lists, bad_lists),
        "anyOf": (schema_lists, bad_lists),
        "oneOf": (schema_lists, bad_lists),
    }
    values = {key: _mostly(good, wrong) for key, (good, wrong) in both.items()}
    values.update({"$ref": st.just("#/$defs/a"), "if": schemas, "x-own": _ANY_VALUE})
    return values


def _mostly(good: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` five times in six (a plain `|` would weigh each of wrong's parts as much)."""
    return st.integers(0, 5).flatmap(lambda pick: wrong if pick == 0 else good)


def _schema_dicts(schemas: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    values = _keyword_values(schemas)
    keys = st.lists(st.sampled_from(sorted(values)), unique=True, max_size=4)
    return keys.flatmap(lambda chosen: st.fixed_dictionaries({k: values[k] for k in chosen}))


_SCHEMAS = st.recursive(st.booleans() | st.just({}), _schema_dicts, max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(_SCHEMAS)
def test_certainly_valid_only_when_jsonschema_agrees(schema: Any) -> None:
    if certainly_valid(schema):
        assert _jsonschema_accepts(schema), schema


def _sample_schemas() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for path in sorted((ROOT / "samples").glob("*.yaml")):
        document = load_file(path).document
        if document is None or not isinstance(document.data, dict):
            continue
        data = document.data
        if isinstance(data.get("input_schema"), dict):
            found.append((f"{path.name} input_schema", data["input_schema"]))
        for kind in ("signals", "updates"):
            for name, spec in (data.get(kind) or {}).items():
                if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
                    found.append((f"{path.name} {kind}.{name}", spec["schema"]))
    return found


def test_the_samples_schemas_are_answered_without_jsonschema() -> None:
    schemas = _sample_schemas()
    assert len(schemas) >= 5
    unanswered = [name for name, schema in schemas if not certainly_valid(schema)]
    # A few may use keywords the quick check leaves to jsonschema; most must not.
    assert len(unanswered) <= len(schemas) // 4, unanswered
    for _, schema in schemas:
        assert _jsonschema_accepts(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strnig"},
        {"type": []},
        {"type": ["string", "string"]},
        {"required": ["a", "a"]},
        {"required": "a"},
        {"minLength": -1},
        {"minLength": 1.5},
        {"pattern": "("},
        {"properties": {"a": {"type": 3}}},
        {"items": {"minimum": "0"}},
        {"allOf": []},
        {"multipleOf": 0},
        {"enum": "a"},
        {"$ref": "#/$defs/a"},  # valid, but the quick check leaves $ref to jsonschema
    ],
)
def test_doubtful_schemas_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert not certainly_valid(schema)
