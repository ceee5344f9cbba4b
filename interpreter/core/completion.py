"""Completion rules of parallel and map states: all (the default), the first success (a race),
at least N successes (a quorum), with a number or percentage of tolerated failures.

A parallel/map frame with a `completion` (or `outcomes`) is *ruled*: every branch's end is
judged here. When the rule is met, or can no longer be met, the branches still running are
cancelled through the one cancellation path (saga.drop_frames_under: their tasks and timers
are dropped, so a running attempt sees ctx.cancelled, and their child runs are cancelled), the
iterations not launched yet never start, and a `CompletionDecided` event says what won and why.
Compensations recorded by steps that completed in a cancelled or failed branch stay on the
run's stack: they run if the run later fails or is cancelled, like any completed step's.

The wait of a ruled frame keeps, besides the usual `results`/`running`/`next_index`/`total`,
`ok` (successes), `failed` (index -> error, sparse) and `wins` (success order, kept for first
and quorum only, so at most N long): never a per-item list, so a 10,000-item map stays cheap.
"""

from __future__ import annotations

import math
from typing import Any

from dsl.model import MapState, ParallelState
from interpreter.core.bookkeeping import Bookkeeping, Transitions
from interpreter.core.records import error
from interpreter.core.saga import drop_frames_under

# How many decisions `tideflow status` shows (the newest; the history has them all).
DECISIONS_KEPT = 10


def is_ruled(state: ParallelState | MapState) -> bool:
    return state.completion is not None or state.outcomes is not None


def tolerance(state: ParallelState | MapState, total: int) -> int:
    """The failures a state tolerates before it fails."""
    rule = state.completion
    value = None if rule is None else rule.tolerated_failures
    if value is None:
        return 0 if rule is None or rule.rule == "all" else total
    if isinstance(value, str):
        return math.floor(float(value[:-1]) * total / 100 + 1e-9)
    return int(value)


def needed(state: ParallelState | MapState, total: int) -> int:
    rule = state.completion
    if rule is None or rule.rule == "all":
        return total
    if rule.rule == "first":
        return 1
    return rule.min_successes or 1


def branch_succeeded(run: Bookkeeping, parent: dict[str, Any], slot: int) -> None:
    wait = parent["wait"]
    wait["ok"] = wait.get("ok", 0) + 1
    state = run.state(parent)
    assert isinstance(state, ParallelState | MapState)
    if state.completion is not None and state.completion.rule != "all":
        wait.setdefault("wins", []).append(slot)


def branch_failed(parent: dict[str, Any], slot: int, err: dict[str, Any]) -> None:
    parent["wait"].setdefault("failed", {})[str(slot)] = err


def judge(run: Bookkeeping, flow: Transitions, parent: dict[str, Any]) -> bool:
    """Decide a ruled parallel/map frame if its rule is met or can no longer be met; True
    when decided (the frame went on), False when it keeps waiting."""
    state = run.state(parent)
    assert isinstance(state, ParallelState | MapState)
    wait = parent["wait"]
    total = wait["total"]
    ok = wait.get("ok", 0)
    failed = len(wait.get("failed", {}))
    remaining = len(wait["running"]) + total - wait["next_index"]
    allowed = tolerance(state, total)
    need = needed(state, total)
    rule = "all" if state.completion is None else state.completion.rule
    what = "item" if wait["kind"] == "map" else "branch"
    met: bool
    if failed > allowed:
        met, reason = False, f"{failed} {what}(es) failed, more than the {allowed} tolerated"
    elif rule == "all":
        if remaining:
            return False
        met, reason = True, f"all {total} {what}(es) ended, {failed} failed ({allowed} tolerated)"
    elif ok >= need:
        wins = wait.get("wins", [])
        met = True
        if rule == "first":
            reason = f"{what} {wins[0]} succeeded first"
        else:
            reason = f"{ok} of {total} {what}(es) succeeded (quorum of {need})"
    elif ok + remaining < need:
        met = False
        reason = (
            f"no {what} to run"
            if total == 0
            else f"only {ok + remaining} of {total} {what}(es) can still succeed; {need} needed"
        )
    else:
        return False
    reason = reason.replace("branch(es)", "branches").replace("item(es)", "items")
    _decide(run, flow, parent, state, rule, met, reason)
    return True


def _decide(
    run: Bookkeeping,
    flow: Transitions,
    parent: dict[str, Any],
    state: ParallelState | MapState,
    rule: str,
    met: bool,
    reason: str,
) -> None:
    wait = parent["wait"]
    frames = run.s["frames"]
    cancelled = sorted(
        [frames[fid]["slot"] for fid in wait["running"] if fid in frames]
        + list(range(wait["next_index"], wait["total"]))
    )
    drop_frames_under(run, parent["id"])
    failed: dict[str, Any] = wait.get("failed", {})
    wins: list[int] = wait.get("wins", [])
    summary: dict[str, Any] = {
        "rule": rule,
        "met": met,
        "reason": reason,
        "winner": wins[0] if wins and met else None,
        "succeeded": wait["total"] - len(failed) - len(cancelled),
        "failed": len(failed),
        "cancelled": len(cancelled),
    }
    if rule == "quorum":
        summary["winners"] = list(wins)
    run.emit("CompletionDecided", parent["state"], payload={**summary, "frame": parent["id"]})
    decided = run.s.setdefault("decided", [])
    decided.append({"state": parent["state"], **summary})
    del decided[:-DECISIONS_KEPT]
    results = wait["results"]
    parent["status"] = "ready"
    parent["wait"] = None
    if state.outcomes:
        cancelled_set = set(cancelled)
        branches: list[dict[str, Any]] = []
        for index, output in enumerate(results):
            if str(index) in failed:
                branches.append({"status": "failed", "error": failed[str(index)]})
            elif index in cancelled_set:
                branches.append({"status": "cancelled"})
            else:
                branches.append({"status": "succeeded", "output": output})
        parent["vars"] = {**parent["vars"], state.outcomes: {**summary, "branches": branches}}
    if met:
        flow.complete_state(parent, results)
        return
    flow.state_error(
        parent,
        error(
            "CompletionNotMet",
            f"state {parent['state']!r}: the {rule!r} rule cannot be met: {reason}",
            {**summary, "errors": failed},
        ),
    )
