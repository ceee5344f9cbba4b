"""Template helpers: the documented list is the sandbox's, every helper works and is bounded,
non-deterministic built-ins are gone, and an optional nested value has a working idiom."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dsl.template_helpers import MAX_PATTERN
from dsl.template_text import GLOBAL_NAMES
from dsl.templates import ENVIRONMENT, TemplateError, render
from interpreter.expressions import (
    ExpressionError,
    ExpressionLimit,
    NeedsMoreTime,
    evaluate,
    inline_budget,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "dsl.md"
INTERNAL_FILTERS = {"_tideflow_loop", "_tideflow_concat"}  # inserted by the compiler


def _documented() -> dict[str, set[str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("\n## Template helpers\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, set[str]] = {}
    for part in re.split(r"\n### ", section)[1:]:
        heading, _, body = part.partition("\n")
        names = set(re.findall(r"^\| `([^`]+)` \|", body, re.MULTILINE))
        if names:
            found[heading.strip()] = names
    return found


def test_the_documented_helpers_are_exactly_those_the_sandbox_allows() -> None:
    documented = _documented()
    assert documented["Filters"] == set(ENVIRONMENT.filters) - INTERNAL_FILTERS
    assert documented["Tests"] == set(ENVIRONMENT.tests)
    assert documented["Functions"] == set(ENVIRONMENT.globals)


CTX: dict[str, Any] = {
    "input": {"files": ["a.csv", "b.txt", "c.CSV"], "coupon": "SAVE-10", "n": 3},
    "vars": {"order": {"id": "A-1", "lines": [{"sku": "x"}]}, "body": '{"a": [1, 2.5, null]}'},
    "run": {"id": "r1"},
}
PAID = {"id": "A-1", "lines": [{"sku": "x"}], "status": "paid"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ vars.body | fromjson }}", {"a": [1, 2.5, None]}),
        ("{{ input.coupon is regex_match('[A-Z]{4}-[0-9]{2}') }}", True),
        ("{{ input.coupon is regex_match('[A-Z]{4}') }}", False),  # the whole text
        ("{{ input.coupon is regex_search('[0-9]') }}", True),
        ("{{ input.coupon is regex_match('save-10', ignorecase=true) }}", True),
        ("{{ input.coupon | regex_search('[0-9]+') }}", "10"),
        ("{{ input.coupon | regex_search('Z') }}", None),
        ("{{ 'a1b22c333' | regex_findall('[0-9]+') }}", ["1", "22", "333"]),
        ("{{ 'k=v,x=y' | regex_findall('(\\\\w)=(\\\\w)') }}", [["k", "v"], ["x", "y"]]),
        ("{{ input.coupon | regex_replace('-([0-9]+)', '/\\\\1') }}", "SAVE/10"),
        ("{{ 'aaa' | regex_replace('a', 'b', count=2) }}", "bba"),
        ("{{ input.files | select('glob', '*.csv') | list }}", ["a.csv"]),
        ("{{ 'dir/x.csv' is glob('*.csv') }}", True),
        ("{{ 'x.csv' is glob('[ab].csv') }}", False),
        (
            "{{ vars.order | merge({'status': 'paid'}, none, {'id': 'B'}) }}",
            {"id": "B", "lines": [{"sku": "x"}], "status": "paid"},
        ),
        ("{{ merge(vars.order, {'status': 'paid'}) }}", {**PAID}),
        ("{{ dict(vars.order, status='paid') }}", {**PAID}),
        ("{{ get(vars, 'order.lines.0.sku') }}", "x"),
        ("{{ get(vars, ['order', 'id']) }}", "A-1"),
        ("{{ get(vars, 'order.lines.5.sku', 'none') }}", "none"),
        ("{{ get(vars, 'nothing.here', 0) }}", 0),
        ("{{ vars | get('order.id') }}", "A-1"),
        # The optional nested value: a path through an unset name stays undefined.
        ("{{ vars.customer.discount.percent | default(0) }}", 0),
        ("{{ vars.customer.discount is defined }}", False),
        ("{{ vars.order.id.x | default('no') }}", "no"),
        ("{{ vars.order.id | default('no') }}", "A-1"),
    ],
)
def test_helpers(template: str, expected: Any) -> None:
    assert render(template, CTX) == expected
    assert CTX["vars"]["order"] == {"id": "A-1", "lines": [{"sku": "x"}]}  # never changed


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ vars.customer.discount }}", "has no attribute 'customer'"),
        ("{{ vars.customer.discount + 1 }}", "has no attribute 'customer'"),
        ("total {{ vars.customer.discount }}", "has no attribute 'customer'"),
        ("{{ 'NaN' | fromjson }}", "NaN is not JSON data"),
        ("{{ '{' | fromjson }}", "not valid JSON"),
        ("{{ 3 | fromjson }}", "expected a JSON text"),
        ("{{ 'x' | regex_search('(') }}", "invalid regular expression '('"),
        ("{{ 'x' | regex_search(input.n) }}", "the pattern must be a text"),
        (f"{{{{ 'x' | regex_search('a' * {MAX_PATTERN + 1}) }}}}", "the limit is 1,000"),
        ("{{ 'x' is glob(3) }}", "the pattern must be a text"),
        ("{{ merge(vars.order, [1]) }}", "argument 2 is list, not an object"),
        ("{{ get(vars, 3.5) }}", "the path must be"),
    ],
)
def test_helper_errors_are_the_templates(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, CTX)
    assert message in caught.value.message


def test_random_and_sameas_are_gone_and_no_global_reaches_outside() -> None:
    for template in ("{{ [1, 2, 3] | random }}", "{{ 1 is sameas(1) }}"):
        with pytest.raises(TemplateError) as caught:
            render(template, CTX)
        assert "No filter named 'random'" in caught.value.message or "No test named" in (
            caught.value.message
        )
    assert "random" not in ENVIRONMENT.filters and "sameas" not in ENVIRONMENT.tests
    assert set(ENVIRONMENT.globals) == {"range", "dict", "merge", "get"} == GLOBAL_NAMES
    for name in ("lipsum", "cycler", "joiner", "namespace", "now"):
        with pytest.raises(TemplateError):
            render("{{ " + name + "() }}", CTX)


CATASTROPHIC = "{{ ('a' * 60 ~ 'b') is regex_match('(a|aa)+') }}"


def test_a_catastrophic_pattern_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "200")
    with pytest.raises(ExpressionLimit) as caught:
        evaluate(CATASTROPHIC, CTX, where="state 's', output")
    assert "(a|aa)+" in caught.value.message and "ran out of the template budget" in (
        caught.value.message
    )


def test_on_the_event_loop_a_slow_pattern_asks_for_more_time() -> None:
    with inline_budget(), pytest.raises(NeedsMoreTime):
        evaluate(CATASTROPHIC, CTX, where="state 's', output")


def test_a_replacement_is_refused_before_it_grows_past_the_size_bound() -> None:
    with pytest.raises(ExpressionLimit) as caught:
        evaluate("{{ ('a' * 100000) | regex_replace('', 'x' * 100) }}", CTX, where="output")
    assert "regex_replace would build more than 2,097,152 characters" in caught.value.message


def test_a_helper_error_is_an_expression_error_naming_the_field() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate({"a": "{{ '[1,' | fromjson }}"}, CTX, where="state 'parse', input")
    assert caught.value.kind == "ExpressionError"
    assert caught.value.message.startswith("state 'parse', input: template")
