"""What the template rules need to know about each template, worked out once per validation.

Why: a large workflow holds one or two templates per state, and the rules TF220, TF221, TF223,
TF224 and TF227 each look at every one. Compiling a template costs about 0.25 ms and Jinja's
parser about 0.04 ms, so a shared process-wide cache that is smaller than the file (the
runtime's) made every rule compile every template again. `TemplateFacts` holds, per distinct
text, the compile verdict, the syntax tree and the names it reads; `LintContext.templates`
keeps them for one validation.

Most templates are text with `{{ a.b.c }}` paths in it: those are read here without Jinja
(`_path_names`). Others that parse into expression nodes that always compile skip the
compiler (`_parsed_plain`); the rest go through the real compiler and parser, so every
verdict stays Jinja's own. Building few objects matters too: a 20,000-state file holds
millions of them, and each garbage collection pass walks them all.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import meta, nodes

from dsl.source import JsonPath
from dsl.templates import (
    ENVIRONMENT,
    TemplateError,
    check_syntax,
    parse_template,
    single_expression,
    vars_in_tree,
)

# `{{ a.b.c }}` with plain ASCII names and single spaces only: no whitespace control (`{{-`,
# `-}}`), no newlines inside the tag (so every token is on the tag's line).
_PATH_TAG = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*) *\}\}")
# Names Jinja's parser reads as constants or operators, and names its compiler declares itself
# (`self`), or treats specially in loops, macros and blocks: such templates take Jinja's path.
_NOT_PLAIN_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "not", "and", "or", "if", "else"}
    | {"in", "is", "self", "loop", "caller", "varargs", "kwargs", "super"}
)

# meta.find_undeclared_variables leaves out the globals (range, dict).
_GLOBALS = frozenset(ENVIRONMENT.globals)


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """One template as the lint rules see it. `readable` when it compiles and parses (else
    `error`, if any, says why, for TF220); `tree` is its syntax tree, None when it is not
    readable or is text with `{{ a.b }}` paths only (nothing to walk)."""

    error: TemplateError | None
    readable: bool
    tree: nodes.Template | None
    undeclared: frozenset[str]  # names read that no tag of the template sets (TF223)
    vars_read: frozenset[str]  # X of every vars.X / vars['X'] (TF221, TF222)


def _path_names(source: str) -> tuple[set[str], set[str]] | None:
    """The names and the vars read by `source` when it is text with `{{ a.b }}` paths only,
    else None. Such a text is data and paths to Jinja's parser (a TemplateData per text, a
    Name with Getattrs per tag), which always compile; no tree is built, since no rule needs
    to walk one (TF227 looks only at templates with {% %} tags)."""
    if "{%" in source or "{#" in source or "\r" in source:
        return None  # tags, comments, or newlines the lexer would rewrite
    names: set[str] = set()
    vars_read: set[str] = set()
    at = 0
    while (start := source.find("{{", at)) >= 0:
        match = _PATH_TAG.match(source, start)
        if match is None:
            return None
        first, *attrs = match.group(1).split(".")
        if first in _NOT_PLAIN_NAMES:
            return None
        names.add(first)
        if first == "vars" and attrs:
            vars_read.add(attrs[0])
        at = match.end()
    return names, vars_read


# Expression nodes whose code Jinja's compiler always generates (given known filters and tests,
# plain keyword arguments and a bounded depth), and whose every name it visits: no node here
# skips a child when Jinja folds constants while compiling (`false and x` would skip x).
_PLAIN_NODES = (
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.Call,
    nodes.Keyword,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Concat,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Neg,
    nodes.Pos,
    nodes.Not,
    nodes.Operand,
)
# Far below what Python's compiler refuses (about 200 nested parentheses).
_MAX_PLAIN_DEPTH = 24


def _plain_names(node: nodes.Node, depth: int, names: set[str], vars_read: set[str]) -> bool:
    """Add the names read under `node`, and the vars (as `vars_in_tree` finds them); False
    when the node is not one whose compiling is certain to succeed (then the real compiler
    decides)."""
    if depth > _MAX_PLAIN_DEPTH:
        return False
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        inner = node.node
        if isinstance(inner, nodes.Name) and inner.name == "vars":
            if isinstance(node, nodes.Getattr):
                vars_read.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                vars_read.add(node.arg.value)
    elif isinstance(node, nodes.Compare):
        if len(node.ops) != 1:  # a chain stops at the first false link, also when folded
            return False
    elif isinstance(node, nodes.Name):
        if node.ctx != "load" or node.name in _NOT_PLAIN_NAMES:
            return False
        names.add(node.name)
    elif isinstance(node, nodes.Filter | nodes.Test):
        known = ENVIRONMENT.filters if isinstance(node, nodes.Filter) else ENVIRONMENT.tests
        if node.name not in known:
            return False  # "No filter named ...": the compiler's message
    elif not isinstance(node, _PLAIN_NODES):
        return False
    if isinstance(node, nodes.Call | nodes.Filter | nodes.Test):
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return False
        keys = [str(kwarg.key) for kwarg in node.kwargs]
        if len(set(keys)) != len(keys) or any(keyword.iskeyword(key) for key in keys):
            return False  # Python would refuse the generated call
    return all(
        _plain_names(child, depth + 1, names, vars_read) for child in node.iter_child_nodes()
    )


def _parsed_plain(
    source: str, expr: str | None
) -> tuple[nodes.Template, set[str], set[str]] | None:
    """Jinja's tree of `source` with the names and vars it reads, when it is certain to
    compile."""
    if expr is not None and (expr[:1] in ("-", "+") or expr.endswith("-")):
        return None  # `{{-`/`-}}` mean whitespace control here, a sign in compile_expression
    try:
        tree = ENVIRONMENT.parse(source)
    except Exception:  # the real compiler gives the verdict and the message
        return None
    names: set[str] = set()
    vars_read: set[str] = set()
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        if expr is not None and any(isinstance(child, nodes.Tuple) for child in output.nodes):
            return None  # `{{ a, b }}`: a tuple in a text, "chunk after expression" alone
        if not _plain_names(output, 0, names, vars_read):
            return None
    return tree, names, vars_read


def analyse(text: str) -> TemplateFacts:
    """The facts of one template (uncached: `TemplateMemo` keeps them)."""
    expr = single_expression(text)
    source = "{{" + expr + "}}" if expr is not None else text
    paths = _path_names(source)
    if paths is not None:
        names, vars_read = paths
        return TemplateFacts(None, True, None, frozenset(names - _GLOBALS), frozenset(vars_read))
    plain = _parsed_plain(source, expr)
    if plain is not None:
        tree, names, vars_read = plain
        return TemplateFacts(None, True, tree, frozenset(names - _GLOBALS), frozenset(vars_read))
    error = check_syntax(text)
    parsed = None if error is not None else parse_template(text)
    if parsed is None:
        return TemplateFacts(error, False, None, frozenset(), frozenset())
    undeclared = frozenset(meta.find_undeclared_variables(parsed))
    return TemplateFacts(None, True, parsed, undeclared, frozenset(vars_in_tree(parsed)))


class TemplateMemo:
    """The facts of every distinct template text of one validation, and (`strings`) where the
    workflow's templates are, which the template rules fill in once and share."""

    __slots__ = ("_facts", "strings")

    def __init__(self) -> None:
        self._facts: dict[str, TemplateFacts] = {}
        self.strings: list[tuple[Any, JsonPath, str]] | None = None  # (scope, path, text)

    def __call__(self, text: str) -> TemplateFacts:
        facts = self._facts.get(text)
        if facts is None:
            facts = self._facts[text] = analyse(text)
        return facts
