"""Rules about ending a parallel/map early (completion rules) and detached child states.

Each rule looks at each state once: linear in the number of states.
"""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext
from dsl.model import ChildState, Completion, MapState, ParallelState
from dsl.source import JsonPath
from dsl.template_text import is_template

# The errors a detached child's state can raise: its templates, or a child that cannot start.
DETACHED_ERRORS = frozenset({"*", "ChildFailed", "ChildIdInUse", "ExpressionError"})


def _fixed_count(state: ParallelState | MapState) -> int | None:
    """How many branches or items the state has, when the file says so."""
    if isinstance(state, ParallelState):
        return len(state.branches)
    if isinstance(state.items, list):
        return len(state.items)
    return None


def _fanouts(
    ctx: LintContext,
) -> Iterator[tuple[JsonPath, str, ParallelState | MapState, Completion]]:
    for scope, name, state in ctx.states():
        if isinstance(state, ParallelState | MapState) and state.completion is not None:
            yield scope.state_path(name), name, state, state.completion


def check_quorum_size(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF274: a quorum that needs more successes than there are branches (or literal items)."""
    for path, name, state, rule in _fanouts(ctx):
        count = _fixed_count(state)
        if rule.rule != "quorum" or rule.min_successes is None or count is None:
            continue
        if rule.min_successes > count:
            what = "branches" if isinstance(state, ParallelState) else "items"
            yield ctx.error(
                "TF274",
                (*path, "completion", "min_successes"),
                f"state {name!r} needs {rule.min_successes} successes but has only {count} "
                f"{what}, so its quorum can never be met",
                f"lower min_successes to at most {count}, or add {what}",
            )


def check_tolerated_failures(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF275: a tolerated percentage above 100%."""
    for path, name, _state, rule in _fanouts(ctx):
        value = rule.tolerated_failures
        if isinstance(value, str) and float(value[:-1]) > 100:
            yield ctx.error(
                "TF275",
                (*path, "completion", "tolerated_failures"),
                f"state {name!r} tolerates {value} of failures; a percentage is 0% to 100%",
                "write a percentage from 0% to 100%, or a count of failures",
            )


def check_empty_race(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF276: a race or quorum on a map whose items are an empty list: it can never be met."""
    for path, name, state, rule in _fanouts(ctx):
        if isinstance(state, MapState) and rule.rule != "all" and state.items == []:
            yield ctx.error(
                "TF276",
                (*path, "items"),
                f"map state {name!r} has the rule {rule.rule!r} but no items, so it always "
                "fails with CompletionNotMet",
                "give the map items, or use the rule 'all' (an empty map then completes at once)",
            )


def check_rule_keys(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF277: a quorum without min_successes, or min_successes on another rule."""
    for path, name, _state, rule in _fanouts(ctx):
        if rule.rule == "quorum" and rule.min_successes is None:
            yield ctx.error(
                "TF277",
                (*path, "completion", "rule"),
                f"state {name!r} has the rule 'quorum' but no min_successes",
                "add `min_successes: N` (the successes needed)",
            )
        elif rule.rule != "quorum" and rule.min_successes is not None:
            yield ctx.error(
                "TF277",
                (*path, "completion", "min_successes"),
                f"state {name!r} sets min_successes, which only the rule 'quorum' uses "
                f"(its rule is {rule.rule!r})",
                "write `rule: quorum`, or remove min_successes",
            )


def _children(ctx: LintContext) -> Iterator[tuple[JsonPath, str, ChildState]]:
    for scope, name, state in ctx.states():
        if isinstance(state, ChildState):
            yield scope.state_path(name), name, state


def check_detached_compensate(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF278: compensate on a detached child: it would be recorded before the child did
    anything, and undo nothing the parent knows of."""
    for path, name, state in _children(ctx):
        if state.detached and state.compensate is not None:
            yield ctx.error(
                "TF278",
                (*path, "compensate"),
                f"detached child state {name!r} has compensate, but the parent never learns "
                "what the child did, so there is nothing to undo when it completes",
                "remove compensate and choose parent_close (cancel or terminate) to stop the "
                "child with the parent, or let the child compensate itself",
            )


def check_detached_catch(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF279 (warning): a catcher on a detached child that names only errors it cannot raise."""
    for path, name, state in _children(ctx):
        if not state.detached:
            continue
        for index, catcher in enumerate(state.catch or []):
            if not DETACHED_ERRORS.intersection(catcher.errors):
                yield ctx.warning(
                    "TF279",
                    (*path, "catch", index, "errors"),
                    f"catcher {index + 1} of detached child state {name!r} never runs: the "
                    "state does not wait for the child, so only ChildFailed (the child could "
                    "not start), ChildIdInUse and ExpressionError can reach it",
                    "catch ChildFailed here, and handle the child's own errors in the child",
                )


def check_parent_close(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF280: parent_close on a child the parent waits for."""
    for path, name, state in _children(ctx):
        if state.parent_close is not None and not state.detached:
            yield ctx.error(
                "TF280",
                (*path, "parent_close"),
                f"child state {name!r} waits for its child, so parent_close never applies "
                "(a waited-for child is cancelled with its parent)",
                "add `detached: true`, or remove parent_close",
            )


def check_templated_id_detached(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF281 (warning): a detached child inside a map or parallel branch with a fixed id: every
    iteration would start the same child (the second fails with ChildIdInUse)."""
    for scope, name, state in ctx.states():
        if (
            isinstance(state, ChildState)
            and state.detached
            and state.id is not None
            and not is_template(state.id)
            and scope.parent is not None
        ):
            yield ctx.warning(
                "TF281",
                (*scope.state_path(name), "id"),
                f"detached child state {name!r} is inside a parallel branch or map with the "
                f"fixed id {state.id!r}: only the first start can have it, the others fail "
                "with ChildIdInUse",
                "make the id a template (e.g. with {{ index }}), or leave it out",
            )
