"""A quick answer to "is this a valid JSON Schema (draft 2020-12)?" for the schemas workflows
usually hold, so that lint (TF231) needs jsonschema only for the others.

jsonschema takes about 40 ms to import and to load its meta-schemas, more than the rest of
`tideflow validate` for a small file. Most input, signal and update schemas use a handful of
keywords (type, properties, required, items, enum, minimum...): for those the meta-schema's
rules are simple, and `certainly_valid` checks them here. It answers True only when it is sure;
any keyword it does not know, or a value it does not accept, gives False, and the caller asks
jsonschema, which gives the verdict and the message. So the answer with or without this module
is the same (tests/test_common_schema.py compares the two on generated schemas).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
_MAX_DEPTH = 32  # deeper schemas are rare: jsonschema checks them


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float  # not bool, as jsonschema counts it


def _is_count(value: object) -> bool:
    # An integer >= 0. jsonschema also accepts 2.0; such files are left to it.
    return type(value) is int and value >= 0


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_boolean(value: object) -> bool:
    return isinstance(value, bool)


def _is_anything(value: object) -> bool:
    return True


def _is_array(value: object) -> bool:
    return isinstance(value, list)


def _is_positive_number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and value > 0


def _is_unique_strings(value: object) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(item, str) for item in value)
        and len(set(value)) == len(value)
    )


def _is_type(value: object) -> bool:
    if isinstance(value, str):
        return value in _SIMPLE_TYPES
    return (
        isinstance(value, list)
        and _is_unique_strings(value)
        and len(value) > 0
        and set(value) <= _SIMPLE_TYPES
    )


def _is_regex(value: object) -> bool:
    # The meta-schema's format "regex", as jsonschema's format checker tests it.
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


# The keywords whose value is not a schema, with the meta-schema's rule for the value.
_VALUE_RULES: dict[str, Callable[[object], bool]] = {
    "type": _is_type,
    "enum": _is_array,
    "const": _is_anything,
    "multipleOf": _is_positive_number,
    "maximum": _is_number,
    "exclusiveMaximum": _is_number,
    "minimum": _is_number,
    "exclusiveMinimum": _is_number,
    "maxLength": _is_count,
    "minLength": _is_count,
    "pattern": _is_regex,
    "maxItems": _is_count,
    "minItems": _is_count,
    "uniqueItems": _is_boolean,
    "maxProperties": _is_count,
    "minProperties": _is_count,
    "required": _is_unique_strings,
    "format": _is_string,
    "title": _is_string,
    "description": _is_string,
    "$comment": _is_string,
    "default": _is_anything,
    "examples": _is_array,
    "deprecated": _is_boolean,
    "readOnly": _is_boolean,
    "writeOnly": _is_boolean,
}
_ONE_SCHEMA = frozenset({"items", "additionalProperties", "not"})
_SCHEMA_MAPS = frozenset({"properties", "$defs"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})  # non-empty


def certainly_valid(schema: Any, depth: int = 0) -> bool:
    """True when `schema` is sure to be a valid draft 2020-12 JSON Schema; False when it may
    not be (jsonschema then decides)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return False
    for key, value in schema.items():
        rule = _VALUE_RULES.get(key)
        if rule is not None:
            if not rule(value):
                return False
        elif key in _ONE_SCHEMA:
            if not certainly_valid(value, depth + 1):
                return False
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, dict) or not all(
                certainly_valid(sub, depth + 1) for sub in value.values()
            ):
                return False
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                return False
            if not all(certainly_valid(sub, depth + 1) for sub in value):
                return False
        else:
            return False  # a keyword not covered here ($ref, if, x-...): ask jsonschema
    return True
