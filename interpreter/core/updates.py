"""Updates, decided by the pure core: one stored update in, its outcome out.

An update (declared under `updates:`) is validated against the run as it stands, then sets
top-level vars and/or wakes a `wait` of its name the way a signal of that name does (at once
when such a wait is in progress, else buffered in the run state until one begins), and returns
a value to its caller. A rejected update (its validator is false or fails, or one of its
templates fails) changes nothing and records no event; an applied one records `UpdateApplied`.
Either way the decision is the command `update_outcome`, which the worker commits with the
step's events, and the update's inbox item is consumed in that same commit.

No I/O, no clock: like every other input, the decision depends only on the definition, the
committed state and the update. The engine imports this module; it gets the engine's moves
as an argument (`Moves`), as fanout and saga do.
"""

from __future__ import annotations

from typing import Any, Protocol

from dsl.model import AnyState, MapState, ParallelState, WaitState
from interpreter.core import waits
from interpreter.core.bookkeeping import Bookkeeping
from interpreter.core.records import Command
from interpreter.expressions import ExpressionError, evaluate

# Run-state key of the wakes of applied updates that no wait has taken yet (oldest first).
WAKES = "update_wakes"


class Moves(Protocol):
    """What an update needs from the engine."""

    def advance(self) -> None: ...

    def deliver_signal(self, signal_id: Any, name: str, payload: Any) -> bool: ...


def apply_update(
    book: Bookkeeping, moves: Moves, item_id: Any, update_id: str, name: str, payload: Any
) -> None:
    """Decide the stored update `update_id` (inbox item `item_id`)."""
    # Frames entered but not yet run first: a wait that is about to begin takes the update now.
    moves.advance()
    book.commands.append(Command("consume_signal", {"id": item_id}))
    outcome = _decide(book, moves, update_id, name, payload)
    book.commands.append(Command("update_outcome", outcome))


def wake_buffered(book: Bookkeeping, moves: Moves) -> bool:
    """Give the oldest buffered wake that a wait now takes to that wait; True if one did."""
    wakes: list[dict[str, Any]] | None = book.s.get(WAKES)
    if not wakes:
        return False
    for index, wake in enumerate(wakes):
        if moves.deliver_signal(None, wake["name"], wake["payload"]):
            del wakes[index]
            if not wakes:
                del book.s[WAKES]
            return True
    return False


def _rejected(update_id: str, message: str) -> dict[str, Any]:
    return {"id": update_id, "status": "rejected", "result": None, "message": message}


def _decide(
    book: Bookkeeping, moves: Moves, update_id: str, name: str, payload: Any
) -> dict[str, Any]:
    spec = (book.defn.workflow.updates or {}).get(name)
    if spec is None:  # the definition is pinned: only a hand-made store row gets here
        return _rejected(update_id, f"workflow {book.defn.name!r} declares no update {name!r}")
    state = book.s
    ending = (state.get("compensation") or {}).get("reason") in ("failed", "cancelled")
    if state["status"] != "running" or state.get("cancelling") or ending:
        return _rejected(update_id, f"the run is ending: update {name!r} was not applied")
    root = state["frames"].get(state.get("root") or "")
    if root is None:
        return _rejected(update_id, f"the run has no top level: update {name!r} was not applied")
    where = f"update {name!r}"
    context = {**book.context(root), "payload": payload}
    try:
        if spec.validator is not None:
            verdict = evaluate(spec.validator, context, where=f"{where}, validator")
            if verdict is not True:
                if spec.message is None:
                    return _rejected(update_id, f"{where} was rejected by its validator")
                message = evaluate(spec.message, context, where=f"{where}, message")
                return _rejected(update_id, message if isinstance(message, str) else str(message))
        values = evaluate(spec.vars or {}, context, where=f"{where}, vars")
        new_vars = {**root["vars"], **values}
        result = evaluate(spec.returns, {**context, "vars": new_vars}, where=f"{where}, returns")
    except ExpressionError as exc:
        return _rejected(update_id, exc.message)
    root["vars"] = new_vars
    book.emit(
        "UpdateApplied",
        root["state"],
        payload={"update": name, "id": update_id, "payload": payload, "result": result},
    )
    # A wait for this name takes the payload the way it takes a signal's; when none waits now,
    # the first one to begin does (only names some wait uses are kept).
    if moves.deliver_signal(None, name, payload):
        moves.advance()
    elif name in _waited_names(book.defn.workflow.states):
        state.setdefault(WAKES, []).append({"name": name, "payload": payload, "id": update_id})
    return {"id": update_id, "status": "applied", "result": result, "message": None}


def _waited_names(states: dict[str, AnyState]) -> set[str]:
    """The signal names the waits of these states (and of their branches and maps) take."""
    names: set[str] = set()
    pending = [states]
    while pending:
        for state in pending.pop().values():
            if isinstance(state, WaitState):
                names.update(waits.signal_names(state))
            elif isinstance(state, ParallelState):
                pending.extend(dict(branch.states) for branch in state.branches)
            elif isinstance(state, MapState):
                pending.append(dict(state.states))
    return names
