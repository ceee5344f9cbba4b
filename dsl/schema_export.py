"""Generate the committed JSON Schema from the pydantic model.

    python -m dsl.schema_export            # rewrite schemas/workflow.schema.json
    python -m dsl.schema_export --check    # exit 1 when the committed file is stale

Post-processing of `Workflow.model_json_schema()`, and why:
- the state union becomes `$defs/State` with one `if type == X then $ref X` per type instead
  of pydantic's `oneOf` + OpenAPI `discriminator`: plain JSON Schema validators (and editors)
  then report the errors of the one state type that applies, never a `oneOf` wall;
- `anyOf: [T, null]` of plain types collapses to `type: [T, "null"]` for shorter messages;
- auto-generated property titles and `default: null` are noise and are dropped;
- draft 2020-12 `$schema`, `$id`, a title and a description are added at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsl.formatters import DOCS_URL
from dsl.model import Workflow
from dsl.state_examples import STATE_EXAMPLES

# The schema's identity and where it can be fetched (docs/editors.md): the committed file on the
# main branch of the project repository (PROJECT_URL in dsl/formatters.py).
SCHEMA_ID = "https://raw.githubusercontent.com/tideflow/tideflow/main/schemas/workflow.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "workflow.schema.json"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_FILE

_TITLE = "tideflow workflow"
_DESCRIPTION = (
    "A tideflow workflow file (DSL 1.0): a durable state machine. Generated from dsl/model.py "
    "by `python -m dsl.schema_export`; do not edit by hand."
)
# Keywords that only constrain one JSON type, so branches of different types can be merged.
_TYPE_ONLY = {
    "type",
    "description",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "additionalProperties",
    "minProperties",
    "required",
    "x-tideflow-lint",  # which of the keywords above lint reports (dsl/schema_check.py)
}


def generate() -> dict[str, Any]:
    """The schema as a JSON-ready dict (deterministic)."""
    raw = Workflow.model_json_schema(by_alias=True)
    defs: dict[str, Any] = raw.pop("$defs")
    state_types: dict[str, str] = {}
    cleaned_defs = {name: _clean(schema, state_types) for name, schema in defs.items()}
    root = _clean(raw, state_types)
    for name, ref in state_types.items():
        definition = cleaned_defs[ref.rsplit("/", 1)[1]]
        definition["markdownDescription"] = _markdown(name, definition)
    cleaned_defs["State"] = _state_schema(state_types, cleaned_defs)
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": _TITLE,
        "description": _DESCRIPTION,
    }
    root.pop("title", None)
    root.pop("description", None)
    schema.update(root)
    schema["$defs"] = dict(sorted(cleaned_defs.items()))
    return schema


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


def _clean(schema: Any, state_types: dict[str, str], *, in_properties: bool = False) -> Any:
    if isinstance(schema, list):
        return [_clean(item, state_types) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "discriminator" in schema and "oneOf" in schema:
        mapping: dict[str, str] = schema["discriminator"]["mapping"]
        state_types.update(mapping)
        return {"$ref": "#/$defs/State"}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {
                name: _clean(prop, state_types, in_properties=True) for name, prop in value.items()
            }
        elif (key == "default" and value is None) or (key == "title" and in_properties):
            continue
        else:
            out[key] = _clean(value, state_types)
    if "anyOf" in out:
        out = _collapse_any_of(out)
    return out


def _collapse_any_of(schema: dict[str, Any]) -> dict[str, Any]:
    branches: list[dict[str, Any]] = []
    for branch in schema["anyOf"]:  # flatten nested anyOf without own keywords
        if set(branch) <= {"anyOf", "description"}:
            branches.extend(branch["anyOf"])
            if "description" in branch and "description" not in schema:
                schema["description"] = branch["description"]
        else:
            branches.append(branch)
    types: list[str] = []
    merged: dict[str, Any] = {}
    for branch in branches:
        branch_type = branch.get("type")
        branch_types = [branch_type] if isinstance(branch_type, str) else branch_type
        if (
            not isinstance(branch_types, list)
            or not set(branch) <= _TYPE_ONLY
            or any(t in types for t in branch_types)
        ):
            schema["anyOf"] = branches
            return schema
        types.extend(branch_types)
        for key, value in branch.items():
            if key == "type":
                continue
            if key == "description":
                merged.setdefault(key, value)
            elif key in merged:  # two branches constrain the same keyword: keep anyOf
                schema["anyOf"] = branches
                return schema
            else:
                merged[key] = value
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if "description" in merged and "description" not in out:
        out["description"] = merged["description"]
    merged.pop("description", None)
    out["type"] = types if len(types) > 1 else types[0]
    out.update(merged)
    return out


_ANCHORS = {"compensate": "compensate-state"}  # docs/dsl.md headings that differ from the type


def _markdown(name: str, definition: dict[str, Any]) -> str:
    """A state type's description with its YAML example (dsl/state_examples.py)."""
    return (
        f"**{name}**: {definition.get('description', '')}\n\n"
        f"```yaml\n{STATE_EXAMPLES[name]}```\n\n"
        f"[docs/dsl.md: {name}]({DOCS_URL}/dsl.md#{_ANCHORS.get(name, name)})"
    )


def _state_schema(state_types: dict[str, str], defs: dict[str, Any]) -> dict[str, Any]:
    names = sorted(state_types)
    described = [defs[state_types[n].rsplit("/", 1)[1]] for n in names]
    return {
        "title": "State",
        "description": "One state of a state machine; `type` selects the keys it accepts.",
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "description": "State type.",
                "enum": names,
                # Shown beside each value in completion (VS Code, the YAML language server).
                "enumDescriptions": [d.get("description", "") for d in described],
                "markdownEnumDescriptions": [d["markdownDescription"] for d in described],
            }
        },
        "allOf": [
            {
                "if": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": name}},
                },
                "then": {"$ref": state_types[name]},
            }
            for name in names
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dsl.schema_export", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the file differs from a fresh generation"
    )
    args = parser.parse_args(argv)
    fresh = render()
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot read {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
        if current != fresh:
            print(f"{args.output} is stale: run python -m dsl.schema_export", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(fresh, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
