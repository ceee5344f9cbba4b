"""Rules about exit handlers (on_exit): what a handler can do, and handlers that never run."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext, Scope
from dsl.model import ActivityState, ChildState, CompensateState


def _in_handler(scope: Scope) -> str | None:
    """The on_exit key of the handler that `scope` belongs to, else None."""
    for each in scope.ancestors():
        if each.kind == "exit":
            return each.owner
    return None


def check_handler_states(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF286 / TF287: a handler runs after the saga: it cannot compensate, nor be compensated."""
    if ctx.workflow.on_exit is None:
        return
    for scope, name, state in ctx.states():
        handler = _in_handler(scope)
        if handler is None:
            continue
        path = scope.state_path(name)
        if isinstance(state, CompensateState):
            yield ctx.error(
                "TF286",
                (*path, "type"),
                f"state {name!r} of exit handler {handler!r} is a compensate state, but "
                "exit handlers run after the run's compensations",
                "compensate in the workflow's own states (a compensate state or a failing "
                "run does it); an exit handler can run activities to clean up or notify",
            )
        elif isinstance(state, ActivityState | ChildState) and state.compensate is not None:
            yield ctx.warning(
                "TF287",
                (*path, "compensate"),
                f"the compensation of {name!r} in exit handler {handler!r} never runs: "
                "the saga is over when exit handlers start",
                "remove `compensate`, or undo the step in a later state of the handler",
            )


def check_timeout_handler(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF288 / TF289 (warnings): on_exit.timeout without a whole-run timeout never runs; one
    without a timeout of its own may run for ever after the run's time is up."""
    on_exit = ctx.workflow.on_exit
    if on_exit is None or on_exit.timeout is None:
        return
    if ctx.workflow.timeout is not None and on_exit.timeout.timeout is None:
        yield ctx.warning(
            "TF289",
            ("on_exit", "timeout"),
            "the exit handler 'timeout' has no timeout of its own: it runs after the run's "
            "time is up, for as long as it takes",
            "bound it, e.g. `timeout: 5m` under on_exit.timeout (the whole-run timeout no "
            "longer applies once the handlers run)",
            key=True,
        )
    if ctx.workflow.timeout is None:
        yield ctx.warning(
            "TF288",
            ("on_exit", "timeout"),
            "the exit handler 'timeout' never runs: the workflow has no whole-run timeout",
            "add `timeout: <duration>` at the top level, or remove the handler",
            key=True,
        )
