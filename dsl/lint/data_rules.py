"""Rules about data: templates written where none is evaluated, the paths that result/set write
to, and regular expressions written in templates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext
from dsl.lint.expressions import predicate_paths, template_strings, template_values
from dsl.lint.template_fields import DURATION_KEYS  # TF210 reports a template there already
from dsl.model import SetState
from dsl.source import JsonPath
from dsl.template_text import is_template

# Jinja2 only where a template has a syntax tree: a tree exists only once Jinja parsed it.
if TYPE_CHECKING:
    from jinja2 import nodes

# Keys whose values are data for other tools, not workflow fields: free text, JSON Schemas.
_FREE_KEYS = frozenset({"description"})
_TOP_LEVEL_DATA = frozenset({"input_schema", "$schema"})
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _skipped(path: JsonPath) -> bool:
    if not path:
        return False
    last = path[-1]
    if last in _FREE_KEYS:
        return True
    if len(path) == 1 and isinstance(last, str):
        return last in _TOP_LEVEL_DATA or last.startswith("x-")
    return len(path) == 3 and path[0] == "signals" and last == "schema"


def check_literal_templates(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF256: `{{`, `{%` or `{#` in a field that is not a template: it would be used as the
    literal text (a fail state's error type, an activity name, a signal name...)."""
    template_paths = {path for _scope, path, _value in template_values(ctx)}
    template_paths.update(predicate_paths(ctx))
    pending: list[tuple[JsonPath, Any]] = [((), ctx.document.data)]
    while pending:
        path, value = pending.pop()
        if path in template_paths or _skipped(path):
            continue
        if isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and is_template(value) and path[-1] not in DURATION_KEYS:
            field = ".".join(str(p) for p in path)
            yield ctx.error(
                "TF256",
                path,
                f"{field} is not a template field, so {value!r} would be used as the literal "
                "text, braces and all",
                "templates are evaluated in input, vars, output, queries, when, items, id, "
                "until, fail error/message/details and compensation input; write a fixed "
                "value here, or compute it in one of those fields",
            )


def _path_problem(key: str) -> str | None:
    if _PATH.match(key):
        return None
    return (
        "each part of a dotted path is a name (letters, digits, _; not starting with a digit), "
        "e.g. order.status"
    )


def check_var_paths(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF257: a set state's dotted keys are valid paths (`order.status`), and the top-level
    `vars` (names only) has no dotted key."""
    for key in ctx.workflow.vars or {}:
        if "." in key:
            yield ctx.error(
                "TF257",
                ("vars", key),
                f"top-level vars key {key!r} has a dot: initial variables are names, and a "
                "dot would not make a nested object here",
                f"write the nested object itself: vars: {{{key.split('.', 1)[0]}: {{...}}}}",
                key=True,
            )
    for scope, name, state in ctx.states():
        if not isinstance(state, SetState):
            continue
        for key in state.vars:
            if "." not in key:
                continue
            problem = _path_problem(key)
            if problem is not None:
                yield ctx.error(
                    "TF257",
                    (*scope.state_path(name), "vars", key),
                    f"set state {name!r}: {key!r} is not a valid variable path",
                    problem,
                    key=True,
                )


_REGEX_HELPERS = frozenset({"regex_search", "regex_findall", "regex_replace", "regex_match"})


def _literal_patterns(tree: nodes.Template) -> Iterator[tuple[str, str]]:
    from jinja2 import nodes

    for node in tree.find_all((nodes.Filter, nodes.Test)):
        named = node.name in _REGEX_HELPERS or node.name == "glob"
        if named and node.args and isinstance(node.args[0], nodes.Const):
            pattern = node.args[0].value
            if isinstance(pattern, str):
                yield node.name, pattern


def check_regex_literals(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF258: a regular expression (or glob) written in a template compiles and is within the
    length limit."""
    for _scope, path, text in template_strings(ctx):
        if "regex_" not in text and "glob" not in text:
            continue
        tree = ctx.templates(text).tree
        if tree is None:
            continue
        from dsl.template_helpers import HelperError, pattern_problem

        for helper, pattern in _literal_patterns(tree):
            try:
                pattern_problem(helper, pattern)
            except HelperError as exc:
                yield ctx.error(
                    "TF258",
                    path,
                    f"{helper}: {exc}",
                    "fix the pattern (Python regular expression syntax; a glob uses *, ? "
                    "and [...])",
                )


def _subschemas(schema: Any, path: JsonPath) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """Every schema object inside `schema` (properties, items, $defs, allOf/anyOf/oneOf...)."""
    pending: list[tuple[JsonPath, Any]] = [(path, schema)]
    while pending:
        where, node = pending.pop()
        if not isinstance(node, dict):
            continue
        yield where, node
        for key in ("properties", "$defs", "patternProperties"):
            children = node.get(key)
            if isinstance(children, dict):
                pending.extend(((*where, key, k), v) for k, v in children.items())
        for key in ("items", "additionalProperties", "not", "if", "then", "else"):
            if isinstance(node.get(key), dict):
                pending.append(((*where, key), node[key]))
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            children = node.get(key)
            if isinstance(children, list):
                pending.extend(((*where, key, i), v) for i, v in enumerate(children))


def check_input_schema_data(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF228: a `default` in input_schema that its own schema refuses (every run that leaves
    the value out would be refused). TF229 (warning): a `format` that is not checked."""
    schema = ctx.workflow.input_schema
    if not schema:
        return
    from dsl.input_schema import CHECKED_FORMATS

    for path, node in _subschemas(schema, ("input_schema",)):
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in CHECKED_FORMATS:
            yield ctx.warning(
                "TF229",
                (*path, "format"),
                f"format {fmt!r} is not checked: only {', '.join(CHECKED_FORMATS)} are, so "
                "any text passes",
                "use one of the checked formats, or a pattern: that says what you need",
            )
        if "default" not in node or "$ref" in node:
            continue
        problem = _default_problem(node)
        if problem is not None:
            yield ctx.error(
                "TF228",
                (*path, "default"),
                f"the default {node['default']!r} does not satisfy its own schema: {problem}",
                "every run that leaves this value out would be refused: fix the default or "
                "the schema",
            )


def _default_problem(node: dict[str, Any]) -> str | None:
    from jsonschema.exceptions import SchemaError, best_match

    from dsl.input_schema import validator

    own = {k: v for k, v in node.items() if k != "default"}
    try:
        error = best_match(validator(own).iter_errors(node["default"]))
    except (SchemaError, TypeError, ValueError, LookupError):
        return None  # TF231 reports a broken schema
    return None if error is None else error.message
