"""Evaluating a workflow's templates at run time, with JSON-only data in the context.

Every evaluation runs under a budget (dsl.template_limits): by default the configured one
(TIDEFLOW_TEMPLATE_BUDGET_MS). A worker deciding on its event loop evaluates under a small
inline budget instead (`inline_budget`): a template that needs more raises `NeedsMoreTime`, and
the worker redoes that decision in a thread with the full budget, so a slow template never
stalls the loop while the common step pays nothing extra.
"""

from __future__ import annotations

import sys
from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from contextvars import ContextVar, Token
from typing import Any

from dsl.template_limits import (
    DEFAULT_BUDGET_MS,
    BudgetSettingError,
    budget_ms_from_env,
    budget_scope,
    text_size,
)
from dsl.templates import TemplateError, TemplateLimit, render
from interpreter.jsondata import MAX_VALUE_BYTES, NotJsonData, check

# Names a map iteration may bind are stored per frame as "locals".

# The inline budget of a decision made on the worker's event loop: long enough for any ordinary
# template (microseconds), short enough that the loop stays responsive.
INLINE_BUDGET_MS = 5.0
_INLINE: ContextVar[float | None] = ContextVar("tideflow_inline_budget", default=None)


class ExpressionError(Exception):
    """A template failed at run time; `message` names the template and the state. `kind` is
    the error type a run records (and `catch` matches)."""

    kind = "ExpressionError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExpressionLimit(ExpressionError):
    """A template went past its budget of work or time, or would have built a value too large."""

    kind = "ExpressionLimit"


class InvalidValue(ExpressionError):
    """A templated limit or timestamp (map.concurrency, until) evaluated to a value the state
    cannot use; `details` names the field and the value. Catchable like any state error."""

    kind = "InvalidValue"

    def __init__(self, message: str, field: str, value: Any) -> None:
        super().__init__(message)
        self.details = {"field": field, "value": value}


class InvalidDuration(InvalidValue):
    """A templated duration is not a duration, is negative (or zero where a limit must be
    positive), is longer than 100 years, or is not finite."""

    kind = "InvalidDuration"


class NeedsMoreTime(Exception):
    """A template ran out of the inline budget: redo the whole decision with the full budget
    off the event loop. Not an ExpressionError, so the engine does not record it."""


class inline_budget:
    """Evaluate under the small inline budget; running out raises NeedsMoreTime. A plain
    class, not @contextmanager: it wraps every engine decision, several per step."""

    __slots__ = ("_budget_ms", "_token")

    def __init__(self, budget_ms: float | None = INLINE_BUDGET_MS) -> None:
        self._budget_ms = budget_ms
        self._token: Token[float | None] | None = None

    def __enter__(self) -> None:
        self._token = _INLINE.set(self._budget_ms)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _INLINE.reset(self._token)


def full_budget() -> inline_budget:
    """Undo `inline_budget` (for the redo in a thread, which inherits the caller's context)."""
    return inline_budget(None)


_REPORTED_SETTINGS: set[str] = set()


def _budget_ms() -> float:
    """The configured budget. A bad setting is a deployment's mistake, not the run's: say so
    once on stderr and use the default rather than fail every template of every run."""
    try:
        return budget_ms_from_env()
    except BudgetSettingError as exc:
        if str(exc) not in _REPORTED_SETTINGS:
            _REPORTED_SETTINGS.add(str(exc))
            print(f"tideflow: {exc}; using the default of {DEFAULT_BUDGET_MS} ms", file=sys.stderr)
        return DEFAULT_BUDGET_MS


def _jsonable(value: Any) -> Any:
    # Single-expression templates yield native Python values; keep only JSON shapes.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | range | KeysView | ValuesView | ItemsView):
        return [_jsonable(v) for v in value]
    raise TypeError(f"a template produced {type(value).__name__}, which is not JSON data")


def _check_size(result: Any, where: str) -> None:
    """Refuse a result far past what a run keeps before JSON-encoding it: a list may hold one
    long text many times (the estimate never exceeds the JSON's real size)."""
    size = text_size(result, MAX_VALUE_BYTES)
    if size > MAX_VALUE_BYTES:
        raise ExpressionLimit(
            f"{where}: the result would be more than {size:,} characters of JSON; "
            f"the limit is {MAX_VALUE_BYTES:,} bytes"
        )


def evaluate(value: Any, context: Mapping[str, Any], *, where: str) -> Any:
    """Render `value` (any JSON, strings may be templates) under one budget; raise
    ExpressionLimit past it, ExpressionError on any other failure."""
    inline = _INLINE.get()
    budget_ms = _budget_ms() if inline is None else inline
    try:
        with budget_scope(budget_ms):
            result = _jsonable(render(value, context))
        _check_size(result, where)
        check(result)
    except TemplateLimit as exc:
        if exc.out_of_time and inline is not None:
            raise NeedsMoreTime(where) from None
        raise ExpressionLimit(f"{where}: template {exc.template!r}: {exc.message}") from None
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
