"""What the template rules need to know about each template, worked out once per validation.

Why: a large workflow holds one or two templates per state, and the rules TF220, TF221, TF223,
TF224 and TF227 each look at every one. Compiling a template costs about 0.25 ms and Jinja's
parser about 0.04 ms, so a shared process-wide cache that is smaller than the file (the
runtime's) made every rule compile every template again. `TemplateFacts` holds, per distinct
text, the compile verdict, the syntax tree and the names it reads; `LintContext.templates`
keeps them for one validation.

Most templates are text with `{{ ... }}` tags holding a path, a comparison or a known filter
(`{{ input.total > 100 }}`, `{{ input.flaky | default(0) }}`): those are read here without
Jinja (`_simple_names`), so that validating such a file never imports Jinja2 (about 20 ms of
`tideflow validate`). Others that parse into expression nodes that always compile skip the
compiler (`_parsed_plain`); the rest go through the real compiler and parser, so every
verdict stays Jinja's own (tests/test_template_facts.py compares each reading with Jinja's).
Building few objects matters too: a 20,000-state file holds millions of them, and each
garbage collection pass walks them all.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dsl.source import JsonPath
from dsl.template_text import GLOBAL_NAMES, single_expression

# Jinja2 and the sandbox only for a template the reader below cannot read.
if TYPE_CHECKING:
    from jinja2 import nodes

    from dsl.templates import TemplateError


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """One template as the lint rules see it. `readable` when it compiles and parses (else
    `error`, if any, says why, for TF220); `tree` is its syntax tree, None when it is not
    readable or is text that `_simple_names` read (nothing to walk)."""

    error: TemplateError | None
    readable: bool
    tree: nodes.Template | None
    undeclared: frozenset[str]  # names read that no tag of the template sets (TF223)
    vars_read: frozenset[str]  # X of every vars.X / vars['X'] (TF221, TF222)


# Names Jinja's parser reads as constants or operators, and names its compiler declares itself
# (`self`), or treats specially in loops, macros and blocks: such templates take Jinja's path.
_NOT_PLAIN_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "not", "and", "or", "if", "else"}
    | {"in", "is", "self", "loop", "caller", "varargs", "kwargs", "super"}
)
# Filters of the sandbox that `_simple_names` reads without Jinja: ones no rule looks for in a
# syntax tree (the regex and glob helpers of TF258 and the date helpers of TF252 are not here).
# tests/test_template_facts.py checks that the sandbox has each of them.
SIMPLE_FILTERS = frozenset(
    {"abs", "capitalize", "count", "d", "default", "first", "float", "fromjson", "int", "items"}
    | {"join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr"}
    | {"replace", "reverse", "round", "select", "selectattr", "sort", "string", "sum", "title"}
    | {"tojson", "trim", "unique", "upper"}
)
_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})
_COMPARISONS = frozenset({"==", "!=", ">", ">=", "<", "<="})
# Tokens in one tag: far below what Jinja's or Python's compiler refuse for nesting (each
# filter, operator or subscript nests the tree one level; about 200 are refused).
_MAX_TOKENS = 64
# One token inside a `{{ }}` tag, after the spaces before it. Only spaces separate tokens (so
# every token is on the tag's line), strings have no escapes and no braces, whole numbers no
# signs, underscores or exponents and at most 18 digits (Python's compiler refuses very long
# ones); anything else (`{{-`, `-}}`, floats, `*`, `~`, `:`) is left to Jinja.
_TOKEN = re.compile(
    r" *(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>0|[1-9][0-9]{0,17})(?![0-9A-Za-z_.])"
    r"|'(?P<str1>[^'\\{}\n\r]*)'|\"(?P<str2>[^\"\\{}\n\r]*)\""
    r"|(?P<op>==|!=|>=|<=|[<>=+\-.\[\]|(),])|(?P<end>\}\}))"
)


class _TagReader:
    """Reads one `{{ }}` tag of the grammar `_simple_names` accepts:

        tag        = expression "}}"
        expression = sum [comparison sum]
        sum        = operand {("+" | "-") operand}
        operand    = primary {"|" filter [arguments]}
        arguments  = "(" [expression {"," expression}] {"," name "=" expression} ")"
        primary    = name {"." name | "[" expression "]"} | "(" expression ")"
                   | string | integer | true | false | none

    A single comparison (a chain stops at the first false link, also when Jinja folds it);
    keyword arguments unique and not Python keywords (Python refuses those). Every name a path
    starts with goes to `names`, and X of `vars.X` / `vars['X']` to `vars_read`, as
    `_plain_names` finds them in Jinja's tree."""

    __slots__ = ("_at", "_kind", "_left", "_names", "_source", "_value", "_vars_read")

    def __init__(self, source: str, at: int, names: set[str], vars_read: set[str]) -> None:
        self._source = source
        self._at = at
        self._names = names
        self._vars_read = vars_read
        self._left = _MAX_TOKENS
        self._kind: str | None = None
        self._value = ""
        self._advance()

    def _advance(self) -> None:
        match = _TOKEN.match(self._source, self._at) if self._left > 0 else None
        self._left -= 1
        if match is None:
            self._kind = None
            return
        self._at = match.end()
        kind = match.lastgroup
        assert kind is not None
        self._value = match.group(kind)
        self._kind = self._value if kind == "op" else "str" if kind in ("str1", "str2") else kind

    def _take(self, kind: str) -> bool:
        if self._kind != kind:
            return False
        self._advance()
        return True

    def read(self) -> int | None:
        """The index after the tag, or None when it is not of the grammar."""
        if not self._expression():
            return None
        return self._at if self._kind == "end" else None

    def _expression(self) -> bool:
        if not self._sum():
            return False
        if self._kind in _COMPARISONS:
            self._advance()
            return self._sum()
        return True

    def _sum(self) -> bool:
        if not self._operand():
            return False
        while self._kind in ("+", "-"):
            self._advance()
            if not self._operand():
                return False
        return True

    def _operand(self) -> bool:
        if not self._primary():
            return False
        while self._take("|"):
            if self._kind != "name" or self._value not in SIMPLE_FILTERS:
                return False
            self._advance()
            if self._take("(") and not self._arguments():
                return False
        return True

    def _arguments(self) -> bool:
        """After the "(" of a filter's arguments, up to and with its ")"."""
        keys: set[str] = set()
        if self._take(")"):
            return True
        while True:
            if self._kind == "name" and self._assign_follows():
                key = self._value
                if key in keys or keyword.iskeyword(key):
                    return False
                keys.add(key)
                self._advance()
                self._advance()  # the "="
            elif keys:
                return False  # a positional argument after a keyword argument
            if not self._expression():
                return False
            if self._take(")"):
                return True
            if not self._take(","):
                return False

    def _assign_follows(self) -> bool:
        """Whether the token after the current one is "=" (a keyword argument's name)."""
        match = _TOKEN.match(self._source, self._at)
        return match is not None and match.group("op") == "="

    def _primary(self) -> bool:
        kind, value = self._kind, self._value
        if kind in ("str", "int") or (kind == "name" and value in _CONSTANTS):
            self._advance()
            return True
        if kind == "(":
            self._advance()
            return self._expression() and self._take(")")
        if kind != "name" or value in _NOT_PLAIN_NAMES:
            return False
        self._names.add(value)
        self._advance()
        first_step = value == "vars"
        while self._kind in (".", "["):
            if self._take("."):
                if self._kind != "name":
                    return False
                if first_step:
                    self._vars_read.add(self._value)
                self._advance()
            else:
                self._advance()
                key_kind, key, left = self._kind, self._value, self._left
                if key_kind == "(":
                    return False  # vars[('X')] is Jinja's Const too: left to Jinja
                if not self._expression() or self._kind != "]":
                    return False
                if first_step and key_kind == "str" and self._left == left - 1:
                    self._vars_read.add(key)  # vars['X'], one string: Jinja's Const
                self._advance()
            first_step = False
        return True


def _simple_names(source: str) -> tuple[set[str], set[str]] | None:
    """The names and the vars read by `source` when every tag in it is of `_TagReader`'s
    grammar, else None. Such a text is data and expressions that always compile (paths,
    literals, one comparison, known filters with such arguments); no tree is built, since no
    rule needs to walk one (TF227 looks only at templates with {% %} tags, TF252 and TF258 at
    filters that are not among SIMPLE_FILTERS)."""
    if "{%" in source or "{#" in source or "\r" in source:
        return None  # tags, comments, or newlines the lexer would rewrite
    names: set[str] = set()
    vars_read: set[str] = set()
    at = 0
    while (start := source.find("{{", at)) >= 0:
        end = _TagReader(source, start + 2, names, vars_read).read()
        if end is None:
            return None
        at = end
    return names, vars_read


# Expression nodes whose code Jinja's compiler always generates (given known filters and tests,
# plain keyword arguments and a bounded depth), and whose every name it visits: no node here
# skips a child when Jinja folds constants while compiling (`false and x` would skip x).
@lru_cache(maxsize=1)
def _plain_nodes() -> tuple[type[nodes.Node], ...]:
    from jinja2 import nodes

    return (
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
    from jinja2 import nodes

    from dsl.templates import ENVIRONMENT

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
    elif not isinstance(node, _plain_nodes()):
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
    from jinja2 import nodes

    from dsl.templates import ENVIRONMENT

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
    simple = _simple_names(source)
    if simple is not None:
        names, vars_read = simple
        return TemplateFacts(
            None, True, None, frozenset(names - GLOBAL_NAMES), frozenset(vars_read)
        )
    plain = _parsed_plain(source, expr)
    if plain is not None:
        tree, names, vars_read = plain
        return TemplateFacts(
            None, True, tree, frozenset(names - GLOBAL_NAMES), frozenset(vars_read)
        )
    from jinja2 import meta

    from dsl.templates import check_syntax, parse_template, vars_in_tree

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
