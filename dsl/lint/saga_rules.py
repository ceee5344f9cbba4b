"""Rules about the saga settings (`saga:`): what a failure does with the compensations."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext


def check_hold_has_compensations(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF293 (warning): `on_failure: hold` where no state records a compensation holds
    nothing: the run fails as with the default, and `tideflow compensate` has nothing to run."""
    saga = ctx.workflow.saga
    if saga is None or saga.on_failure != "hold":
        return
    for scope, _name, state in ctx.states():
        in_handler = any(each.kind == "exit" for each in scope.ancestors())
        if not in_handler and getattr(state, "compensate", None) is not None:
            return
    yield ctx.warning(
        "TF293",
        ("saga", "on_failure"),
        "`on_failure: hold` holds nothing: no state of this workflow records a compensation",
        "add `compensate:` to the steps that need undoing, or remove the `saga` setting",
    )
