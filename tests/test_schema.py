"""The committed JSON Schema (drift guard, shape) and the schema check's diagnostics (TF1xx)."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from dsl import (
    Position,
    ValidationResult,
    Workflow,
    load_schema,
    schema_check,
    schema_export,
    validate,
    validate_file,
    validate_text,
)
from dsl.loader import load_file, load_text
from dsl.schema_check import check_schema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schemas" / "workflow.schema.json"
FIXTURES = Path(__file__).parent / "fixtures" / "invalid"
EXPECTED: dict[str, list[dict[str, object]]] = json.loads(
    (FIXTURES / "expected.json").read_text(encoding="utf-8")
)
SCHEMA_FIXTURES = sorted(name for name in EXPECTED if name.startswith("tf1"))
_DECLARES_DSL = re.compile(r"""(?m)(?:^|[{,])\s*["']?dsl["']?\s*:""")


def _sample_files() -> list[Path]:
    files = [
        p
        for p in sorted((ROOT / "samples").rglob("*"))
        if p.suffix in (".yaml", ".yml", ".json") and _DECLARES_DSL.search(p.read_text("utf-8"))
    ]
    return files


SAMPLES = _sample_files()

VALID = """\
dsl: "1.0"
name: demo
input_schema:
  type: object
  required: [customer]
  properties:
    customer:
      type: object
      properties:
        id: {type: integer}
states:
  charge:
    type: activity
    activity: charge_card
    retry: {max_attempts: 3}
    next: done
  done:
    type: succeed
"""


def _check(text: str) -> list[tuple[int, int, str]]:
    document = load_text(textwrap.dedent(text), "s.yaml").document
    assert document is not None
    return sorted((d.line, d.column, d.code) for d in check_schema(document))


# --- the committed file --------------------------------------------------------------------


def test_committed_schema_matches_the_model() -> None:
    """Drift guard: regenerate with `python -m dsl.schema_export` after changing dsl/model.py."""
    assert COMMITTED.read_text(encoding="utf-8") == schema_export.render()


def test_load_schema_returns_the_committed_file() -> None:
    assert load_schema() == json.loads(COMMITTED.read_text(encoding="utf-8"))
    load_schema()["title"] = "changed"
    assert load_schema()["title"] != "changed"  # callers get a fresh copy


def test_schema_header_and_meta_validity() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://")
    assert schema["title"] and schema["description"]
    Draft202012Validator.check_schema(schema)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_every_language_object_is_closed_and_documented() -> None:
    schema = load_schema()
    with_properties = [o for o in _objects(schema) if "properties" in o and "if" not in o]
    assert len(with_properties) > 15
    for obj in with_properties:
        if obj.get("title") == "State":  # the dispatcher: each branch is closed
            continue
        if set(obj["properties"]) == {"type"} and "const" in obj["properties"]["type"]:
            continue  # the `if` part of the dispatcher
        assert obj.get("additionalProperties") is False, obj.get("title")
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{obj.get('title')}.{name} has no description"


def test_user_schemas_and_templates_stay_open() -> None:
    props = load_schema()["properties"]
    assert props["input_schema"]["additionalProperties"] is True
    assert "additionalProperties" not in props["output"]  # any JSON value
    data = {
        "dsl": "1.0",
        "name": "open",
        "input_schema": {"type": "object", "x-anything": {"nested": True}},
        "vars": {"deep": {"any": [{"thing": 1}]}},
        "signals": {"go": {"schema": {"type": "object", "whatever": 1}}},
        "states": {"s": {"type": "succeed", "output": {"free": {"form": True}}}},
    }
    assert list(Draft202012Validator(load_schema()).iter_errors(data)) == []


def test_no_one_of_walls() -> None:
    text = COMMITTED.read_text(encoding="utf-8")
    assert '"oneOf"' not in text and '"discriminator"' not in text


# --- samples and fixtures against schema and model -----------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_pass_schema_and_model(path: Path) -> None:
    document = load_file(path).document
    assert document is not None
    assert check_schema(document) == []
    Workflow.model_validate(document.data)
    Workflow.model_validate(document.data, strict=True)


def test_there_are_samples_or_skip() -> None:
    if not SAMPLES:
        pytest.skip("no samples yet")
    assert all(p.exists() for p in SAMPLES)


@pytest.mark.parametrize("name", SCHEMA_FIXTURES)
def test_schema_fixture(name: str) -> None:
    result = validate_file(FIXTURES / name)
    assert [{"code": d.code, "line": d.line} for d in result.diagnostics] == EXPECTED[name]
    assert result.workflow is None
    for d in result.diagnostics:
        assert d.hint, d
        assert "is not valid under any of the given schemas" not in d.message


@pytest.mark.parametrize("name", SCHEMA_FIXTURES)
def test_schema_fixture_rejected_by_schema_and_model(name: str) -> None:
    """Strict mode: in lax mode pydantic would coerce "3" to 3; the pipeline never hands it
    such data, since the schema check runs before the lax model is built."""
    document = load_file(FIXTURES / name).document
    assert document is not None
    assert list(Draft202012Validator(load_schema()).iter_errors(document.data))
    with pytest.raises(ValidationError):
        Workflow.model_validate(document.data, strict=True)


# --- messages ------------------------------------------------------------------------------


def test_unknown_key_points_at_the_key_with_did_you_mean() -> None:
    document = load_text(VALID.replace("    next: done", "    nexxt: done\n    end: true"))
    assert document.document is not None
    [d] = check_schema(document.document)
    assert (d.code, d.line, d.column) == ("TF101", 16, 5)
    assert d.path == ("states", "charge", "nexxt")
    assert d.hint == 'did you mean "next"?'


def test_unknown_key_of_another_state_type() -> None:
    result = validate_text(VALID.replace("retry: {max_attempts: 3}", "duration: 5s"))
    [d] = result.diagnostics
    assert d.code == "TF101"
    assert d.hint is not None and "sleep" in d.hint


def test_unknown_state_type_suggests() -> None:
    [d] = validate_text(VALID.replace("type: activity", "type: Activity")).diagnostics
    assert d.code == "TF104" and d.position == Position(13, 11)
    assert d.hint is not None and d.hint.startswith('did you mean "activity"?')


def test_errors_inside_a_state_are_reported_for_its_type_only() -> None:
    """One finding per problem, for the branch the state's `type` selects."""
    text = VALID.replace("retry: {max_attempts: 3}", "retry: {max_attempts: many}\n    colour: red")
    found = _check(text)
    assert sorted(c for _, _, c in found) == ["TF101", "TF103"]


def test_several_problems_in_one_file_are_all_reported_once() -> None:
    text = """\
    dsl: "1.0"
    name: bad name
    states:
      a:
        type: activity
        activity: x
        retry: {max_attempts: "3"}
        next: b
      b:
        type: fail
        message: true
    """
    found = _check(text)
    # name pattern, quoted number, fail without `error`, boolean message
    assert found == [(2, 7, "TF105"), (7, 27, "TF103"), (9, 3, "TF102"), (11, 14, "TF103")]


def test_missing_required_key_points_at_the_owner() -> None:
    [d] = validate_text(VALID.replace("    activity: charge_card\n", "")).diagnostics
    assert (d.code, d.line, d.column) == ("TF102", 12, 3)
    assert d.path == ("states", "charge", "activity")


def test_quoted_dsl_hint() -> None:
    [d] = validate_text(VALID.replace('"1.0"', "1.0")).diagnostics
    assert d.code == "TF104" and "quote" in (d.hint or "")


def test_null_for_an_optional_object_is_accepted() -> None:
    assert _check(VALID.replace("retry: {max_attempts: 3}", "retry: null")) == []


def test_pattern_end_anchor_follows_json_schema() -> None:
    """`$` means end of text (ECMA-262), not "before a final newline" (Python)."""
    result = validate_text(VALID.replace("name: demo", 'name: "demo\\n"'))
    assert [d.code for d in result.diagnostics] == ["TF105"]


def test_wrong_type_for_optional_object_reports_the_object_type() -> None:
    assert _check(VALID.replace("retry: {max_attempts: 3}", "retry: 3")) == [(15, 12, "TF103")]


# --- run input -----------------------------------------------------------------------------


def test_input_data_checked_against_input_schema() -> None:
    result = validate_text(VALID, "w.yaml", input_data={"customer": {"id": "abc"}})
    [d] = result.diagnostics
    assert d.code == "TF110"
    assert "/customer/id" in d.message
    assert d.position == Position(3, 1)  # the input_schema key
    assert validate_text(VALID, input_data={"customer": {"id": 7}}).ok
    missing = validate_text(VALID, input_data={})
    assert [d.code for d in missing.diagnostics] == ["TF110"]
    assert "customer" in missing.diagnostics[0].message


def test_input_without_input_schema_is_accepted() -> None:
    text = VALID.split("input_schema:")[0] + "states:" + VALID.split("\nstates:")[1]
    assert validate_text(text, input_data=[1, 2, 3]).ok


def test_no_input_means_no_input_check() -> None:
    assert validate_text(VALID).ok


# --- pipeline ------------------------------------------------------------------------------


def test_result_shape() -> None:
    result = validate_text(VALID, "w.yaml")
    assert isinstance(result, ValidationResult)
    assert result.ok and result.file == "w.yaml"
    assert result.workflow is not None and result.workflow.name == "demo"
    assert result.document is not None and result.document.file == "w.yaml"


def test_model_drift_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the schema accepted something the model rejects, say so instead of crashing."""
    monkeypatch.setattr(schema_check, "check_schema", lambda document: [])
    result = validate_text(VALID.replace("retry: {max_attempts: 3}", "retry: {max_attempts: x}"))
    [d] = result.diagnostics
    assert d.code == "TF108"
    assert d.path == ("states", "charge", "retry", "max_attempts")
    assert d.position == Position(15, 27)
    assert result.workflow is None


def test_lint_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(validate.importlib, "import_module", missing)
    assert validate._lint_function() is None
    assert validate_text(VALID).ok


def test_lint_crash_is_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(validate, "_lint_function", lambda: broken)
    result = validate_text(VALID)
    [d] = result.diagnostics
    assert d.code == "TF900" and "boom" in d.message
    assert not result.ok


def test_lint_runs_after_a_clean_schema_check() -> None:
    pytest.importorskip("dsl.lint")
    result = validate_text(VALID.replace("next: done", "next: nowhere"))
    assert [d.code for d in result.diagnostics if d.code.startswith("TF2")]


def test_diagnostics_are_sorted() -> None:
    text = VALID.replace("name: demo", "name: bad name").replace("type: succeed", "type: nope")
    lines = [d.line for d in validate_text(text).diagnostics]
    assert lines == sorted(lines) and len(lines) == 2


def test_strict_model_fast_path_agrees_with_schema() -> None:
    """Where the strict model accepts data, the schema must too (the fast path relies on it)."""
    for path in SAMPLES:
        document = load_file(path).document
        assert document is not None
        if validate._strict_model(document.data) is not None:
            assert check_schema(document) == []


def test_input_schema_with_remote_ref_is_not_fetched() -> None:
    text = VALID.replace("id: {type: integer}", 'id: {$ref: "https://example.com/id.json"}')
    result = validate_text(text, input_data={"customer": {"id": 1}})
    [d] = [d for d in result.diagnostics if d.code == "TF110"]
    assert "cannot be resolved" in d.message and "https://example.com/id.json" in d.message
