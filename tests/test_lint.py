"""Semantic lint: every TF2xx rule, on fixtures (code and line) and on focused snippets."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.diagnostics import Diagnostic, Severity
from dsl.lint import CODES, RULES, lint
from dsl.loader import load_text
from dsl.model import Workflow
from dsl.resolve import resolve_child_workflow
from dsl.source import SourceDocument

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "lint"
_EXPECT = re.compile(r"^# expect: (?P<code>TF\d{3}) line (?P<line>\d+)$", re.MULTILINE)
_ACTIVITIES = re.compile(r"^# activities: (?P<names>.+)$", re.MULTILINE)


def load(text: str, file: str = "<test>") -> tuple[Workflow, SourceDocument]:
    """Load through the real loader (positions of every key and value) and build the model."""
    loaded = load_text(text, file)
    assert loaded.document is not None, loaded.diagnostics
    return Workflow.model_validate(loaded.document.data), loaded.document


def run_lint(text: str, file: str = "<test>", **options: Any) -> list[Diagnostic]:
    workflow, doc = load(textwrap.dedent(text), file)
    return lint(workflow, doc, **options)


def codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


# --- fixtures: each file says which codes it must produce, and where -----------------------


def _fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: p.name)
def test_fixture(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = sorted((m["code"], int(m["line"])) for m in _EXPECT.finditer(text))
    assert expected or "# expect: none" in text, f"{path.name} states no expectation"
    names = _ACTIVITIES.search(text)
    activities = {n.strip() for n in names["names"].split(",")} if names else None
    workflow, doc = load(text, str(path))
    found = lint(workflow, doc, activities=activities)
    assert sorted((d.code, d.line) for d in found) == expected, "\n".join(
        f"{d.line}:{d.column} {d.code} {d.message}" for d in found
    )


def test_every_code_has_a_fixture_and_documentation() -> None:
    fixture_codes = {
        m["code"] for p in _fixture_files() for m in _EXPECT.finditer(p.read_text("utf-8"))
    }
    assert set(CODES) <= fixture_codes, sorted(set(CODES) - fixture_codes)
    docs = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    for code in CODES:
        assert re.search(rf"^## {code}\b", docs, re.MULTILINE), f"{code} not documented"
    assert set(re.findall(r"^## (TF2\d\d)\b", docs, re.MULTILINE)) == set(CODES)


def test_rule_table_codes_are_unique_and_yielded_with_their_severity() -> None:
    all_codes = [code for rule in RULES for code in rule.codes]
    assert len(all_codes) == len(set(all_codes))
    for path in _fixture_files():
        text = path.read_text("utf-8")
        names = _ACTIVITIES.search(text)
        activities = {n.strip() for n in names["names"].split(",")} if names else None
        workflow, doc = load(text, str(path))
        for d in lint(workflow, doc, activities=activities):
            assert d.severity is CODES[d.code], d
            assert d.file == str(path)
            assert d.message and d.hint, d


# --- focused checks ------------------------------------------------------------------------


def test_clean_workflow_has_no_findings() -> None:
    assert (
        run_lint(
            """
            dsl: "1.0"
            name: ok
            states:
              a: {type: set, vars: {x: 1}, next: b}
              b: {type: succeed, output: "{{ vars.x }}"}
            """
        )
        == []
    )


def test_unknown_target_suggests_the_closest_name() -> None:
    [d] = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          charge: {type: activity, activity: x, next: shipp}
          ship: {type: succeed}
        """
    )[:1]
    assert d.code == "TF201"
    assert d.severity is Severity.ERROR
    assert d.path == ("states", "charge", "next")
    assert (d.line, d.column) == (5, 47)
    assert d.hint is not None and "did you mean 'ship'?" in d.hint


def test_target_in_nested_scope_is_checked_against_that_scope() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          each:
            type: map
            items: [1, 2]
            states:
              one: {type: set, vars: {x: 1}, next: two}
              two: {type: set, vars: {y: 1}, next: thre}
              three: {type: succeed}
            next: done
          done: {type: succeed}
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF201", ("states", "each", "states", "two", "next")),
        ("TF204", ("states", "each", "states", "three")),
    ]
    assert "the body of map state 'each'" in found[0].message
    assert found[0].hint is not None and "'three'" in found[0].hint


def test_map_body_naming_a_top_level_state_is_a_scope_escape() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          each:
            type: map
            items: [1, 2]
            states:
              one: {type: set, vars: {x: 1}, next: each}
            next: done
          done: {type: succeed}
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF203", ("states", "each", "states", "one", "next"))
    ]


def test_top_level_naming_a_branch_state_is_a_scope_escape() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          go:
            type: parallel
            branches:
              - states: {inner: {type: succeed}}
            next: inner
        """
    )
    assert codes(found) == ["TF203"]
    assert "branch 1 of parallel state 'go'" in found[0].message


def test_reachability_follows_catch_default_and_on_timeout() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        signals: {s: {}}
        states:
          a:
            type: activity
            activity: x
            catch: [{errors: [Timeout], next: handler}]
            next: w
          w: {type: wait, signal: s, timeout: 1m, on_timeout: late, next: c}
          c: {type: choice, choices: [{when: "{{ true }}", next: done}], default: other}
          handler: {type: fail, error: E}
          late: {type: fail, error: Late}
          other: {type: succeed}
          done: {type: succeed}
          lost: {type: succeed}
        """
    )
    assert [(d.code, d.path) for d in found] == [("TF204", ("states", "lost"))]


def test_unreachable_state_in_a_branch_with_explicit_start() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          go:
            type: parallel
            branches:
              - start: b
                states:
                  a: {type: succeed}
                  b: {type: succeed}
            end: true
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF204", ("states", "go", "branches", 0, "states", "a"))
    ]


def test_no_cascade_after_a_dangling_target() -> None:
    # `next: nope` is one mistake: TF201 only, no TF205 for the states before it.
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a: {type: activity, activity: x, next: b}
          b: {type: activity, activity: x, next: nope}
        """
    )
    assert codes(found) == ["TF201"]


def test_loop_with_a_wait_is_no_busy_loop() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          check: {type: choice, choices: [{when: "{{ true }}", next: nap}], default: done}
          nap: {type: sleep, duration: 1s, next: check}
          done: {type: succeed}
        """
    )
    assert found == []


def test_loop_through_a_map_that_runs_activities_is_no_busy_loop() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          batch:
            type: map
            items: [1]
            states: {one: {type: activity, activity: x, end: true}}
            next: check
          check: {type: choice, choices: [{when: "{{ true }}", next: batch}], default: done}
          done: {type: succeed}
        """
    )
    assert found == []


def test_self_loop_of_a_set_state_is_a_busy_loop() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          spin: {type: set, vars: {x: 1}, next: spin}
        """
    )
    assert sorted(codes(found)) == ["TF205", "TF208"]


def test_durations_everywhere() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        defaults:
          timeout: {schedule_to_close: banana}
        states:
          a:
            type: activity
            activity: x
            retry: {max_interval: 0}
            compensate: {activity: y, timeout: {start_to_close: 5 min}}
            end: true
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF210", ("defaults", "timeout", "schedule_to_close")),
        ("TF211", ("states", "a", "retry", "max_interval")),
        ("TF210", ("states", "a", "compensate", "timeout", "start_to_close")),
    ]


def test_retry_checked_against_the_defaults_key_by_key() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        defaults:
          retry: {max_interval: 10s}
        states:
          a: {type: activity, activity: x, retry: {initial_interval: 1m}, end: true}
          b: {type: activity, activity: x, retry: {max_attempts: 1}, end: true}
        """
    )
    assert [(d.code, d.path) for d in found if d.code == "TF214"] == [
        ("TF214", ("states", "a", "retry", "initial_interval"))
    ]


def test_conflict_inside_the_defaults_is_reported_once_at_the_defaults() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        defaults:
          timeout: {start_to_close: 10s, heartbeat: 10s}
        states:
          a: {type: activity, activity: x, next: b}
          b: {type: activity, activity: x, timeout: {schedule_to_close: 1h}, end: true}
        """
    )
    assert [(d.code, d.path) for d in found] == [("TF217", ("defaults", "timeout", "heartbeat"))]


def test_template_error_in_a_literal_block_points_at_its_line() -> None:
    text = textwrap.dedent(
        """\
        dsl: "1.0"
        name: t
        states:
          a:
            type: succeed
            output: |
              line one
              line two {{ broken ) }}
              line three
        """
    )
    workflow, doc = load(text)
    [d] = lint(workflow, doc)
    assert d.code == "TF220"
    assert (d.line, d.column) == (8, 7)


def test_an_unknown_filter_is_a_template_error_not_an_internal_one() -> None:
    """Parsing accepts `{{ i|nput.id }}`; only compiling finds the unknown filter (found by
    the loader fuzz test: TF223's name check used to compile it and crash into TF900)."""
    text = textwrap.dedent(
        """\
        dsl: "1.0"
        name: t
        states:
          a: {type: succeed, output: "{{ i|nput.request_id }}"}
        """
    )
    workflow, doc = load(text)
    [d] = lint(workflow, doc)
    assert d.code == "TF220"
    assert "No filter named 'nput.request_id'" in d.message


def test_template_strings_nested_in_input_are_checked() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a:
            type: activity
            activity: x
            input: {headers: [{value: "{{ input.x ) }}"}]}
            end: true
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF220", ("states", "a", "input", "headers", 0, "value"))
    ]


def test_queries_and_top_level_output_are_templates_too() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        output: "{{ vars.nothing }}"
        queries: {status: "{% for %}"}
        states:
          a: {type: succeed}
        """
    )
    assert sorted((d.code, d.path) for d in found) == [
        ("TF220", ("queries", "status")),
        ("TF221", ("output",)),
    ]


def test_vars_set_by_catch_result_and_map_loop_names() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a:
            type: activity
            activity: x
            catch: [{errors: ["*"], result: err, next: b}]
            next: b
          b:
            type: map
            items: [1, 2]
            states:
              one:
                type: activity
                activity: x
                input: {i: "{{ item }}", n: "{{ index }}", e: "{{ vars.err }}"}
                end: true
            end: true
        """
    )
    assert found == []


def test_map_loop_variable_is_unknown_outside_the_body() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          b:
            type: map
            items: "{{ item }}"
            states: {one: {type: succeed}}
            end: true
        """
    )
    assert [(d.code, d.path) for d in found] == [("TF223", ("states", "b", "items"))]


def test_wait_signal_suggestion_and_schema_path() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        signals:
          approve:
            schema:
              type: object
              properties:
                ok: {type: 12}
        states:
          w: {type: wait, signal: aprove, end: true}
        """
    )
    assert [(d.code, d.path) for d in found] == [
        ("TF231", ("signals", "approve", "schema", "properties", "ok", "type")),
        ("TF230", ("states", "w", "signal")),
    ]
    assert found[0].line == 9
    assert found[1].hint is not None and "did you mean 'approve'?" in found[1].hint


def test_activities_checked_only_with_a_registry() -> None:
    text = """
        dsl: "1.0"
        name: t
        states:
          a: {type: activity, activity: http, next: b}
          b: {type: activity, activity: mystery, end: true}
        """
    assert run_lint(text) == []
    assert codes(run_lint(text, activities=set())) == ["TF240"]
    assert run_lint(text, activities={"mystery"}) == []


# --- child workflows ----------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


CHILD = """\
    dsl: "1.0"
    name: {name}
    states:
      s: {{type: succeed}}
    """


def test_resolver_by_path_file_name_declared_name_and_dirs(tmp_path: Path) -> None:
    base = tmp_path / "flows"
    extra = tmp_path / "shared"
    by_file = _write(base / "billing.yml", CHILD.format(name="other-name"))
    by_name = _write(base / "x.yaml", CHILD.format(name="ship-it"))
    sub = _write(base / "sub" / "leaf.json", '{"dsl": "1.0", "name": "leaf", "states": {}}')
    shared = _write(extra / "common.yaml", CHILD.format(name="common"))
    _write(extra / "nested.yaml", "dsl: '1.0'\nmeta:\n  name: hidden\n")
    assert resolve_child_workflow("billing", base, ()) == by_file.resolve()
    assert resolve_child_workflow("ship-it", base, ()) == by_name.resolve()
    assert resolve_child_workflow("./sub/leaf.json", base, ()) == sub.resolve()
    assert resolve_child_workflow("leaf", base / "sub", ()) == sub.resolve()
    assert resolve_child_workflow("common", base, ()) is None
    assert resolve_child_workflow("common", base, (extra,)) == shared.resolve()
    assert resolve_child_workflow("hidden", extra, ()) is None
    assert resolve_child_workflow("missing.yaml", base, (extra,)) is None
    assert resolve_child_workflow("anything", None, ()) is None


def test_child_found_through_workflow_dirs(tmp_path: Path) -> None:
    parent = _write(
        tmp_path / "main" / "parent.yaml",
        """\
        dsl: "1.0"
        name: parent
        states:
          c: {type: child, workflow: helper, end: true}
        """,
    )
    _write(tmp_path / "lib" / "helper.yaml", CHILD.format(name="helper"))
    text = parent.read_text()
    workflow, doc = load(text, str(parent))
    assert codes(lint(workflow, doc)) == ["TF241"]
    assert lint(workflow, doc, workflow_dirs=[tmp_path / "lib"]) == []


def test_children_are_not_resolved_without_a_real_file() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          c: {type: child, workflow: nowhere, end: true}
        """,
        file="<stdin>",
    )
    assert found == []


def test_direct_self_recursion(tmp_path: Path) -> None:
    me = _write(
        tmp_path / "me.yaml",
        """\
        dsl: "1.0"
        name: me
        states:
          again: {type: child, workflow: me, end: true}
        """,
    )
    workflow, doc = load(me.read_text(), str(me))
    [d] = lint(workflow, doc)
    assert (d.code, d.severity, d.line) == ("TF242", Severity.WARNING, 4)
    assert "me.yaml -> me.yaml" in d.message


def test_recursion_through_a_nested_child_in_another_file(tmp_path: Path) -> None:
    top = _write(
        tmp_path / "top.yaml",
        """\
        dsl: "1.0"
        name: top
        states:
          c: {type: child, workflow: middle, end: true}
        """,
    )
    _write(
        tmp_path / "middle.yaml",
        """\
        dsl: "1.0"
        name: middle
        states:
          p:
            type: parallel
            branches:
              - states: {c: {type: child, workflow: ./top.yaml, end: true}}
            end: true
        """,
    )
    workflow, doc = load(top.read_text(), str(top))
    [d] = lint(workflow, doc)
    assert d.code == "TF242"
    assert "top.yaml -> middle.yaml -> top.yaml" in d.message


def test_unrelated_cycle_elsewhere_is_not_reported_here(tmp_path: Path) -> None:
    top = _write(
        tmp_path / "top.yaml",
        """\
        dsl: "1.0"
        name: top
        states:
          c: {type: child, workflow: a, end: true}
        """,
    )
    # Valid children (an invalid one is TF259), whose cycle is theirs, not top's.
    _write(
        tmp_path / "a.yaml",
        "dsl: '1.0'\nname: a\nstates:\n  c: {type: child, workflow: b, end: true}\n",
    )
    _write(
        tmp_path / "b.yaml",
        "dsl: '1.0'\nname: b\nstates:\n  c: {type: child, workflow: a, end: true}\n",
    )
    workflow, doc = load(top.read_text(), str(top))
    assert lint(workflow, doc) == []


def test_findings_come_in_document_order() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a: {type: activity, activity: x, next: zz}
          b: {type: activity, activity: x, next: yy}
        """
    )
    assert [d.line for d in found] == sorted(d.line for d in found)
    assert [d.code for d in found] == ["TF201", "TF204", "TF201"]


def test_condition_must_be_one_expression() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          c:
            type: choice
            choices:
              - {when: "{{ vars.a }} and {{ vars.b }}", next: d}
              - {when: "{{ vars.a and vars.b }}", next: d}
              - {when: "true", next: d}
            default: d
          d: {type: succeed}
        vars: {a: 1, b: 2}
        """
    )
    assert [(d.code, d.path[-2]) for d in found] == [("TF224", 0), ("TF224", 2)]


def test_mapping_keys_win_over_dict_methods() -> None:
    """`input.items` is the key (the sandbox looks keys up first), so nothing is reported."""
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          s:
            type: succeed
            output:
              key: "{{ input.items }}"
              call: "{{ input.order.items() | list }}"
        """
    )
    assert found == []


# --- never crashes: random (often wrong) state machines ------------------------------------

_NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6)


@st.composite
def machines(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A `{start?, states}` mapping whose transitions may point anywhere (or nowhere)."""
    names = draw(st.lists(_NAME, min_size=1, max_size=5, unique=True))
    target = st.sampled_from([*names, "nowhere"])
    states: dict[str, Any] = {}
    kinds = ["set", "succeed", "fail", "choice", "sleep", "wait", "activity"]
    if depth < 2:
        kinds += ["parallel", "map"]
    for name in names:
        kind = draw(st.sampled_from(kinds))
        flow = draw(st.sampled_from([{"end": True}, {}, {"end": True, "next": "x"}]))
        if "end" not in flow or "next" in flow or draw(st.booleans()):
            flow = {**flow, "next": draw(target)} if "next" not in flow else flow
        state: dict[str, Any] = {"type": kind}
        if kind == "set":
            state |= {"vars": {"v": draw(st.sampled_from(["{{ vars.v }}", "{{ x", "1"]))}, **flow}
        elif kind == "fail":
            state["error"] = "E"
        elif kind == "choice":
            state["choices"] = [{"when": "{{ vars.v }}", "next": draw(target)}]
            if draw(st.booleans()):
                state["default"] = draw(target)
        elif kind == "sleep":
            state |= {"duration": draw(st.sampled_from(["1s", "0", "soon", 5])), **flow}
        elif kind == "wait":
            state |= {"signal": "go", "timeout": "1m", "on_timeout": draw(target), **flow}
        elif kind == "activity":
            catch = [{"errors": ["*"], "next": draw(target)}, {"errors": ["E"], "next": "x"}]
            state |= {"activity": "a", "catch": catch[: draw(st.integers(0, 2))], **flow}
        elif kind == "parallel":
            branches = draw(st.lists(machines(depth + 1), min_size=1, max_size=2))
            state |= {"branches": branches, "result": "r", **flow}
        elif kind == "map":
            body = draw(machines(depth + 1))
            state |= {"items": "{{ input.xs }}", "states": body["states"], **flow}
        states[name] = state
    machine: dict[str, Any] = {"states": states}
    if draw(st.booleans()):
        machine["start"] = draw(target)
    return machine


@st.composite
def workflow_data(draw: st.DrawFn) -> dict[str, Any]:
    return {"dsl": "1.0", "name": "fuzz", "signals": {"go": {}}, **draw(machines())}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflow_data())
def test_lint_never_raises_and_locates_every_finding(data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False)
    workflow, doc = load(text)
    lines = len(text.splitlines())
    for d in lint(workflow, doc, activities=set()):
        assert d.code in CODES
        assert d.severity is CODES[d.code]
        assert 1 <= d.line <= lines and d.column >= 1


def test_validate_file_runs_the_lint() -> None:
    from dsl import validate_file

    path = FIXTURES / "unknown_target.yaml"
    result = validate_file(path)
    assert not result.ok
    assert [(d.code, d.line) for d in result.diagnostics] == [
        ("TF201", 11),
        ("TF201", 17),
        ("TF201", 22),
    ]
