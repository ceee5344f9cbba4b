"""Evaluating a workflow's templates at run time, with JSON-only data in the context."""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any

from dsl.templates import TemplateError, render
from interpreter.jsondata import NotJsonData, check

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
    if isinstance(value, list | tuple | range | KeysView | ValuesView | ItemsView):
        return [_jsonable(v) for v in value]
    raise TypeError(f"a template produced {type(value).__name__}, which is not JSON data")


def evaluate(value: Any, context: Mapping[str, Any], *, where: str) -> Any:
    """Render `value` (any JSON, strings may be templates); raise ExpressionError on failure."""
    try:
        result = _jsonable(render(value, context))
        check(result)
    except TemplateError as exc:
        raise ExpressionError(f"{where}: template {exc.template!r}: {exc.message}") from None
    except NotJsonData as exc:
        raise ExpressionError(
            f"{where}: the result cannot be kept in the run: {exc.reason}"
        ) from None
    except RecursionError:
        raise ExpressionError(f"{where}: the result is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"{where}: result is not JSON data: {exc}") from None
    return result
