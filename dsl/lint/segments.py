"""Rules about continue-as-new and the history limit (TF290-TF292)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dsl.diagnostics import Diagnostic
from dsl.history_limits import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX, HISTORY_LIMIT_MIN
from dsl.lint.context import LintContext
from dsl.model import ContinueAsNewState
from dsl.template_text import is_template, iter_strings


def check_continue_as_new_scope(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF290: continue_as_new ends the whole run's segment, so it stands only at the top level."""
    for scope, name, state in ctx.states():
        if isinstance(state, ContinueAsNewState) and scope.kind != "workflow":
            yield ctx.error(
                "TF290",
                (*scope.state_path(name), "type"),
                f"continue_as_new state {name!r} is inside {scope.describe()}; it can only "
                "stand at the top level (it ends the whole segment of the run)",
                f"end {scope.describe()} with a succeed state and put the continue_as_new "
                f"state after {scope.owner!r} at the top level",
            )


def _has_template(value: Any) -> bool:
    return any(is_template(text) for _, text in iter_strings(value))


def check_continue_as_new_input(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF291: a literal continue_as_new input must satisfy input_schema (the next segment would
    fail at once otherwise)."""
    schema = ctx.workflow.input_schema
    if not schema:
        return
    states = [
        (scope, name, state)
        for scope, name, state in ctx.states()
        if isinstance(state, ContinueAsNewState)
        and state.input is not None
        and not _has_template(state.input)
    ]
    if not states:
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError, best_match

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return  # TF231 reports the schema
    validator = Draft202012Validator(schema)
    for scope, name, state in states:
        err = best_match(validator.iter_errors(state.input))
        if err is None:
            continue
        inner = tuple(err.absolute_path)
        pointer = "/" + "/".join(str(p) for p in inner)
        path = (*scope.state_path(name), "input")
        yield ctx.error(
            "TF291",
            (*path, *inner),
            f"the input of continue_as_new state {name!r} does not satisfy input_schema "
            f"at {pointer}: {err.message}",
            "give an input the workflow's input_schema accepts: the next segment starts "
            "with it, and an invalid one fails the run",
        )


def check_history_limit(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF292: history_limit within the allowed range."""
    limit = ctx.workflow.history_limit
    if limit is None or HISTORY_LIMIT_MIN <= limit <= HISTORY_LIMIT_MAX:
        return
    yield ctx.error(
        "TF292",
        ("history_limit",),
        f"history_limit {limit:,} is outside the allowed range "
        f"{HISTORY_LIMIT_MIN:,} to {HISTORY_LIMIT_MAX:,}",
        f"leave it out for the default of {HISTORY_LIMIT_DEFAULT:,} events per segment, or "
        "use continue_as_new to keep each segment short",
    )
