"""The JSON Schema check: the committed schema, compiled once, with every violation turned into
one located diagnostic (codes TF101-TF107, TF199) that says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsl.diagnostics import Diagnostic, Severity
from dsl.durations import DURATION_HELP
from dsl.source import JsonPath, SourceDocument

# jsonschema (about 50 ms to import) is imported where it is used: a valid workflow without
# input or signal schemas is checked by the model alone and never needs it.
if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

SCHEMA_PACKAGE = "dsl.schemas"
SCHEMA_FILE = "workflow.schema.json"

SCHEMA_CODES: dict[str, str] = {
    "TF101": "Unknown key",
    "TF102": "Missing required key",
    "TF103": "Wrong type",
    "TF104": "Invalid value",
    "TF105": "Value does not match the required pattern",
    "TF106": "Empty list or mapping",
    "TF107": "Number out of range",
    "TF108": "Schema and model disagree (internal)",
    "TF110": "Input does not match input_schema",
    "TF199": "Other schema violation",
}

_PATTERN_HINTS = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and _, not starting with a digit",
    r"^[A-Za-z0-9_.\-]+$": "use only letters, digits, _ . and -",
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@lru_cache(maxsize=1)
def _schema_text() -> str:
    try:
        return resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    except ModuleNotFoundError:  # a source checkout: schemas/ sits next to dsl/, not inside it
        root = Path(__file__).resolve().parent.parent
        return (root / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The committed workflow JSON Schema (a fresh copy: callers may modify it)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@lru_cache(maxsize=64)
def _python_regex(pattern: str) -> re.Pattern[str]:
    # In ECMA-262 regexes (the JSON Schema dialect) `$` matches only at the very end of the
    # text; Python's `$` also matches before a final newline, so "name\n" would pass the
    # schema and then fail the model. `\Z` is the ECMA meaning.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _python_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    extend: Any = validators.extend  # untyped in types-jsonschema
    return extend(Draft202012Validator, {"pattern": _pattern})(_without_lint_owned(load_schema()))


LINT_OWNED = "x-tideflow-lint"


def _without_lint_owned(schema: Any) -> Any:
    """The schema minus the limits lint reports itself (max_attempts >= 1 is TF216, a duration's
    form TF210, ...): editors flag them from the published schema as you type, and
    `tideflow validate` reports them once, with lint's code, message and hint."""
    if isinstance(schema, list):
        return [_without_lint_owned(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    owned = schema.get(LINT_OWNED) or {}
    return {
        key: _without_lint_owned(value)
        for key, value in schema.items()
        if key not in owned and key != LINT_OWNED
    }


@lru_cache(maxsize=1)
def _state_keys() -> dict[str, list[str]]:
    """key -> the state types that accept it (for "belongs to another type" hints)."""
    schema = load_schema()
    found: dict[str, list[str]] = {}
    for branch in schema["$defs"]["State"]["allOf"]:
        state_type = branch["if"]["properties"]["type"]["const"]
        definition = schema["$defs"][branch["then"]["$ref"].rsplit("/", 1)[1]]
        for key in definition["properties"]:
            found.setdefault(key, []).append(state_type)
    return found


def check_schema(document: SourceDocument) -> list[Diagnostic]:
    """Every schema violation of `document.data`, one diagnostic per problem."""
    leaves = [leaf for error in _validator().iter_errors(document.data) for leaf in _leaves(error)]
    missing: set[tuple[JsonPath, str]] = set()
    for leaf in leaves:
        required: Any = leaf.validator_value
        if leaf.validator == "required" and isinstance(leaf.instance, dict):
            path = tuple(leaf.absolute_path)
            missing.update((path, k) for k in required if k not in leaf.instance)
    explained: set[tuple[JsonPath, str]] = set()  # missing keys that a misspelt key accounts for
    found: dict[tuple[str, JsonPath], Diagnostic] = {}
    for leaf in leaves:
        for diagnostic in _convert(leaf, document, missing, explained):
            found.setdefault((diagnostic.code, diagnostic.path), diagnostic)
    value_errors = {path for code, path in found if code == "TF104"}
    return [
        d
        for (code, path), d in found.items()
        if not (code == "TF103" and path in value_errors)  # `dsl: 1.0`: one finding, not two
        and not (code == "TF102" and path and (path[:-1], str(path[-1])) in explained)
    ]


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors to report for `error`. In `anyOf: [X, null]` the null branch is never what
    the author meant, so X's errors; in a real union only the most relevant branch's."""
    if error.validator not in ("anyOf", "oneOf"):
        yield error
        return
    branches: Any = error.validator_value
    candidates = [
        sub
        for sub in error.context or ()
        if branches[sub.relative_schema_path[0]] != {"type": "null"}
    ]
    # A branch that refuses the value for its type (a list where a mapping is given) is not
    # what the author meant when another branch takes that type and finds a deeper problem.
    depth = len(error.absolute_path)
    rejected = {
        sub.relative_schema_path[0]
        for sub in candidates
        if sub.validator == "type" and len(sub.absolute_path) == depth
    }
    fitting = [sub for sub in candidates if sub.relative_schema_path[0] not in rejected]
    if fitting:
        candidates = fitting
    if not candidates:
        yield error
    elif len({sub.relative_schema_path[0] for sub in candidates}) == 1:
        for sub in candidates:
            yield from _leaves(sub)
    else:
        from jsonschema.exceptions import best_match, relevance

        best = best_match(candidates, key=relevance)
        if best is not None:
            yield from _leaves(best)


def _convert(
    error: ValidationError,
    doc: SourceDocument,
    missing: set[tuple[JsonPath, str]],
    explained: set[tuple[JsonPath, str]],
) -> Iterator[Diagnostic]:
    keyword = error.validator
    value: Any = error.validator_value
    path: JsonPath = tuple(error.absolute_path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for key in instance:
            if key not in allowed and not any(p.search(str(key)) for p in patterns):
                yield _unknown_key(doc, path, str(key), allowed, missing, explained)
    elif keyword == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                yield _missing_key(doc, path, key, schema)
    elif keyword == "type":
        yield _wrong_type(doc, path, instance, value, schema)
    elif keyword in ("enum", "const"):
        yield _bad_value(doc, path, instance, error)
    elif keyword == "pattern":
        hint = _PATTERN_HINTS.get(str(error.validator_value), schema.get("description"))
        yield _diag(
            doc,
            "TF105",
            path,
            f"{_subject(path)} {_show(instance)} is not valid",
            f"{hint} (pattern {error.validator_value})",
        )
    elif keyword in ("minProperties", "minItems", "minLength"):
        yield _diag(
            doc, "TF106", path, f"{_subject(path)} must not be empty", schema.get("description")
        )
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": "at least", "maximum": "at most"}.get(keyword, "beyond")
        yield _diag(
            doc,
            "TF107",
            path,
            f"{_subject(path)} must be {bound} {error.validator_value}, not {_show(instance)}",
            schema.get("description"),
        )
    else:
        yield _diag(doc, "TF199", path, f"{_subject(path)}: {error.message}", None)


def _unknown_key(
    doc: SourceDocument,
    path: JsonPath,
    key: str,
    allowed: list[str],
    missing: set[tuple[JsonPath, str]],
    explained: set[tuple[JsonPath, str]],
) -> Diagnostic:
    required_here = [k for k in allowed if (path, k) in missing]
    close = difflib.get_close_matches(key, required_here, n=1, cutoff=0.6)
    state_type = _state_type(doc, path)
    owners = _state_keys().get(key, []) if state_type is not None else []
    if close:  # `nxt:` while `next:` is missing is one problem: report it once, here
        explained.add((path, close[0]))
        hint = f'did you mean "{close[0]}"? ({close[0]} is required here)'
    elif owners:
        hint = f'"{key}" is a key of {" / ".join(owners)} states, not of {state_type} states'
    else:
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            hint = f'did you mean "{close[0]}"?'
        else:
            hint = "allowed keys: " + ", ".join(sorted(allowed))
            if not path:
                hint += " (and your own keys starting with x-, e.g. x-shared for YAML anchors)"
    return _diag(
        doc, "TF101", (*path, key), f'unknown key "{key}" in {_where(path)}', hint, key=True
    )


def _missing_key(
    doc: SourceDocument, path: JsonPath, key: str, schema: dict[str, Any]
) -> Diagnostic:
    prop = schema.get("properties", {}).get(key, {})
    hint = f"add {key}: ({prop['description']})" if "description" in prop else f"add {key}:"
    if key == "type" and "enum" in prop:
        hint = "add type: one of " + ", ".join(prop["enum"])
    elif key == "dsl":
        hint = 'add dsl: "1.0" at the top of the file'
    return _diag(
        doc,
        "TF102",
        (*path, key),
        f'{_where(path)} is missing the required key "{key}"',
        hint,
        at=path,
        key=True,
    )


def _wrong_type(
    doc: SourceDocument, path: JsonPath, instance: Any, expected: Any, schema: dict[str, Any]
) -> Diagnostic:
    types = [expected] if isinstance(expected, str) else list(expected)
    types = [t for t in types if t != "null"] or types
    if "integer" in types and "number" in types:
        types.remove("integer")
    wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
    hint = schema.get("description")
    if set(types) == {"string", "number"}:
        hint = f"a duration: {DURATION_HELP}"
    elif "integer" in types and isinstance(instance, str) and instance.strip().isdigit():
        hint = f"write the number without quotes: {instance.strip()}"
    return _diag(
        doc,
        "TF103",
        path,
        f"{_subject(path)} must be {wanted}, not {_describe_value(instance)}",
        hint,
    )


def _bad_value(
    doc: SourceDocument, path: JsonPath, instance: Any, error: ValidationError
) -> Diagnostic:
    value: Any = error.validator_value
    allowed = [value] if error.validator == "const" else list(value)
    is_state_type = len(path) >= 3 and path[-1] == "type" and path[-3] == "states"
    if is_state_type:
        message = f'unknown state type {_show(instance)} in state "{path[-2]}"'
    elif len(allowed) == 1:
        message = f"{_subject(path)} must be {_show(allowed[0])}, not {_show(instance)}"
    else:
        message = f"{_subject(path)} must be one of {', '.join(map(_show, allowed))}, not {_show(instance)}"
    hint = None
    if isinstance(instance, str):
        close = difflib.get_close_matches(instance, [str(a) for a in allowed], n=1, cutoff=0.6)
        if close:
            hint = f'did you mean "{close[0]}"?'
    if path == ("dsl",) and isinstance(instance, int | float) and not isinstance(instance, bool):
        hint = 'quote the version: dsl: "1.0" (unquoted, YAML reads 1.0 as a number)'
    if is_state_type:
        valid = "valid types: " + ", ".join(str(a) for a in allowed)
        hint = f"{hint} {valid}" if hint else valid
    return _diag(doc, "TF104", path, message, hint)


def _diag(
    doc: SourceDocument,
    code: str,
    path: JsonPath,
    message: str,
    hint: str | None,
    *,
    at: JsonPath | None = None,
    key: bool = False,
) -> Diagnostic:
    position = doc.locate(path if at is None else at, key=key)
    return Diagnostic(code, Severity.ERROR, message, doc.file, position, hint, path)


def _state_type(doc: SourceDocument, path: JsonPath) -> str | None:
    """The `type` of the state at `path`, when `path` is a state."""
    if len(path) < 2 or path[-2] != "states":
        return None
    node: Any = doc.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    value = node.get("type") if isinstance(node, dict) else None
    return value if isinstance(value, str) else None


def format_path(path: JsonPath) -> str:
    """states.charge.catch[0].next (keys that are not identifiers are quoted)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _where(path: JsonPath) -> str:
    if not path:
        return "the top level"
    if len(path) >= 2 and path[-2] == "states":
        return f'state "{path[-1]}"'
    return format_path(path)


def _subject(path: JsonPath) -> str:
    return format_path(path) if path else "the top level"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe_value(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({_show(value)})"
    if isinstance(value, int | float):
        return f"a number ({_show(value)})"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


# --- run input -------------------------------------------------------------------------------


def check_input(
    document: SourceDocument, input_schema: dict[str, Any], input_data: Any
) -> list[Diagnostic]:
    """TF110 for each place where `input_data` violates `input_schema`. An invalid schema is
    lint's finding (TF231), so it yields nothing here."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError, best_match
    from jsonschema.validators import validator_for
    from referencing.exceptions import Unresolvable

    try:
        cls = validator_for(input_schema, default=Draft202012Validator)
        cls.check_schema(input_schema)
        from dsl.input_schema import format_checker, with_defaults

        checked = cls(input_schema, format_checker=format_checker())
        errors = list(checked.iter_errors(with_defaults(input_schema, input_data)))
    except SchemaError:
        return []
    except Unresolvable as exc:
        return [
            Diagnostic(
                "TF110",
                Severity.ERROR,
                f"input_schema cannot be checked: $ref {getattr(exc, 'ref', exc)} cannot be resolved",
                document.file,
                document.locate(("input_schema",), key=True),
                "use only local references (#/$defs/...)",
                ("input_schema",),
            )
        ]
    position = document.locate(("input_schema",), key=True)
    found: list[Diagnostic] = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        if error.context:
            error = best_match([error]) or error
        pointer = "".join(
            "/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path
        )
        found.append(
            Diagnostic(
                "TF110",
                Severity.ERROR,
                f"the input does not match input_schema"
                f"{' at ' + pointer if pointer else ''}: {error.message}",
                document.file,
                position,
                "fix the run input, or relax input_schema",
                ("input_schema",),
            )
        )
    return found
