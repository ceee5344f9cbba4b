"""The one sandboxed Jinja2 environment used for every template in a workflow.

Why a sandbox: a workflow file is data, so it must never reach files, environment variables
or Python internals. `ImmutableSandboxedEnvironment` blocks attribute access to internals and
mutation of containers; the context only ever holds JSON data that the engine passes in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from dsl import template_checks, template_helpers, timefuncs
from dsl.template_limits import (
    LimitExceeded,
    active,
    budget_ms_from_env,
    budget_scope,
    counted,
    text_size,
)
from dsl.template_text import is_template, single_expression


class TemplateError(Exception):
    """A template that does not compile or does not evaluate. `template` is the source text."""

    def __init__(self, message: str, template: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.template = template
        self.line = line


class TemplateLimit(TemplateError):
    """A template went past its budget (`out_of_time`) or would build a value too large."""

    def __init__(self, message: str, template: str, *, out_of_time: bool) -> None:
        super().__init__(message, template)
        self.out_of_time = out_of_time


# Bounds on what one operator may build: `'a' * input.n` or `2 ** input.n` must not take a
# worker's memory or CPU (the sandbox already caps range() at 100,000).
MAX_REPEAT = 1_000_000
MAX_POWER_BITS = 10_000
# A rendered text template longer than this fails rather than being stored with every step.
MAX_RENDERED = 1_000_000


def _repeat_size(left: Any, right: Any) -> int | None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            return len(seq) * max(0, times)
    return None


def _power_bits(base: Any, exponent: Any) -> int | None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        return abs(base).bit_length() * exponent
    return None


class _CountLoops(NodeTransformer):
    """Compiled templates call the budget: every `{% for %}` iterates through `counted`, and
    `a ~ b` is checked before it joins (Jinja's own code for both has no hook)."""

    # As filters, not calls: a filter is called directly, a call goes through the sandbox.
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.Tuple(node.nodes, "load")
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None)


# Names of the filters that _CountLoops inserts (a template may name them too: they only count).
_LOOP_FILTER = "_tideflow_loop"
_CONCAT_FILTER = "_tideflow_concat"


def _checked_concat(parts: tuple[Any, ...]) -> str:
    template_checks.check_concat(parts)
    return str_join(parts)


class _RenderedTooLong(Exception):
    """The text of a template (or macro) passed MAX_RENDERED: an ExpressionError, as it was
    when only the finished text was measured."""


def _checked_output(pieces: Iterable[str]) -> str:
    """Join a template's (or macro's) output pieces, keeping no more than the limit in memory:
    the pieces are counted as they come (a loop may yield one long text many times)."""
    kept: list[str] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if total <= MAX_RENDERED:
            kept.append(piece)
    if total > MAX_RENDERED:
        raise _RenderedTooLong(
            f"the template rendered {total:,} characters (the limit is {MAX_RENDERED:,})"
        )
    return "".join(kept)


def _checked_finalize(value: Any) -> Any:
    # `{{ x }}` in a text template turns x into text: a list may hold one long text many times,
    # and anything but data would show its Python repr.
    if not isinstance(value, str):
        size = text_size(value, MAX_RENDERED)
        if size > MAX_RENDERED:
            raise LimitExceeded(
                f"a value of about {size:,} characters in the text (the limit is {MAX_RENDERED:,})"
            )
        template_checks.check_text(value)
    return value


class _JsonSandbox(ImmutableSandboxedEnvironment):
    """Keys win over methods on mappings: the context is JSON data, so `input.items` must be
    the field `items`, not `dict.items`. `*`, `**`, `+` and `%` are bounded (and so never
    folded at compile time, where a huge constant would fail in the code generator); so are
    calls, loops and output (see dsl.template_limits)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_checked_output)

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        return super()._generate(_CountLoops().visit(source), *args, **kwargs)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        template_checks.check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            size = _repeat_size(left, right)
            if size is not None and size > MAX_REPEAT:
                raise SecurityError(
                    f"repeating a sequence {size:,} items long (the limit is {MAX_REPEAT:,})"
                )
        elif operator == "**":
            bits = _power_bits(left, right)
            if bits is not None and bits > MAX_POWER_BITS:
                raise SecurityError(
                    f"a power of about {bits:,} bits (the limit is {MAX_POWER_BITS:,})"
                )
        template_checks.check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)


class _PathUndefined(StrictUndefined):
    """Strict, except that a path through it stays undefined: `vars.x.y | default(0)` and
    `vars.x.y is defined` work when `x` is unset, while using the value itself (output,
    arithmetic, comparison, iteration) still fails with the name that was missing first."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self


_NO_DEFAULT: Any = object()


def _strict_number(name: str, convert: Any) -> Any:
    """Jinja's `int`/`float` filters turn anything they cannot read into 0 without a word
    (`'12a' | int` is 0); here that is an error unless the template names a default."""

    def strict(value: Any, default: Any = _NO_DEFAULT, *args: Any) -> Any:
        result = convert(value, _NO_DEFAULT, *args)
        if result is _NO_DEFAULT:
            if default is _NO_DEFAULT:
                raise ValueError(
                    f"{name}: {value!r} is not a number (write `| {name}(0)` to get 0 instead)"
                )
            return default
        return result

    return strict


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = _JsonSandbox(
        undefined=_PathUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_checked_finalize,
    )
    # Only deterministic, side-effect free helpers: no lipsum/cycler/joiner, no random filter,
    # no clock (the time helpers read only their arguments; `now` comes from the run);
    # tideflow's own helpers come from dsl.template_helpers and dsl.timefuncs.
    env.globals = {"range": env.globals["range"], "dict": dict, **template_helpers.GLOBALS}
    for name in template_helpers.REMOVED_FILTERS:
        del env.filters[name]
    for name in template_helpers.REMOVED_TESTS:
        del env.tests[name]
    env.filters.update(template_helpers.FILTERS)
    env.tests.update(template_helpers.TESTS)
    env.filters["int"] = _strict_number("int", env.filters["int"])
    env.filters["float"] = _strict_number("float", env.filters["float"])
    env.filters.update(timefuncs.FILTERS)  # dates and durations, no clock (docs/dsl.md)
    env.filters = {
        name: template_checks.checked_filter(name, func) for name, func in env.filters.items()
    }
    env.filters[_LOOP_FILTER] = counted
    env.filters[_CONCAT_FILTER] = _checked_concat
    return env


ENVIRONMENT = _make_environment()


@lru_cache(maxsize=4096)
def _compiled(value: str) -> Any:
    expr = single_expression(value)
    try:
        if expr is not None:
            return ("expr", ENVIRONMENT.compile_expression(expr, undefined_to_none=False))
        return ("text", ENVIRONMENT.from_string(value))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}", value, exc.lineno) from None
    # What Jinja's parser accepts but Python's compiler or int() refuses (`f(a=1, a=2)`, 25
    # nested loops, a 5,000-digit literal) or what nests past the recursion limit: the
    # template's error, not a traceback.
    except SyntaxError as exc:
        raise TemplateError(f"the template does not compile: {exc.msg}", value) from None
    except ValueError as exc:
        raise TemplateError(f"the template does not compile: {exc}", value) from None
    except RecursionError:
        raise TemplateError("the template is nested too deeply", value) from None


def check_syntax(value: str) -> TemplateError | None:
    """Compile `value`; return the error instead of raising."""
    try:
        _compiled(value)
    except TemplateError as exc:
        return exc
    return None


def render_string(value: str, context: Mapping[str, Any]) -> Any:
    """Render one string: native value for a single expression, text otherwise."""
    if not is_template(value):
        return value
    kind, compiled = _compiled(value)
    try:
        if kind == "expr":
            result = compiled(**context)
            if isinstance(result, StrictUndefined):
                str(result)  # raises UndefinedError with the missing name
            return result
        text = compiled.render(**context)
    except LimitExceeded as exc:
        raise TemplateLimit(exc.message, value, out_of_time=exc.out_of_time) from None
    except _RenderedTooLong as exc:
        raise TemplateError(str(exc), value) from None
    except template_checks.NotText as exc:
        raise TemplateError(exc.message, value) from None
    except SecurityError as exc:
        raise TemplateError(f"blocked by the sandbox: {exc}", value) from None
    except template_helpers.HelperError as exc:
        raise TemplateError(str(exc), value) from None
    except TemplateError:
        raise
    except NameError as exc:
        if exc.name in ("inf", "nan"):  # a float literal past 1.8e308, folded by the compiler
            raise TemplateError("a number beyond the float range (about ±1.8e308)", value) from None
        raise TemplateError(f"NameError: {exc}", value) from None
    except Exception as exc:  # any evaluation failure is the template's, not ours
        raise TemplateError(f"{type(exc).__name__}: {exc}", value) from None
    if len(text) > MAX_RENDERED:
        raise TemplateError(
            f"the template rendered {len(text):,} characters (the limit is {MAX_RENDERED:,})", value
        )
    return text


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON value (keys stay as written), all under one budget:
    the caller's (`budget_scope`), else a fresh one of the configured size."""
    if active():
        return _render(value, context)
    with budget_scope(budget_ms_from_env()):
        return _render(value, context)


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    return value


@lru_cache(maxsize=8192)
def parse_template(value: str) -> nodes.Template | None:
    """The Jinja2 syntax tree of a template (for static checks); None when it does not compile
    (a syntax error, or an unknown filter or test, which only compiling finds; TF220 reports
    it). Cached: lint walks the same strings several times."""
    if check_syntax(value) is not None:
        return None
    expr = single_expression(value)
    try:
        return ENVIRONMENT.parse("{{" + expr + "}}" if expr is not None else value)
    except TemplateSyntaxError:
        return None


def referenced_vars(value: str) -> set[str]:
    """Names X used as `vars.X` or `vars['X']` in a template (best effort; syntax errors give {})."""
    ast = parse_template(value)
    return set() if ast is None else vars_in_tree(ast)


def vars_in_tree(ast: nodes.Template) -> set[str]:
    """Names X used as `vars.X` or `vars['X']` in a parsed template."""
    found: set[str] = set()
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "vars":
            found.add(node.attr)
    for item in ast.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == "vars"
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            found.add(item.arg.value)
    return found
