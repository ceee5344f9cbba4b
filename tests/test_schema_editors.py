"""The published JSON Schema as editors use it: a description with a YAML example per state
type, and the limits a schema can hold (flagged by any JSON Schema validator), while
`tideflow validate` keeps reporting those limits with lint's codes (TF210, TF211, TF215, TF216)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from dsl import load_schema, validate_text
from dsl.durations import DurationError, parse_duration
from dsl.model import DURATION_PATTERN
from dsl.state_examples import STATE_EXAMPLES

SCHEMA = load_schema()
EDITOR = Draft202012Validator(SCHEMA)  # what an editor's validator does with the file


def workflow(states: str) -> str:
    return 'dsl: "1.0"\nname: ex\nsignals: {approve: {}}\nstates:\n' + textwrap.indent(states, "  ")


def keywords(errors: Iterable[ValidationError]) -> set[str]:
    """The keywords that failed, down through anyOf branches (a retry is a policy or a list)."""
    found: set[str] = set()
    for error in errors:
        found.add(str(error.validator))
        found |= keywords(error.context or ())
    return found


def test_every_state_type_has_a_markdown_description_with_its_example() -> None:
    state = SCHEMA["$defs"]["State"]
    names = state["properties"]["type"]["enum"]
    assert set(names) == set(STATE_EXAMPLES)
    markdown = state["properties"]["type"]["markdownEnumDescriptions"]
    assert len(markdown) == len(names) == len(state["properties"]["type"]["enumDescriptions"])
    for name, text in zip(names, markdown, strict=True):
        assert text.startswith(f"**{name}**: ")
        assert f"```yaml\n{STATE_EXAMPLES[name]}```" in text
        assert "docs/dsl.md#" in text
    for branch in state["allOf"]:
        definition = SCHEMA["$defs"][branch["then"]["$ref"].rsplit("/", 1)[1]]
        assert "```yaml" in definition["markdownDescription"]


@pytest.mark.parametrize("name", sorted(STATE_EXAMPLES))
def test_each_example_is_a_valid_workflow(name: str) -> None:
    example = STATE_EXAMPLES[name]
    text = workflow(example + ("done: {type: succeed}\n" if "done" in example else ""))
    result = validate_text(text, f"{name}.yaml")
    errors = [d for d in result.diagnostics if d.severity.value == "error"]
    assert not errors, [d.message for d in errors]
    assert not list(EDITOR.iter_errors(result.document.data if result.document else None))


BAD_FOR_EDITORS = [
    ("retry: {max_attempts: 0}", "TF216", "minimum"),
    ("retry: {backoff: 0.5}", "TF215", "minimum"),
    ("retry: {initial_interval: 30 secs}", "TF210", "pattern"),
    ("timeout: {start_to_close: 0}", "TF211", "exclusiveMinimum"),
    ("timeout: {start_to_close: -1.5}", "TF211", "exclusiveMinimum"),
]


@pytest.mark.parametrize(("setting", "code", "keyword"), BAD_FOR_EDITORS)
def test_the_schema_holds_the_limits_and_lint_still_reports_them(
    setting: str, code: str, keyword: str
) -> None:
    text = workflow(
        f"call:\n  type: activity\n  activity: a.b\n  {setting}\n  next: done\n"
        "done: {type: succeed}\n"
    )
    result = validate_text(text, "limits.yaml")
    assert result.document is not None
    editor = list(EDITOR.iter_errors(result.document.data))
    assert keyword in keywords(editor)
    codes = [(d.code, d.line) for d in result.diagnostics]
    assert codes == [(code, 8)], codes  # lint's code at the key's line, no TF1xx before it


@pytest.mark.parametrize(
    "value",
    ["30s", "1h30m", "100MS", "2w", "PT1H30M", "pt5m", "P1D", "P1DT2H", "5", "1.5", ".5",
     "1e3", "1_000", " 30s ", "{{ input.timeout }}", "{{ n }}s", "{% if x %}1s{% endif %}"],
)  # fmt: skip
def test_the_duration_pattern_accepts_every_duration_and_template(value: str) -> None:
    assert re.search(DURATION_PATTERN, value)
    text = workflow(
        f"nap: {{type: sleep, duration: {value!r}, next: done}}\ndone: {{type: succeed}}\n"
    )
    result = validate_text(text, "d.yaml")
    assert result.document is not None and not list(EDITOR.iter_errors(result.document.data))


@pytest.mark.parametrize("value", ["abc", "30 s", "P", "PT", "1x", "5 minutes", "1h 30m"])
def test_the_duration_pattern_refuses_what_does_not_parse(value: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)
    assert not re.search(DURATION_PATTERN, value)
