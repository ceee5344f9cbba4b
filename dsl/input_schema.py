"""A run input as its `input_schema` means it: `default` values filled in, `format` checked.

Used wherever an input meets its schema: `Client.start` (CLI `run` / `start`), child runs, and
`tideflow validate --input` (TF110), so the three agree.

- **Defaults.** Before the input is checked, every property the schema gives a `default` and
  the input leaves out is filled in, also inside nested objects (a property's `properties`),
  list items (`items`), `allOf` parts and local `$ref`s (`#/$defs/...`). A missing input (null)
  to a schema of `type: object` starts as `{}`. `anyOf` / `oneOf` are not followed: which branch
  applies is not known before the check. The input is never changed in place.
- **Formats.** `date-time`, `date`, `email`, `uri` and `uuid` are checked (draft 2020-12 only
  annotates them by default), with jsonschema's format checker; `date-time` (RFC 3339, with a
  time zone) and `uri` (a scheme, then something) use checkers of our own so that the result
  does not depend on which optional packages jsonschema finds installed.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

CHECKED_FORMATS = ("date-time", "date", "email", "uri", "uuid")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_MAX_DEPTH = 64


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats apply to strings only
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(_SCHEME.match(parts.scheme)) and bool(parts.netloc or parts.path)


@lru_cache(maxsize=1)
def format_checker() -> Any:
    """jsonschema's FormatChecker limited to CHECKED_FORMATS, with our date-time and uri (one
    per process: it is never changed once made)."""
    from jsonschema import FormatChecker

    base = FormatChecker()
    checker = FormatChecker(formats=())
    for name in ("date", "email", "uuid"):
        checker.checkers[name] = base.checkers[name]
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    return checker


def validator(schema: dict[str, Any]) -> Any:
    """A draft 2020-12 (or the schema's own `$schema`) validator that checks formats. Made once
    per schema (by its JSON text) and kept: every run of a workflow, every child of a map and
    every `tideflow test` case checks its input against the same few schemas."""
    try:
        # Unsorted: the keywords keep their order, and with it the order errors are found in.
        text = json.dumps(schema)
    except (TypeError, ValueError):  # not JSON data (a caller's own objects): not kept
        return _new_validator(schema)
    return _validator_of(text)


@lru_cache(maxsize=256)
def _validator_of(schema_text: str) -> Any:
    return _new_validator(json.loads(schema_text))  # a copy: the caller's dict may change


def _new_validator(schema: Any) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=Draft202012Validator)
    return cls(schema, format_checker=format_checker())


def with_defaults(schema: Any, value: Any) -> Any:
    """`value` with the schema's defaults filled in (a new value; `value` is not changed)."""
    if not isinstance(schema, dict):
        return value
    if value is None and schema.get("type") == "object":
        value = {}
    return _fill(schema, value, schema, 0)


def _resolve(root: dict[str, Any], schema: dict[str, Any], depth: int) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/") or depth > _MAX_DEPTH:
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return schema
        node = node[part]
    return node if isinstance(node, dict) else schema


def _fill(schema: Any, value: Any, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return value
    schema = _resolve(root, schema, depth)
    for part in schema.get("allOf") or []:
        value = _fill(part, value, root, depth + 1)
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict):
        filled: dict[str, Any] | None = None
        for key, sub in properties.items():
            if not isinstance(sub, dict):
                continue
            sub = _resolve(root, sub, depth)
            if key in value:
                new = _fill(sub, value[key], root, depth + 1)
                if new is value[key]:
                    continue
            elif "default" in sub:
                new = _fill(sub, copy.deepcopy(sub["default"]), root, depth + 1)
            else:
                continue
            if filled is None:
                filled = dict(value)
            filled[key] = new
        if filled is not None:
            value = filled
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        new_items = [_fill(items, item, root, depth + 1) for item in value]
        if any(a is not b for a, b in zip(new_items, value, strict=True)):
            value = new_items
    return value
