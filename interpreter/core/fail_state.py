"""The error a `fail` state raises: its `error` type and `message` may be templates, so a
catch handler can re-raise the error it caught (`error: "{{ vars.problem.type }}"`)."""

from __future__ import annotations

from typing import Any, Protocol

from dsl.model import FailState
from dsl.template_text import is_template
from interpreter.core.records import error
from interpreter.expressions import ExpressionError

# An error type is a short name: the same bound as a run id.
MAX_ERROR_TYPE = 200


class _Evaluates(Protocol):
    def eval(self, frame: dict[str, Any], value: Any, what: str) -> Any: ...


def failure_of(engine: _Evaluates, frame: dict[str, Any], state: FailState) -> dict[str, Any]:
    """{type, message, details} of the fail state in `frame`; ExpressionError when the
    templated type is not a usable name."""
    kind = state.error
    if is_template(kind):
        value = engine.eval(frame, kind, "error")
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ERROR_TYPE:
            raise ExpressionError(
                f"state {frame['state']!r}, error: the template {kind!r} gave {value!r}; an "
                f"error type must be a non-empty text of at most {MAX_ERROR_TYPE} characters"
            )
        kind = value
    message = engine.eval(frame, state.message, "message") if state.message else kind
    details = engine.eval(frame, state.details, "details")
    return error(kind, str(message), details)
