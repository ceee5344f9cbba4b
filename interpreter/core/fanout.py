"""Several state machines at once: parallel branches, map iterations and child runs.

Each branch or iteration is a frame of its own that starts with a copy of the enclosing vars;
what flows back is its output, gathered in order into the parent state's result.
"""

from __future__ import annotations

from typing import Any

from dsl.model import ChildState, MapState, ParallelState
from interpreter.core import completion
from interpreter.core.bookkeeping import Bookkeeping, Transitions
from interpreter.core.definition import DEFAULT_MAP_CONCURRENCY, DEFAULT_PARENT_CLOSE
from interpreter.core.records import Command, error, run_id_problem
from interpreter.core.saga import drop, drop_frames_under
from interpreter.core.timing import map_concurrency
from interpreter.expressions import ExpressionError

# Each function takes the run's bookkeeping `run`, and where it ends a state, the engine's
# `flow`; this module never imports the engine (see bookkeeping.py).


def start_parallel(
    run: Bookkeeping, flow: Transitions, frame: dict[str, Any], state: ParallelState
) -> None:
    frame["status"] = "waiting"
    frame["wait"] = {
        "kind": "parallel",
        "results": [None] * len(state.branches),
        "running": [],
        "next_index": len(state.branches),
        "total": len(state.branches),
    }
    for index in range(len(state.branches)):
        path = [*frame["machine"], [frame["state"], index]]
        child = run.new_frame(
            path, frame["id"], index, vars_=dict(frame["vars"]), locals_=dict(frame["locals"])
        )
        frame["wait"]["running"].append(child["id"])
        run.enter(child, run.defn.machine(path)[1])
    if completion.is_ruled(state):
        completion.judge(run, flow, frame)  # a quorum larger than the branches: unmet now


def start_map(run: Bookkeeping, flow: Transitions, frame: dict[str, Any], state: MapState) -> None:
    items = run.eval(frame, state.items, "items")
    limit = map_concurrency(run, frame, state.concurrency)  # templated: evaluated once, here
    if not isinstance(items, list):
        raise ExpressionError(
            f"state {frame['state']!r}, items: expected a list, got {type(items).__name__}"
        )
    frame["status"] = "waiting"
    frame["wait"] = {
        "kind": "map",
        "items": items,
        "results": [None] * len(items),
        "running": [],
        "next_index": 0,
        "total": len(items),
        "concurrency": limit,
    }
    if completion.is_ruled(state):
        launch_iterations(run, frame)
        completion.judge(run, flow, frame)  # no items, or fewer than a quorum: decided now
        return
    if not items:
        frame["status"] = "ready"
        frame["wait"] = None
        flow.complete_state(frame, [])
        return
    launch_iterations(run, frame)


def branch_done(run: Bookkeeping, flow: Transitions, frame: dict[str, Any], output: Any) -> None:
    """A branch or map iteration ended with `output`: gather it, go on when the state is done."""
    parent = run.s["frames"][frame["parent"]]
    del run.s["frames"][frame["id"]]
    wait = parent["wait"]
    wait["results"][frame["slot"]] = output
    wait["running"].remove(frame["id"])
    state = run.state(parent)
    assert isinstance(state, ParallelState | MapState)
    if completion.is_ruled(state):
        completion.branch_succeeded(run, parent, frame["slot"])
        if not completion.judge(run, flow, parent) and wait["kind"] == "map":
            launch_iterations(run, parent)
        return
    if wait["kind"] == "map":
        launch_iterations(run, parent)
    if not wait["running"] and wait.get("next_index", 0) >= wait.get("total", 0):
        parent["status"] = "ready"
        parent["wait"] = None
        flow.complete_state(parent, wait["results"])


def branch_failed(
    run: Bookkeeping, flow: Transitions, frame: dict[str, Any], err: dict[str, Any]
) -> None:
    """A branch or map iteration failed with `err`. By default that fails the state and
    cancels its other branches; under a completion rule it counts as one failure."""
    parent = run.s["frames"][frame["parent"]]
    state = run.state(parent)
    assert isinstance(state, ParallelState | MapState)
    if not completion.is_ruled(state):
        drop_frames_under(run, parent["id"])
        parent["status"] = "ready"
        parent["wait"] = None
        flow.state_error(parent, err)
        return
    drop_frames_under(run, frame["id"])
    drop(run, {frame["id"]})
    parent["wait"]["running"].remove(frame["id"])
    completion.branch_failed(parent, frame["slot"], err)
    if not completion.judge(run, flow, parent) and parent["wait"]["kind"] == "map":
        launch_iterations(run, parent)


def launch_iterations(run: Bookkeeping, frame: dict[str, Any]) -> None:
    state = run.state(frame)
    assert isinstance(state, MapState)
    wait = frame["wait"]
    # Evaluated by start_map; a run started by an older version keeps the literal.
    literal = state.concurrency if isinstance(state.concurrency, int) else None
    limit: int = wait.get("concurrency") or literal or DEFAULT_MAP_CONCURRENCY
    path = [*frame["machine"], [frame["state"], -1]]
    while len(wait["running"]) < limit and wait["next_index"] < wait["total"]:
        index = wait["next_index"]
        wait["next_index"] += 1
        locals_ = {
            **frame["locals"],
            (state.as_ or "item"): wait["items"][index],
            "index": index,
        }
        child = run.new_frame(path, frame["id"], index, vars_=dict(frame["vars"]), locals_=locals_)
        wait["running"].append(child["id"])
        run.enter(child, run.defn.machine(path)[1])


def start_child(
    run: Bookkeeping, flow: Transitions, frame: dict[str, Any], state: ChildState
) -> None:
    input_ = run.eval(frame, state.input, "input")
    if state.id is not None:
        child_id = _child_id(run.eval(frame, state.id, "id"), frame["state"])
    else:
        suffix = frame["state"] if frame["parent"] is None else f"{frame['state']}-{frame['id']}"
        if frame.get("exit"):  # an exit handler's state may share a top-level state's name
            suffix = f"on_exit-{frame['exit']}.{frame['state']}"
        visit = frame["visits"][frame["state"]]
        child_id = f"{run.s['run']['id']}.{suffix}" + (f".{visit}" if visit > 1 else "")
    if child_id in run.s["children"] or child_id == run.s["run"]["id"]:
        # Two frames waiting on one id would both wait for a single result.
        flow.state_error(
            frame,
            error(
                "ChildIdInUse",
                f"state {frame['state']!r}: child id {child_id!r} is already in use by this run",
                {"child": child_id},
            ),
        )
        return
    frame["status"] = "waiting"
    frame["wait"] = {"kind": "child", "child": child_id}
    run.s["children"][child_id] = frame["id"]
    data = {"id": child_id, "workflow": state.workflow, "input": input_, "state": frame["state"]}
    payload = {"child": child_id, "workflow": state.workflow, "input": input_}
    if state.detached:
        # The frame goes on once the worker has made the child run (child_started), in the
        # same commit; a child that cannot start fails the state like a waited-for one.
        policy = state.parent_close or DEFAULT_PARENT_CLOSE
        frame["wait"]["detached"] = policy
        data["detached"] = payload["detached"] = True
        payload["parent_close"] = policy
    run.commands.append(Command("start_child", data))
    run.emit("ChildStarted", frame["state"], payload=payload)


def child_started(run: Bookkeeping, flow: Transitions, child_id: str) -> None:
    """A detached child's run was created: its state completes with the child's run id, and the
    parent-close policy is kept until this run ends (or the child ends first)."""
    frame = run.s["frames"].get(run.s["children"].get(child_id, ""))
    wait = None if frame is None else frame.get("wait")
    if frame is None or not wait or not wait.get("detached"):
        return
    del run.s["children"][child_id]
    run.s.setdefault("detached", {})[child_id] = wait["detached"]
    frame["status"] = "ready"
    frame["wait"] = None
    flow.complete_state(frame, child_id)


def detached_ended(run: Bookkeeping, child_id: str) -> None:
    """A detached child ended before this run: no policy applies to it any more."""
    detached = run.s.get("detached")
    if detached:
        detached.pop(child_id, None)


def _child_id(value: Any, state: str) -> str:
    """A templated child id: text or a whole number, following the run id rules."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "null" if value is None else type(value).__name__
        raise ExpressionError(f"state {state!r}, id: a child id must be text, not {kind}")
    child_id = str(value)
    problem = run_id_problem(child_id)
    if problem:
        raise ExpressionError(f"state {state!r}, id: {problem}")
    return child_id
