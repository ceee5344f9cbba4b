"""Ending a run: cancelling what is in flight, running the saga's compensations newest first,
and recording the final status.

With `saga: {on_failure: hold}` a failure ends the run at once with its compensations *held*:
the stack stays in the run state, `held` names the states they would undo (newest first) and
the end event says so. Such a run can be retried (nothing was undone), or given up with
`tideflow compensate`, whose release (`release_held`, an input recorded as
`CompensationReleased`) reopens it and runs the held compensations as a failure would have.
"""

from __future__ import annotations

from typing import Any

from interpreter.core import exits
from interpreter.core.bookkeeping import Bookkeeping, Transitions
from interpreter.core.definition import Retry
from interpreter.core.records import NO_RESULT, Command, error, open_segment
from interpreter.core.statuses import TERMINAL_STATUSES

# Each function takes the run's bookkeeping `run`, and where it ends a state, the engine's
# `flow`; this module never imports the engine (see bookkeeping.py).


# ----------------------------------------------------------------- cancellation
def drop_frames_under(run: Bookkeeping, frame_id: str) -> None:
    """Cancel every frame below `frame_id` with its tasks, timers and child runs."""
    doomed = {frame_id}
    changed = True
    while changed:
        changed = False
        for fid, frame in run.s["frames"].items():
            if fid not in doomed and frame["parent"] in doomed:
                doomed.add(fid)
                changed = True
    doomed.discard(frame_id)
    drop(run, doomed)


def drop_everything(run: Bookkeeping) -> None:
    drop(run, set(run.s["frames"]) - {run.s.get("root")})
    root = run.s["frames"].get(run.s.get("root"))
    if root is not None:
        drop_waits_of(run, {root["id"]})
        root["status"] = "cancelled"
    for timer_id in [k for k, t in run.s["timers"].items() if t["kind"] == "run_timeout"]:
        del run.s["timers"][timer_id]


def drop(run: Bookkeeping, frame_ids: set[str]) -> None:
    drop_waits_of(run, frame_ids)
    for fid in frame_ids:
        run.s["frames"].pop(fid, None)


def drop_waits_of(run: Bookkeeping, frame_ids: set[str]) -> None:
    for task_id in [k for k, t in run.s["tasks"].items() if t["frame"] in frame_ids]:
        del run.s["tasks"][task_id]
        run.dropped_tasks.append(task_id)
    for timer_id in [k for k, t in run.s["timers"].items() if t["frame"] in frame_ids]:
        del run.s["timers"][timer_id]
    for child_id in [c for c, f in run.s["children"].items() if f in frame_ids]:
        del run.s["children"][child_id]
        run.commands.append(Command("cancel_child", {"id": child_id}))


# ----------------------------------------------------------------- compensation and run end
def begin_compensation(
    run: Bookkeeping,
    flow: Transitions,
    reason: str,
    err: dict[str, Any] | None,
    frame_id: str | None = None,
) -> None:
    if reason != "state" and (run.s["comp_stack"] or run.s["compensation"] is not None):
        run.s["run"]["compensation"] = "ran"  # what exit handlers see (docs/dsl.md)
    if run.s["compensation"] is not None and reason != "state":
        # Already compensating for a `compensate` state: finish those, then end the run.
        run.s["compensation"].update({"reason": reason, "error": err, "frame": None})
        return
    run.s["compensation"] = {"reason": reason, "error": err, "frame": frame_id, "errors": []}
    next_compensation(run, flow)


def next_compensation(run: Bookkeeping, flow: Transitions) -> None:
    comp = run.s["compensation"]
    if comp is None or any(t["kind"] == "compensation" for t in run.s["tasks"].values()):
        return
    if run.s["comp_stack"]:
        entry = run.s["comp_stack"].pop()
        task = run.new_task(
            kind="compensation",
            frame=None,
            state_name=entry["state"],
            activity=entry["activity"],
            input_=entry["input"],
            retry=Retry.from_json(entry["retry"]),
            timeouts=entry["timeouts"],
            key=entry["key"],
        )
        run.emit(
            "CompensationStarted",
            entry["state"],
            1,
            {"task": task["id"], "activity": entry["activity"], "input": entry["input"]},
        )
        return
    run.s["compensation"] = None
    errors = comp["errors"]
    if comp["reason"] == "state":
        frame = run.s["frames"].get(comp["frame"])
        if frame is None:
            return
        frame["status"] = "ready"
        frame["wait"] = None
        if errors:
            flow.frame_failed(
                frame,
                error(
                    "CompensationFailed",
                    f"{len(errors)} compensation(s) failed",
                    {"compensation_errors": errors},
                ),
            )
        else:
            flow.complete_state(frame, NO_RESULT)
        return
    err = comp["error"]
    if errors:
        err = (
            {**err, "details": {"cause": err.get("details"), "compensation_errors": errors}}
            if comp["reason"] == "failed"
            else error(
                "CompensationFailed",
                f"cancelled, and {len(errors)} compensation(s) failed",
                {"compensation_errors": errors},
            )
        )
        finish_run(run, "failed", None, err)
    else:
        finish_run(run, "failed" if comp["reason"] == "failed" else "cancelled", None, err)


def fail_run(run: Bookkeeping, flow: Transitions, err: dict[str, Any]) -> None:
    drop_everything(run)
    if _holds(run):
        run.s["held"] = [entry["state"] for entry in reversed(run.s["comp_stack"])]
        run.s["run"]["compensation"] = "held"
        finish_run(run, "failed", None, err)
        return
    begin_compensation(run, flow, "failed", err)


def _holds(run: Bookkeeping) -> bool:
    """A failure holds the compensations when the workflow says so and some are recorded; a
    compensation already under way (a `compensate` state's) is finished instead, since one of
    them may have run and the stack is no longer what the steps recorded."""
    settings = run.defn.workflow.saga
    return (
        settings is not None
        and settings.on_failure == "hold"
        and bool(run.s["comp_stack"])
        and run.s["compensation"] is None
    )


def release_held(run: Bookkeeping, flow: Transitions) -> None:
    """`tideflow compensate`: the failed run with held compensations gives up. It reopens in a
    new history segment (`CompensationReleased` first), runs the held compensations newest
    first, and ends failed again with its original error (or CompensationFailed's details)."""
    held, err = run.s.pop("held"), run.s["error"]
    run.s.update(status="running", output=None, error=None, exit=None)
    run.s.pop("cancelling", None)
    run.s["run"]["compensation"] = None
    segment = open_segment(run.s, run.now)
    run.emit("CompensationReleased", payload={"segment": segment, "states": held})
    begin_compensation(run, flow, "failed", err)


def end_run_now(run: Bookkeeping, status: str, err: dict[str, Any]) -> None:
    """The run timeout: stop at once, no compensation (the timeout handler, if any, runs)."""
    drop_everything(run)
    run.s["tasks"].clear()
    run.s["comp_stack"] = []
    run.s["compensation"] = None
    finish_run(run, status, None, err)


def finish_run(run: Bookkeeping, status: str, output: Any, err: dict[str, Any] | None) -> None:
    if run.s["status"] in TERMINAL_STATUSES:
        return
    drop_everything(run)
    if exits.begin(run, status, output, err):
        return  # the exit handlers run first; the engine records the end after the last
    run.s["status"] = status
    run.s["output"] = output
    run.s["error"] = err
    run.s["timers"].clear()
    close_detached(run)
    event = {
        "completed": "RunCompleted",
        "failed": "RunFailed",
        "cancelled": "RunCancelled",
        "timed_out": "RunTimedOut",
        "terminated": "RunTerminated",
    }[status]
    payload: dict[str, Any] = {"output": output} if status == "completed" else {"error": err}
    if run.s.get("held"):
        payload["compensation_held"] = list(run.s["held"])
    run.emit(event, payload={**payload, **exits.end_payload(run.s)})


def close_detached(run: Bookkeeping) -> None:
    """This run ends: apply each running detached child's parent-close policy, once (the
    commands are written in the same transaction as the run's end)."""
    for child_id, policy in (run.s.pop("detached", None) or {}).items():
        run.emit("ParentClosePolicyApplied", payload={"child": child_id, "policy": policy})
        if policy == "cancel":
            run.commands.append(Command("cancel_child", {"id": child_id}))
        elif policy == "terminate":
            run.commands.append(Command("terminate_child", {"id": child_id}))
