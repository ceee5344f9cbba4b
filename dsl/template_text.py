"""What a template is, told from its text alone: no Jinja2 (about 130 M instructions to import,
20 ms), so that `tideflow validate` of a file whose templates are plain paths and comparisons
never loads it. dsl/templates.py compiles and renders; this module only reads strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)

# The globals of the sandbox (dsl.templates.ENVIRONMENT; tests/test_template_helpers.py checks
# that they are these): names a template reads that no variable needs to provide.
GLOBAL_NAMES = frozenset({"range", "dict", "merge", "get"})


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


def single_expression(value: str) -> str | None:
    """The inner expression when `value` is exactly one `{{ ... }}`, else None."""
    match = _SINGLE_EXPRESSION.match(value)
    if match is None:
        return None
    expr = match.group("expr")
    if "{{" in expr or "}}" in expr or "{%" in expr:
        return None
    return expr


def iter_strings(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string inside a JSON value with its path (for static checks)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_strings(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_strings(item, (*path, key))
