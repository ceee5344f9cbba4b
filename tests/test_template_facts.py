"""The lint's template facts (dsl.lint.template_facts) must say what Jinja itself says.

Most templates are read without compiling them (a reader of text with `{{ a.b }}` paths, and
a list of expression nodes that always compile); each case here is checked against the real compiler, parser and
jinja2.meta, so a shortcut that disagrees with Jinja fails.
"""

from __future__ import annotations

import pytest
from jinja2 import meta, nodes

from dsl.lint.template_facts import TemplateMemo, analyse
from dsl.templates import check_syntax, parse_template, referenced_vars

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
