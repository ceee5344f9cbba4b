"""Evaluating a workflow's templates at run time, with JSON-only data in the context."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dsl.templates import TemplateError, render

# Names a map iteration may bind are stored per frame as "locals".


class ExpressionError(Exception):
    """A template failed at run time; `message` names the template and the state."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _jsonable(value: Any) -> Any:
    # Single-expression templates yield native Python values; keep only JSON shapes.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | range):
        return [_jsonable(v) for v in value]
    return json.loads(json.dumps(value))


def evaluate(value: Any, context: Mapping[str, Any], *, where: str) -> Any:
    """Render `value` (any JSON, strings may be templates); raise ExpressionError on failure."""
    try:
        return _jsonable(render(value, context))
    except TemplateError as exc:
        raise ExpressionError(f"{where}: template {exc.template!r}: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"{where}: result is not JSON data: {exc}") from None
