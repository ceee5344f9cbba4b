"""Keeping slow templates off the worker's event loop, at no cost to the ordinary step.

The worker decides on its event loop (the engine is pure and fast), under a small inline
template budget. A template that needs more raises NeedsMoreTime in the middle of a decision,
with the run state half changed. Because the core is pure (definition + committed state +
inputs -> new state), that decision is simply abandoned: the state is loaded again as last
committed and every input applied since then is applied again, in a thread, with the full
budget. Meanwhile the loop renews leases and serves the other runs.

`DecisionLog` is a driver's list of those inputs since its last commit; `outcome_decision` and
`inbox_decision` make the inputs a driver applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from interpreter.core.engine import Engine
from interpreter.core.records import Command
from interpreter.core.updates import apply_update
from interpreter.executor import Outcome
from interpreter.expressions import NeedsMoreTime, full_budget, inline_budget

# One input to the engine: a call on it (its result is kept, e.g. the tasks it started).
Decision = Callable[[Engine], Any]


def outcome_decision(task_id: str, outcome: Outcome) -> Decision:
    """An activity attempt's outcome."""
    if outcome.ok:
        return lambda engine: engine.task_completed(task_id, outcome.result)
    error = outcome.error
    assert error is not None
    return lambda engine: engine.task_failed(task_id, error, outcome.non_retryable)


def inbox_decision(kind: str, item_id: Any, name: str, payload: Any) -> Decision:
    """An item of the run's inbox: a child's end, a callback, an update or a signal."""

    def child_finished(engine: Engine) -> None:
        body = payload or {}
        engine.commands.append(Command("consume_signal", {"id": item_id}))
        engine.child_finished(
            name, body.get("status", "failed"), body.get("output"), body.get("error")
        )

    if kind == "child":
        return child_finished
    if kind == "callback":
        return lambda engine: engine.callback_input(item_id, name, payload)
    if kind == "update":
        body = payload or {}
        return lambda engine: apply_update(
            engine, engine, item_id, body["id"], name, body.get("payload")
        )
    return lambda engine: engine.offer_signal(item_id, name, payload)


class DecisionLog:
    """The decisions of one run since its last commit, to redo them off the loop if needed."""

    def __init__(self, slow_lane: asyncio.Semaphore) -> None:
        """`slow_lane`: shared by a worker's runs, so their slow decisions go to a thread one
        at a time. Each may build up to the template budget's size limits; several at once
        would multiply the worker's peak memory (and only share the same cores anyway)."""
        self._slow_lane = slow_lane
        self._since_commit: list[Decision] = []
        self.redone = 0  # how many times a decision went to a thread (for tests and logs)

    def committed(self) -> None:
        self._since_commit.clear()

    def decide(self, engine: Engine, decision: Decision) -> tuple[bool, Any]:
        """Apply `decision` inline, under the inline budget: (True, its result). (False, None)
        when a template ran out of that budget: `redo` then applies it again, off the loop.
        Not a coroutine: several decisions a step, and nearly all of them end here."""
        self._since_commit.append(decision)
        try:
            with inline_budget():
                return True, decision(engine)
        except NeedsMoreTime:
            return False, None

    async def redo(self, from_committed: Callable[[], Engine]) -> tuple[Engine, Any]:
        """After `decide` gave (False, None): `from_committed()` (called on the loop: it reads
        the store) gives an engine on the last committed state, and every decision since that
        commit is applied to it again in a thread; the engine to go on with and the last
        decision's result."""
        fresh = from_committed()
        decisions = list(self._since_commit)

        def redo() -> Any:
            result = None
            with full_budget():
                for each in decisions:
                    result = each(fresh)
            return result

        async with self._slow_lane:
            result = await asyncio.to_thread(redo)
        self.redone += 1
        return fresh, result
