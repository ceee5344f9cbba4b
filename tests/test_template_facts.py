"""The lint's template facts (dsl.lint.template_facts) must say what Jinja itself says.

Most templates are read without compiling them (a reader of text with `{{ a.b }}` paths, and
a list of expression nodes that always compile); each case here is checked against the real compiler, parser and
jinja2.meta, so a shortcut that disagrees with Jinja fails.
"""

from __future__ import annotations

import pytest
from jinja2 import meta, nodes

from dsl.lint.data_rules import _REGEX_HELPERS
from dsl.lint.template_facts import SIMPLE_FILTERS, TemplateMemo, analyse
from dsl.lint.timing import _ZONE_ARGUMENT
from dsl.templates import ENVIRONMENT, check_syntax, parse_template, referenced_vars

CASES = [
    "",
    "plain text",
    "two\nlines\n",
    "{{ x }}",
    "  {{ input.id }}  ",
    "https://example.com/{{ input.id }}/7",
    "a {{ input.id }}/b\n{{ vars.r1 }}\n",
    "{{x}}{{y.z}}",
    "{{ x }}}}",
    "}}{{ x }}",
    "{{{ x }}",
    "{{ x.not }}",
    "{{ x.if.in }}",
    "{{ self }}",
    "{{ loop }}",
    "{{ range }}",
    "{{ true }}",
    "{{ vars.r1 != 3 }}",
    "{{ a, b }}",
    "x {{ a, b }}",
    "{{ (a, b) }}",
    "{{ false and x }}",
    "{{ x if y else z }}",
    "{{ 1 < 2 < x }}",
    "{{ x|nofilter }}",
    "{{ x is nosuchtest }}",
    "{{ x|default(1) }}",
    "{{ f(if=1) }}",
    "{{ f(a=1, a=2) }}",
    "{{ x|f(*y) }}",
    "{{- x }}",
    "{{ x -}}",
    "{{ -x }}",
    "{{ +x }}",
    "{{ x + }}",
    "{{ x\n}}",
    "a\r\n{{ x }}",
    "{{ " + "(" * 30 + "x" + ")" * 30 + " }}",
    "{{ " + "(" * 300 + "x" + ")" * 300 + " }}",
    "{{ " + "1" * 5000 + " }}",
    "{{ [" + ", ".join(["x"] * 50) + "] }}",
    "{{ input['items'] }}",
    "{{ vars[0] }}{{ vars.a.b }}{{ vars['c'].d }}{{ x.vars.e }}",
    "{{ vars['a'] ~ vars.b }}",
    "{{ 1e999 }}",
    "{{ x.y[0:2] }}",
    "{{ a | map(attribute='b') | list }}",
    "{{ not x }}",
    "{{ x // 2 ** 3 % 4 }}",
    "{{ {'a': x} }}",
    "{{ x is defined }}",
    "{{ a.b(c=d) }}",
    "{{ x.0 }}",
    "{{ x }}{{",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{% set y = 1 %}{{ y }}{{ z }}",
    # read without Jinja (dsl.lint.template_facts._simple_names), and near misses of it
    "{{ input.total > 100 }}",
    "{{ input.flaky | default(0) }}",
    "{{ vars.a|default('x')|length }} of {{ vars['b'][0].c }}",
    '{{ x | default(vars.y) == "z" }}',
    "{{ vars[0] }}",
    "{{ a >= b }}{{ c != 'd' }}{{ e <= 0 }}{{ f < g }}",
    "{{ 'a' > 1 }}",
    "{{ 1 == 1 }}",
    "{{ x > 1 > 0 }}",
    "{{ x | default() }}",
    "{{ x | default(1,) }}",
    "{{ x | default(1, true) }}",
    "{{ x | default(none) }}",
    "{{ x | nosuch }}",
    "{{ x | regex_search('a') }}",
    "{{ x | to_time('UTC') }}",
    "{{ x | default(1)(2) }}",
    "{{ x.y | upper }}.{{ x.z }}",
    "{{ 007 }}",
    "{{ 1_000 }}",
    "{{ 1.5 }}",
    "{{ 100.x }}",
    "{{ " + "9" * 19 + " }}",
    "{{ 'a\\'b' }}",
    "{{ '}}' }}",
    '{{ "{{" }}',
    "{{ x[y] }}",
    "{{ x['a' }}",
    "{{ x. }}",
    "{{ x.1 }}",
    "{{ x | }}",
    "{{ = }}",
    "{{ }}",
    "{{ x == }}",
    "{{ (x) }}",
    "{{ x\t}}",
    "{{ x|default(0)}}{{y}}",
    "{{ range(3) | list }}",
    "{{ dict }}{{ get }}",
    "{{ vars[('a')] }}",
    "{{ vars['a' + 'b'] }}{{ vars['c'] | default(vars['d']) }}",
    "{{ x | map(attribute = 'v') | list }}",
    "{{ a | select | map(attribute='r') | join(', ') }}",
    "{{ x | map(attribute='v', attribute='w') }}",
    "{{ x | map(if='v') }}",
    "{{ x | map(attribute='v', 1) }}",
    "{{ x | map(attribute=) }}",
    "{{ x | map(attribute='v' }}",
    "{{ x | default(none) }}{{ y | default(True) }}",
    "{{ vars.polls >= (input.n | default(3)) }}",
    "{{ vars.a + 1 - vars.b == vars.c }}",
    "{{ vars.g[vars.l] }}, {{ vars.name }}!",
    "{{ vars.g[vars.l + 1][0] }}",
    "{{ (a + b) }}{{ ((a)) }}",
    "{{ (a }}",
    "{{ a - }}",
    "{{ a -}}",
    "{{ a - -b }}",
    "{{ a = 1 }}",
    "{{ a + b + c + d }}",
    "{{ " + " + ".join(["a"] * 40) + " }}",
    "{{ none.x }}",
    "{{ x | default(1) == 2 }}",
    "{% for a in b %}" * 25 + "{% endfor %}" * 25,
]


def _lines(tree: nodes.Node | None) -> list[tuple[str, int]]:
    # Node equality leaves line numbers out; the rules place some warnings by them.
    return [] if tree is None else [(type(n).__name__, n.lineno) for n in tree.find_all(nodes.Node)]


@pytest.mark.parametrize("text", CASES)
def test_facts_agree_with_jinja(text: str) -> None:
    error = check_syntax(text)
    tree = None if error is not None else parse_template(text)
    facts = analyse(text)
    assert (facts.error is None) == (error is None)
    if error is not None and facts.error is not None:
        assert (facts.error.message, facts.error.line) == (error.message, error.line)
    assert facts.readable == (tree is not None)
    if facts.tree is not None:  # text with paths only has none: no rule walks it
        assert facts.tree == tree
        assert _lines(facts.tree) == _lines(tree)
    elif "{%" in text:
        assert tree is None  # TF227 walks every readable template with tags
    undeclared = set() if tree is None else meta.find_undeclared_variables(tree)
    assert facts.undeclared == undeclared
    assert facts.vars_read == referenced_vars(text)


def test_simple_filters_are_the_sandboxes_and_no_rule_walks_them() -> None:
    """Templates whose filters are all SIMPLE_FILTERS get no syntax tree: each must be a filter
    of the sandbox (else Jinja refuses to compile), and none may be one that TF252 or TF258
    look for in the tree."""
    assert set(ENVIRONMENT.filters) >= SIMPLE_FILTERS
    assert not SIMPLE_FILTERS & (_REGEX_HELPERS | {"glob"} | set(_ZONE_ARGUMENT))


def test_memo_analyses_each_text_once() -> None:
    memo = TemplateMemo()
    first = memo("{{ vars.a }}")
    assert memo("{{ vars.a }}") is first
    assert memo("{{ vars.b }}") is not first


def test_python_compile_errors_are_template_errors() -> None:
    # Jinja parses these, Python's compiler (or int()) refuses them: an error, not a crash.
    for text in ("{{ f(a=1, a=2) }}", "{{ " + "1" * 5000 + " }}"):
        error = check_syntax(text)
        assert error is not None and "does not compile" in error.message
