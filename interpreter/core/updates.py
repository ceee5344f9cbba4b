"""Updates, decided by the pure core: one stored update in, its outcome out.

An update (declared under `updates:`) is validated against the run as it stands, then sets
top-level vars and/or wakes a `wait` of its name the way a signal of that name does, and
returns a value to its caller. A rejected update (its validator is false or fails, or one of
its templates fails) changes nothing and records no event; an applied one records
`UpdateApplied`. Either way the decision is the command `update_outcome`, which the worker
commits with the step's events, and the update's inbox item is consumed in that same commit.

No I/O, no clock: like every other input, the decision depends only on the definition, the
committed state and the update.
"""

from __future__ import annotations

from typing import Any

from interpreter.core.engine import Engine
from interpreter.core.records import Command
from interpreter.expressions import ExpressionError, evaluate


def apply_update(engine: Engine, item_id: Any, update_id: str, name: str, payload: Any) -> None:
    """Decide the stored update `update_id` (inbox item `item_id`)."""
    engine.commands.append(Command("consume_signal", {"id": item_id}))
    outcome = _decide(engine, update_id, name, payload)
    engine.commands.append(Command("update_outcome", outcome))


def _rejected(update_id: str, message: str) -> dict[str, Any]:
    return {"id": update_id, "status": "rejected", "result": None, "message": message}


def _decide(engine: Engine, update_id: str, name: str, payload: Any) -> dict[str, Any]:
    spec = (engine.defn.workflow.updates or {}).get(name)
    if spec is None:  # the definition is pinned: only a hand-made store row gets here
        return _rejected(update_id, f"workflow {engine.defn.name!r} declares no update {name!r}")
    state = engine.s
    if state["status"] != "running" or state.get("cancelling") or state.get("compensation"):
        return _rejected(update_id, f"the run is ending: update {name!r} was not applied")
    root = state["frames"].get(state.get("root") or "")
    if root is None:
        return _rejected(update_id, f"the run has no top level: update {name!r} was not applied")
    where = f"update {name!r}"
    context = {**engine.context(root), "payload": payload}
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
    engine.emit(
        "UpdateApplied",
        root["state"],
        payload={"update": name, "id": update_id, "payload": payload, "result": result},
    )
    # A wait for this name takes the payload the way it takes a signal's; none waiting: done.
    engine.offer_signal(None, name, payload)
    return {"id": update_id, "status": "applied", "result": result, "message": None}
