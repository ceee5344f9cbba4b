"""Rules about templates: syntax, the names they use, the variables they read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from dsl.diagnostics import Diagnostic, Position
from dsl.lint.context import LintContext, Scope, catchers_of, did_you_mean, join_hints
from dsl.lint.template_fields import DURATION, PREDICATE, block_fields
from dsl.model import (
    ActivityState,
    ChildState,
    ChoiceState,
    ContinueAsNewState,
    FailState,
    MapState,
    ParallelState,
    SetState,
    SleepState,
    SucceedState,
    WaitState,
)
from dsl.source import JsonPath
from dsl.template_limits import BUDGET_ENV, DEFAULT_BUDGET_MS, WORK_PER_MS
from dsl.template_text import GLOBAL_NAMES, is_template, iter_strings, single_expression

# Jinja2 only where a template has a syntax tree: a tree exists only once Jinja parsed it.
if TYPE_CHECKING:
    from jinja2 import nodes

BUILTIN_NAMES = frozenset({"input", "vars", "run", "now", "state"})
QUERY_NAMES = frozenset({"args"})  # a query's templates also see the caller's args


def template_values(ctx: LintContext) -> Iterator[tuple[Scope, JsonPath, Any]]:
    """Every field that holds templates, with the scope it is evaluated in."""
    root = ctx.root
    workflow = ctx.workflow
    for key, value in (workflow.vars or {}).items():
        yield root, ("vars", key), value
    if workflow.output is not None:
        yield root, ("output",), workflow.output
    for key, value in (workflow.queries or {}).items():
        yield root, ("queries", key), value
    for name, update in (workflow.updates or {}).items():
        for field_name in ("validator", "message", "returns"):
            value = getattr(update, field_name)
            if value is not None:
                yield root, ("updates", name, field_name), value
        for key, value in (update.vars or {}).items():
            yield root, ("updates", name, "vars", key), value
    if workflow.timeout is not None:
        yield root, ("timeout",), workflow.timeout
    if workflow.defaults is not None:
        for field_path, value in _durations(("defaults",), workflow.defaults):
            yield root, field_path, value
    for scope, name, state in ctx.states():
        path = scope.state_path(name)
        fields: list[tuple[JsonPath, Any]] = list(_durations(path, state))
        if isinstance(state, ActivityState | ChildState):
            fields.append(((*path, "input"), state.input))
            if state.compensate is not None:
                fields.append(((*path, "compensate", "input"), state.compensate.input))
        if isinstance(state, ChildState):
            fields.append(((*path, "id"), state.id))
        elif isinstance(state, ChoiceState):
            for index, choice in enumerate(state.choices):
                fields.append(((*path, "choices", index, "when"), choice.when))
        elif isinstance(state, SetState):
            fields.extend(((*path, "vars", key), value) for key, value in state.vars.items())
        elif isinstance(state, SleepState):
            fields.append(((*path, "until"), state.until))
            fields.append(((*path, "duration"), state.duration))
        elif isinstance(state, WaitState):
            fields.append(((*path, "timeout"), state.timeout))
            fields.append(((*path, "until"), state.until))
        elif isinstance(state, SucceedState):
            fields.append(((*path, "output"), state.output))
        elif isinstance(state, ContinueAsNewState):
            fields.append(((*path, "input"), state.input))
        elif isinstance(state, FailState):
            fields.append(((*path, "error"), state.error))
            fields.append(((*path, "message"), state.message))
            fields.append(((*path, "details"), state.details))
        elif isinstance(state, MapState):
            fields.append(((*path, "items"), state.items))
            fields.append(((*path, "concurrency"), state.concurrency))
        for field_path, value in fields:
            if value is not None:
                yield scope, field_path, value


def _durations(path: JsonPath, owner: Any) -> Iterator[tuple[JsonPath, Any]]:
    """The templated durations of `owner`'s retry and timeout blocks (its predicates are not
    evaluated in a state's scope: `predicate_paths`)."""
    for field_path, value, kind in block_fields(path, owner):
        if kind == DURATION:
            yield field_path, value


def predicate_paths(ctx: LintContext) -> Iterator[JsonPath]:
    """Where the retry predicates are: templates with names of their own (TF284)."""
    owners: list[tuple[JsonPath, Any]] = [(("defaults",), ctx.workflow.defaults)]
    owners.extend((scope.state_path(name), state) for scope, name, state in ctx.states())
    for path, owner in owners:
        for field_path, _value, kind in block_fields(path, owner):
            if kind == PREDICATE:
                yield field_path


def template_strings(ctx: LintContext) -> list[tuple[Scope, JsonPath, str]]:
    """Every template string with its path and scope (found once, for all template rules)."""
    if ctx.templates.strings is None:
        ctx.templates.strings = [
            (scope, string_path, text)
            for scope, path, value in template_values(ctx)
            for string_path, text in iter_strings(value, path)
        ]
    return ctx.templates.strings


def _error_position(ctx: LintContext, path: JsonPath, line: int | None) -> Position:
    """Where a template error is: inside a `|` block scalar, on the template's own line."""
    position = ctx.document.locate(path)
    lines = ctx.document.text.splitlines()
    if not 1 <= position.line <= len(lines):
        return position
    at = lines[position.line - 1][position.column - 1 :]
    if not at.startswith(("|", ">")):
        return position
    # Block content starts on the next line; a folded (>) scalar joins lines, so only the
    # literal (|) style keeps the template's line numbers.
    offset = (line or 1) if at.startswith("|") else 1
    target = position.line + offset
    if target > len(lines):
        return position
    text = lines[target - 1]
    return Position(target, len(text) - len(text.lstrip()) + 1)


def check_template_syntax(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF220: every template compiles."""
    for _scope, path, text in template_strings(ctx):
        error = ctx.templates(text).error
        if error is None:
            continue
        diagnostic = ctx.error(
            "TF220",
            path,
            f"{error.message} in {text.strip()!r}",
            "check the {{ ... }} / {% ... %} delimiters, quotes and parentheses",
        )
        yield dataclasses.replace(diagnostic, position=_error_position(ctx, path, error.line))


def _var_setters(ctx: LintContext) -> dict[str, list[Scope]]:
    """Each variable name with the scopes that set it."""
    setters: dict[str, list[Scope]] = {}

    def add(name: str | None, scope: Scope) -> None:
        # A nested write (result: order.payment, set "order.status") sets vars.order.
        if name is not None:
            setters.setdefault(name.split(".", 1)[0], []).append(scope)

    for name in ctx.workflow.vars or {}:
        add(name, ctx.root)
    for update in (ctx.workflow.updates or {}).values():
        for name in update.vars or {}:
            add(name, ctx.root)
    for scope, _name, state in ctx.states():
        if isinstance(state, SetState):
            for key in state.vars:
                add(key, scope)
        if isinstance(state, ActivityState | WaitState | ParallelState | MapState | ChildState):
            add(state.result, scope)
        if isinstance(state, ParallelState | MapState):
            add(state.outcomes, scope)
        for catcher in catchers_of(state):
            add(catcher.result, scope)
    return setters


def check_unset_vars(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF221 / TF222 (warnings): a template reads vars.X that nothing visible sets."""
    setters = _var_setters(ctx)
    # Per name, not per template: each lookup goes over every variable of the file.
    suggestions: dict[str, str | None] = {}
    for scope, path, text in template_strings(ctx):
        for var in sorted(ctx.templates(text).vars_read):
            where = setters.get(var)
            if where is None:
                if var not in suggestions:
                    suggestions[var] = did_you_mean(var, setters)
                yield ctx.warning(
                    "TF221",
                    path,
                    f"vars.{var} is read here but nothing sets it",
                    join_hints(
                        suggestions[var],
                        f"set it in the top-level vars, a set state, or as the result of a "
                        f"state (result: {var})",
                    ),
                )
            elif not any(any(s is w for w in where) for s in scope.ancestors()):
                yield ctx.warning(
                    "TF222",
                    path,
                    f"vars.{var} is read in {scope.describe()} but only set in "
                    f"{where[0].describe()}, whose writes stay in its own copy of vars",
                    "a branch or map iteration hands data back only through its output: "
                    "end it with a succeed state whose output carries the value and read "
                    "it from the parallel/map state's result",
                )


def check_template_names(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF223 (warning): a template uses a name the engine never provides."""
    for scope, path, text in template_strings(ctx):
        if not is_template(text) or path[0] == "updates":
            continue  # an update's templates: TF264 (dsl/lint/updates.py)
        facts = ctx.templates(text)
        if not facts.readable:
            continue  # TF220
        known = BUILTIN_NAMES | set(scope.map_names) | GLOBAL_NAMES
        if path[0] == "queries":
            known |= QUERY_NAMES
        for name in sorted(facts.undeclared - known):
            yield ctx.warning(
                "TF223",
                path,
                f"the template uses {name!r}, which is not defined here",
                join_hints(
                    did_you_mean(name, known),
                    "templates see input, vars, run, now and state"
                    + (f", and here also {', '.join(scope.map_names)}" if scope.map_names else "")
                    + "; variables are read as vars.<name>",
                ),
            )


def check_choice_conditions(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF224: a condition holds only when it evaluates to the boolean true, so it must be one
    `{{ ... }}` expression: plain text or a text template renders to a string, never true."""
    for scope, name, state in ctx.states():
        if not isinstance(state, ChoiceState):
            continue
        for index, choice in enumerate(state.choices):
            if single_expression(choice.when) is not None or ctx.templates(choice.when).error:
                continue  # fine, or TF220
            inner = choice.when if not is_template(choice.when) else "..."
            yield ctx.error(
                "TF224",
                (*scope.state_path(name), "choices", index, "when"),
                f"condition {index + 1} of choice state {name!r} is not a single "
                f"{{{{ ... }}}} expression ({choice.when!r}): it renders to a string, which "
                "never counts as true",
                f"write the whole condition as one expression: when: '{{{{ {inner} }}}}'",
            )


def check_map_names(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF225: the loop variable of a map must not hide a name templates rely on."""
    reserved = BUILTIN_NAMES | {"index"} | GLOBAL_NAMES
    for scope, name, state in ctx.states():
        if isinstance(state, MapState) and state.as_ in reserved:
            yield ctx.error(
                "TF225",
                (*scope.state_path(name), "as"),
                f"map state {name!r} names its loop variable {state.as_!r}, which hides the "
                f"built-in name {state.as_!r} inside the body",
                "pick another name, e.g. as: order",
            )


# What one evaluation may iterate within the default budget (dsl.template_limits).
ITERATION_LIMIT = DEFAULT_BUDGET_MS * WORK_PER_MS


def _literal_int(node: nodes.Node) -> int | None:
    from jinja2 import nodes

    if isinstance(node, nodes.Const) and type(node.value) is int:
        return node.value
    if isinstance(node, nodes.Neg):
        inner = _literal_int(node.node)
        return None if inner is None else -inner
    return None


def _range_length(node: nodes.Node) -> int | None:
    """How many items `range(<whole number literals>)` yields; None when it cannot be seen."""
    from jinja2 import nodes

    if not (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "range"
        and 1 <= len(node.args) <= 3
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        return None
    bounds = [_literal_int(arg) for arg in node.args]
    if any(bound is None for bound in bounds):
        return None
    try:
        return len(range(*[b for b in bounds if b is not None]))
    except ValueError:  # a step of 0: the sandbox refuses it at run time
        return None


def _heavy_loops(found: Iterable[nodes.Node], outer: int = 1) -> Iterator[tuple[nodes.For, int]]:
    """Loops among `found` (and nested in them) whose literal ranges multiply past the limit:
    the innermost loop where the product first crosses it, with that product."""
    from jinja2 import nodes

    for node in found:
        if isinstance(node, nodes.For):
            length = _range_length(node.iter)
            total = outer * (length if length is not None else 1)
            if total > ITERATION_LIMIT:
                yield node, total
                continue
            yield from _heavy_loops([*node.body, *node.else_], total)
        else:
            yield from _heavy_loops(node.iter_child_nodes(), outer)


def _recursive_macros(ast: nodes.Template) -> Iterator[nodes.Macro]:
    from jinja2 import nodes

    for macro in ast.find_all(nodes.Macro):
        if any(
            isinstance(call.node, nodes.Name) and call.node.name == macro.name
            for call in macro.find_all(nodes.Call)
        ):
            yield macro


def check_template_cost(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF227 (warning): a template whose loops cannot finish within the evaluation budget, as
    far as can be seen: nested ranges with literal bounds, or a macro that calls itself."""
    budget = f"the {DEFAULT_BUDGET_MS:,} ms template budget ({ITERATION_LIMIT:,} iterations)"
    for _scope, path, text in template_strings(ctx):
        if not is_template(text) or "{%" not in text:
            continue  # a loop or a macro needs a {% %} tag
        ast = ctx.templates(text).tree
        if ast is None:
            continue  # TF220 (a template with {% %} tags has its tree when it compiles)
        for loop, total in _heavy_loops([ast]):
            diagnostic = ctx.warning(
                "TF227",
                path,
                f"the loops of this template run {total:,} times, more than {budget} allows: "
                "the state would fail with ExpressionLimit",
                f"loop over less, or let an activity do this work ({BUDGET_ENV} raises the budget)",
            )
            yield dataclasses.replace(diagnostic, position=_error_position(ctx, path, loop.lineno))
        for macro in _recursive_macros(ast):
            diagnostic = ctx.warning(
                "TF227",
                path,
                f"macro {macro.name!r} calls itself: nothing bounds how deep or how often it "
                f"recurses, and past {budget} the state fails with ExpressionLimit",
                "write the repetition as a {% for %} over a bounded range, or move it into an activity",
            )
            yield dataclasses.replace(diagnostic, position=_error_position(ctx, path, macro.lineno))
