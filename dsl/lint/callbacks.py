"""Lint rules of callback tasks (`completion: callback` on an activity state): TF268-TF271.

Each rule visits every state once (linear in the number of states)."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import BUILTIN_ACTIVITIES, LintContext, Scope, written
from dsl.model import ActivityState, AnyState, MapState, Timeouts


def _callback_states(ctx: LintContext) -> Iterator[tuple[Scope, str, ActivityState]]:
    for scope, name, state in ctx.states():
        if isinstance(state, ActivityState) and state.completion == "callback":
            yield scope, name, state


def _bounds(ctx: LintContext, state: ActivityState) -> set[str]:
    """The timeouts that apply to the state (its own, else the defaults), by name."""
    defaults = ctx.workflow.defaults.timeout if ctx.workflow.defaults else None
    found: set[str] = set()
    for block in (state.timeout, defaults):
        if isinstance(block, Timeouts):
            found |= set(written(block))
    return found


def check_callback_http(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF268: the built-in http activity never sees the callback token, so nobody could
    complete the wait."""
    for scope, name, state in _callback_states(ctx):
        if state.activity in BUILTIN_ACTIVITIES:
            yield ctx.error(
                "TF268",
                (*scope.state_path(name), "completion"),
                f"state {name!r}: the built-in {state.activity} activity cannot take "
                "completion: callback (it never gets the callback token to send out)",
                "register an activity that sends ctx.callback_token to the outside party "
                "(it may call http itself), or remove completion: callback",
            )


def check_callback_bounds(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF269 (warning): nothing bounds the wait; TF270 (warning): only heartbeat does, so an
    outside party that keeps heartbeating keeps the state waiting forever."""
    for scope, name, state in _callback_states(ctx):
        bounds = _bounds(ctx, state)
        path = (*scope.state_path(name), "completion")
        if not bounds:
            yield ctx.warning(
                "TF269",
                path,
                f"state {name!r} waits for its callback with no timeout: if nobody completes "
                "the token, the run waits forever",
                "add timeout: {start_to_close: ...} (it bounds the activity and the wait "
                "together), or a heartbeat the outside party keeps sending",
            )
        elif bounds == {"heartbeat"}:
            yield ctx.warning(
                "TF270",
                (*scope.state_path(name), "timeout", "heartbeat")
                if state.timeout is not None and state.timeout.heartbeat is not None
                else path,
                f"state {name!r}: only heartbeat bounds the callback wait, so an outside "
                "party that keeps heartbeating and never completes keeps it waiting forever",
                "add start_to_close (or schedule_to_close) as an upper bound of the whole wait",
            )


def check_callback_map_concurrency(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF271 (warning): one callback per map item, with the default concurrency: only ten
    tokens are out at a time, and item 11 is not even asked before one of the first answers."""
    for scope, name, _state in _callback_states(ctx):
        owner: AnyState | None = None
        if scope.kind == "map" and scope.parent is not None and scope.owner is not None:
            owner = scope.parent.states.get(scope.owner)
        if isinstance(owner, MapState) and owner.concurrency is None:
            yield ctx.warning(
                "TF271",
                (*scope.path, "type"),
                f"map state {scope.owner!r} runs callback state {name!r} for each item, ten "
                "items at a time (the default concurrency): later items are not asked until "
                "earlier ones are answered",
                "set concurrency to how many answers may be outstanding at once",
            )
