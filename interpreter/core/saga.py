"""Ending a run: cancelling what is in flight, running the saga's compensations newest first,
and recording the final status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interpreter.core.definition import Retry
from interpreter.core.records import NO_RESULT, TERMINAL_STATUSES, Command, error

if TYPE_CHECKING:
    from interpreter.core.engine import Engine


# Each function is a method of `Engine` (bound in its class body); they live here to keep
# the engine module about one job: stepping through states.


# ----------------------------------------------------------------- cancellation
def drop_frames_under(self: Engine, frame_id: str) -> None:
    """Cancel every frame below `frame_id` with its tasks, timers and child runs."""
    doomed = {frame_id}
    changed = True
    while changed:
        changed = False
        for fid, frame in self.s["frames"].items():
            if fid not in doomed and frame["parent"] in doomed:
                doomed.add(fid)
                changed = True
    doomed.discard(frame_id)
    self._drop(doomed)


def drop_everything(self: Engine) -> None:
    self._drop(set(self.s["frames"]) - {self.s.get("root")})
    root = self.s["frames"].get(self.s.get("root"))
    if root is not None:
        self._drop_waits_of({root["id"]})
        root["status"] = "cancelled"
    for timer_id in [k for k, t in self.s["timers"].items() if t["kind"] == "run_timeout"]:
        del self.s["timers"][timer_id]


def drop(self: Engine, frame_ids: set[str]) -> None:
    self._drop_waits_of(frame_ids)
    for fid in frame_ids:
        self.s["frames"].pop(fid, None)


def drop_waits_of(self: Engine, frame_ids: set[str]) -> None:
    for task_id in [k for k, t in self.s["tasks"].items() if t["frame"] in frame_ids]:
        del self.s["tasks"][task_id]
    for timer_id in [k for k, t in self.s["timers"].items() if t["frame"] in frame_ids]:
        del self.s["timers"][timer_id]
    for child_id in [c for c, f in self.s["children"].items() if f in frame_ids]:
        del self.s["children"][child_id]
        self.commands.append(Command("cancel_child", {"id": child_id}))


# ----------------------------------------------------------------- compensation and run end
def begin_compensation(
    self: Engine, reason: str, err: dict[str, Any] | None, frame_id: str | None = None
) -> None:
    if self.s["compensation"] is not None and reason != "state":
        # Already compensating for a `compensate` state: finish those, then end the run.
        self.s["compensation"].update({"reason": reason, "error": err, "frame": None})
        return
    self.s["compensation"] = {"reason": reason, "error": err, "frame": frame_id, "errors": []}
    self._next_compensation()


def next_compensation(self: Engine) -> None:
    comp = self.s["compensation"]
    if comp is None or any(t["kind"] == "compensation" for t in self.s["tasks"].values()):
        return
    if self.s["comp_stack"]:
        entry = self.s["comp_stack"].pop()
        task = self._new_task(
            kind="compensation",
            frame=None,
            state_name=entry["state"],
            activity=entry["activity"],
            input_=entry["input"],
            retry=Retry.from_json(entry["retry"]),
            timeouts=entry["timeouts"],
            key=entry["key"],
        )
        self._emit(
            "CompensationStarted",
            entry["state"],
            1,
            {"task": task["id"], "activity": entry["activity"], "input": entry["input"]},
        )
        return
    self.s["compensation"] = None
    errors = comp["errors"]
    if comp["reason"] == "state":
        frame = self.s["frames"].get(comp["frame"])
        if frame is None:
            return
        frame["status"] = "ready"
        frame["wait"] = None
        if errors:
            self._frame_failed(
                frame,
                error(
                    "CompensationFailed",
                    f"{len(errors)} compensation(s) failed",
                    {"compensation_errors": errors},
                ),
            )
        else:
            self._complete_state(frame, NO_RESULT)
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
        self._finish_run("failed", None, err)
    else:
        self._finish_run("failed" if comp["reason"] == "failed" else "cancelled", None, err)


def fail_run(self: Engine, err: dict[str, Any]) -> None:
    self._drop_everything()
    self._begin_compensation("failed", err)


def end_run_now(self: Engine, status: str, err: dict[str, Any]) -> None:
    """Timeout or terminate: stop at once, no compensation."""
    self._drop_everything()
    self.s["tasks"].clear()
    self.s["comp_stack"] = []
    self.s["compensation"] = None
    self._finish_run(status, None, err)


def finish_run(self: Engine, status: str, output: Any, err: dict[str, Any] | None) -> None:
    if self.s["status"] in TERMINAL_STATUSES:
        return
    self._drop_everything()
    self.s["status"] = status
    self.s["output"] = output
    self.s["error"] = err
    self.s["timers"].clear()
    event = {
        "completed": "RunCompleted",
        "failed": "RunFailed",
        "cancelled": "RunCancelled",
        "timed_out": "RunTimedOut",
        "terminated": "RunTerminated",
    }[status]
    self._emit(event, payload={"output": output} if status == "completed" else {"error": err})
