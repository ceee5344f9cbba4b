"""Rules about data: templates written where none is evaluated, the paths that result/set write
to, and regular expressions written in templates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext
from dsl.lint.expressions import template_strings, template_values
from dsl.model import SetState
from dsl.source import JsonPath
from dsl.templates import is_template

# Keys whose values are data for other tools, not workflow fields: free text, JSON Schemas.
_FREE_KEYS = frozenset({"description"})
_TOP_LEVEL_DATA = frozenset({"input_schema", "$schema"})
# Durations: TF210 reports a template there already.
_DURATION_KEYS = frozenset(
    {"timeout", "duration", "start_to_close", "schedule_to_close", "heartbeat"}
    | {"initial_interval", "max_interval"}
)
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
    pending: list[tuple[JsonPath, Any]] = [((), ctx.document.data)]
    while pending:
        path, value = pending.pop()
        if path in template_paths or _skipped(path):
            continue
        if isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and is_template(value) and path[-1] not in _DURATION_KEYS:
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
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        named = node.name in _REGEX_HELPERS or node.name == "glob"
        if named and node.args and isinstance(node.args[0], nodes.Const):
            pattern = node.args[0].value
            if isinstance(pattern, str):
                yield node.name, pattern


def check_regex_literals(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF258: a regular expression (or glob) written in a template compiles and is within the
    length limit."""
    from dsl.template_helpers import HelperError, pattern_problem

    for _scope, path, text in template_strings(ctx):
        if "regex_" not in text and "glob" not in text:
            continue
        tree = ctx.templates(text).tree
        if tree is None:
            continue
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
