"""Loading: positions of keys and values, YAML features, and every bad-file case (TF0xx)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dsl import Position, Severity, load_limits, validate_file, validate_text, yaml_parser
from dsl.load_limits import MAX_DEPTH, MAX_FILE_BYTES
from dsl.loader import load_file, load_text

FIXTURES = Path(__file__).parent / "fixtures" / "invalid"
EXPECTED: dict[str, list[dict[str, object]]] = json.loads(
    (FIXTURES / "expected.json").read_text(encoding="utf-8")
)
LOADER_FIXTURES = sorted(name for name in EXPECTED if name.startswith("tf0"))


def _codes(text: str) -> list[tuple[str, int, int]]:
    result = load_text(textwrap.dedent(text), "t.yaml")
    return [(d.code, d.line, d.column) for d in result.diagnostics]


# --- the fixture corpus --------------------------------------------------------------------


def test_expected_json_lists_every_fixture() -> None:
    on_disk = {p.name for p in FIXTURES.iterdir() if p.name not in ("expected.json", "README.md")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", LOADER_FIXTURES)
def test_loader_fixture(name: str) -> None:
    result = validate_file(FIXTURES / name)
    found = [{"code": d.code, "line": d.line} for d in result.diagnostics]
    assert found == EXPECTED[name]
    assert not result.ok
    for d in result.diagnostics:
        assert d.file == str(FIXTURES / name)
        assert d.message and d.hint, d  # every loader problem says what and how to fix


@pytest.mark.parametrize("name", LOADER_FIXTURES)
def test_loader_fixture_with_pure_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ruamel.yaml.clib the pure-Python parser gives the same findings."""
    monkeypatch.setattr(yaml_parser, "CPARSER", None)
    result = validate_file(FIXTURES / name)
    assert [{"code": d.code, "line": d.line} for d in result.diagnostics] == EXPECTED[name]


# --- positions -----------------------------------------------------------------------------

DOC = """\
dsl: "1.0"
name: positions
states:
  charge:
    type: activity
    activity: charge_card
    catch:
      - errors: [Timeout, HttpError]
        next: done
    next: done
  done:
    type: succeed
"""


def test_positions_of_keys_and_values() -> None:
    document = load_text(DOC, "p.yaml").document
    assert document is not None
    assert document.key_positions[("states", "charge")] == Position(4, 3)
    assert document.value_positions[("states", "charge", "type")] == Position(5, 11)
    assert document.key_positions[("states", "charge", "catch")] == Position(7, 5)
    assert document.value_positions[("states", "charge", "catch", 0)] == Position(8, 9)
    assert document.value_positions[("states", "charge", "catch", 0, "errors", 1)] == Position(
        8, 27
    )
    assert document.locate(("states", "done", "type"), key=True) == Position(12, 5)
    # a path that does not exist falls back to its nearest ancestor
    assert document.locate(("states", "charge", "retry", "backoff")) == Position(5, 5)


def test_data_is_plain_json() -> None:
    document = load_text(DOC).document
    assert document is not None
    assert document.data["states"]["charge"]["catch"] == [
        {"errors": ["Timeout", "HttpError"], "next": "done"}
    ]
    assert type(document.data) is dict
    assert type(document.data["states"]["charge"]["catch"]) is list


def test_json_file_positions(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        '{\n\t"dsl": "1.0",\n\t"name": "j",\n\t"states": {"done": {"type": "succeed"}}\n}\n',
        encoding="utf-8",
    )
    document = load_file(path).document
    assert document is not None
    assert document.data == {"dsl": "1.0", "name": "j", "states": {"done": {"type": "succeed"}}}
    assert document.key_positions[("name",)] == Position(3, 2)
    assert document.value_positions[("states", "done", "type")] == Position(4, 30)


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b'\xef\xbb\xbfdsl: "1.0"\r\nname: crlf\r\nstates: {}\r\n')
    document = load_file(path).document
    assert document is not None
    assert document.data["name"] == "crlf"
    assert document.value_positions[("states",)] == Position(3, 9)


def test_scalars_follow_yaml_1_2() -> None:
    document = load_text(
        "a: yes\nb: on\nc: 0x1F\nd: 1_000\ne: .inf\nf: 2024-01-01T10:00:00Z\ng: ~\n"
        "h: 010\ni: 1.5\nj: true\nk: '3'\n"
    ).document
    assert document is not None
    data = document.data
    assert data["a"] == "yes" and data["b"] == "on"  # not booleans in YAML 1.2
    assert data["c"] == 31 and data["d"] == 1000 and data["e"] == float("inf")
    assert data["f"] == "2024-01-01T10:00:00Z"  # timestamps stay strings
    assert data["g"] is None and data["h"] == 10 and data["i"] == 1.5
    assert data["j"] is True and data["k"] == "3"


def test_yaml_1_1_directive() -> None:
    document = load_text("%YAML 1.1\n---\na: yes\nb: 010\nc: 1:20\n").document
    assert document is not None
    assert document.data == {"a": True, "b": 8, "c": 80}


def test_integer_keys_become_strings() -> None:
    document = load_text("vars:\n  200: ok\n  404: missing\n").document
    assert document is not None
    assert document.data == {"vars": {"200": "ok", "404": "missing"}}


def test_anchors_merge_keys_and_alias_positions() -> None:
    text = """\
    base: &retry
      max_attempts: 5
      backoff: 2
    a:
      <<: *retry
      backoff: 3
    b: *retry
    """
    result = load_text(textwrap.dedent(text))
    assert result.diagnostics == []
    document = result.document
    assert document is not None
    assert document.data["a"] == {"max_attempts": 5, "backoff": 3}
    assert list(document.data["a"]) == ["max_attempts", "backoff"]
    assert document.data["b"] == {"max_attempts": 5, "backoff": 2}
    assert document.value_positions[("b",)] == Position(7, 4)  # the alias itself
    assert document.value_positions[("b", "backoff")] == Position(3, 12)  # where it is written
    assert document.key_positions[("a", "max_attempts")] == Position(2, 3)
    assert document.value_positions[("a", "backoff")] == Position(6, 12)
    # aliases do not share objects: changing one copy leaves the other alone
    document.data["b"]["backoff"] = 99
    assert document.data["base"]["backoff"] == 2


def test_merge_of_a_scalar_is_reported() -> None:
    assert _codes("a:\n  <<: 5\n  b: 1\n") == [("TF012", 2, 7)]


# --- bad files -----------------------------------------------------------------------------


def test_duplicate_key_keeps_first_and_points_at_second() -> None:
    result = load_text("a: 1\nb: 2\na: 3\n")
    assert result.document is not None
    assert result.document.data == {"a": 1, "b": 2}
    [d] = result.diagnostics
    assert (d.code, d.line, d.column, d.severity) == ("TF002", 3, 1, Severity.ERROR)
    assert "line 1" in (d.hint or "")


def test_empty_and_blank_texts() -> None:
    for text in ("", "   \n\n", "# only a comment\n", "---\n", "---\n...\n"):
        assert [c for c, _, _ in _codes(text)] == ["TF006"], repr(text)


def test_top_level_scalars_and_null() -> None:
    assert _codes("just text\n") == [("TF003", 1, 1)]
    assert _codes("null\n") == [("TF003", 1, 1)]
    assert _codes("\n\n- 1\n") == [("TF003", 3, 1)]


def test_unquoted_template_keeps_the_text() -> None:
    result = load_text('a: {{ input.x }}\nb: "{{ ok }}"\n')
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [("TF014", 1, 4)]
    assert result.document is not None
    assert result.document.data == {"a": "{{ input.x }}", "b": "{{ ok }}"}


def test_unquoted_template_inside_text_is_one_finding() -> None:
    assert _codes("a: {{ input.x }} and more\n") == [("TF014", 1, 4)]


def test_syntax_error_hints() -> None:
    result = load_text("message: Note: this breaks\n")
    [d] = result.diagnostics
    assert d.code == "TF001" and d.line == 1
    assert d.hint is not None and "quotes" in d.hint


def test_non_string_keys() -> None:
    assert _codes("true: 1\n") == [("TF011", 1, 1)]
    assert _codes("? [a, b]\n: 1\nc: 2\n") == [("TF011", 1, 3)]
    result = load_text("? {a: 1}\n: 1\nc: 2\n")
    assert result.document is not None and result.document.data == {"c": 2}


def test_explicit_tag_with_bad_value() -> None:
    assert _codes("a: !!int twelve\n") == [("TF012", 1, 4)]


def test_lone_surrogate_is_not_utf8() -> None:
    assert _codes("a: \ud800\n") == [("TF005", 1, 4)]


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * MAX_FILE_BYTES)
    [d] = load_file(path).diagnostics
    assert d.code == "TF007" and "5 MB" in d.message
    [d] = load_text("a: " + "x" * MAX_FILE_BYTES).diagnostics
    assert d.code == "TF007"


def test_too_many_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_limits, "MAX_NODES", 50)
    assert _codes("a: [" + ", ".join(["1"] * 60) + "]\n")[0][0] == "TF007"


def test_alias_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_limits, "MAX_ALIAS_NODES", 20)
    text = "a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a]\nc: [*a, *a]\n"
    assert _codes(text) == [("TF008", 3, 5)]  # 3 + 1 aliases of 6 values each: over 20


def test_extreme_nesting_does_not_crash() -> None:
    """The C parser's composer would overflow the C stack here; the event builder stops at
    MAX_DEPTH without recursion."""
    depth = 200_000
    [(code, line, _)] = _codes("a: " + "[" * depth + "]" * depth)
    assert (code, line) == ("TF009", 1)
    block = "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    assert _codes(block)[0][0] == "TF009"


def test_nesting_at_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1  # plus the top-level mapping
    assert load_text("a: " + "[" * depth + "]" * depth).diagnostics == []


def test_io_errors(tmp_path: Path) -> None:
    [d] = load_file(tmp_path / "missing.yaml").diagnostics
    assert d.code == "TF010" and "not found" in d.message
    [d] = load_file(tmp_path).diagnostics
    assert d.code == "TF010" and "directory" in d.message
    result = validate_file(tmp_path / "missing.yaml")
    assert result.document is None and result.workflow is None and not result.ok


def test_display_name() -> None:
    [d] = load_file(FIXTURES / "tf006_empty.yaml", display_name="shown.yaml").diagnostics
    assert d.file == "shown.yaml"


def test_validate_text_names_the_file() -> None:
    result = validate_text("a: [\n", "inline.yaml")
    assert [d.file for d in result.diagnostics] == ["inline.yaml"]
    assert result.document is None
