"""Exit handlers (`on_exit`): small state machines that run once a run's outcome is known.

When a run ends (after its compensations), the outcome (status, output, error) is kept in the
run state under `exit` and the handlers for it run one after the other: the one named by the
outcome (`success`, `failure`, `cancel`, `timeout`), then `always`. Each is a frame of its own
with no parent, whose machine path starts with `[None, key]` (no state can be named None), and
which starts with a copy of the run's last vars. Templates there see `run.status`,
`run.output`, `run.error` and `run.compensation` (held, ran or none). A handler that fails (or
outlives its own `timeout`) is recorded in history (`ExitHandlerFailed`) and in `exit.errors`;
the next handler still runs, and the outcome is never changed. Once the last handler ends, the
engine records the outcome (saga.finish_run). `terminate` ends a run in the store, so it runs no handler.

Imports run one way: the engine and saga import this module; it imports only bookkeeping.
"""

from __future__ import annotations

from typing import Any

from dsl.durations import parse_duration
from dsl.model import ExitHandler, OnExit
from interpreter.core.bookkeeping import Bookkeeping
from interpreter.core.records import error

# The outcome's status -> the handler that runs for it (then `always`).
HANDLER_FOR = {
    "completed": "success",
    "failed": "failure",
    "cancelled": "cancel",
    "timed_out": "timeout",
}
HANDLER_KEYS = ("success", "failure", "cancel", "timeout", "always")
EXIT_TIMER = "exit_timeout"


def handler_model(on_exit: OnExit | None, key: str) -> ExitHandler | None:
    return None if on_exit is None else getattr(on_exit, key)


def begin(run: Bookkeeping, status: str, output: Any, err: dict[str, Any] | None) -> bool:
    """The run reached `status`: start its exit handlers. False when there is none to run
    (no on_exit, terminate, or the handlers already ran): the caller records the end now."""
    if run.s.get("exit") is not None or status not in HANDLER_FOR:
        return False
    if err is not None and err.get("type") == "HistoryLimitExceeded":
        return False  # the cap is a hard bound: no room for the handlers' events
    on_exit = run.defn.workflow.on_exit
    keys = [k for k in (HANDLER_FOR[status], "always") if handler_model(on_exit, k) is not None]
    if not keys:
        return False
    root = run.s["frames"].get(run.s.get("root") or "")
    run.s["exit"] = {
        "status": status,
        "output": output,
        "error": err,
        "pending": keys,
        "current": None,
        "vars": dict(root["vars"]) if root else {},
        "errors": [],
    }
    run.s["run"] = {
        **run.s["run"],
        "status": status,
        "output": output,
        "error": err,
        # held, ran (compensations ran for this end) or None (none recorded): see saga.py
        "compensation": run.s["run"].get("compensation"),
    }
    _start_next(run)
    return True


def exiting(state: dict[str, Any]) -> bool:
    """True while the run's exit handlers run (the outcome is known, not yet recorded)."""
    exit_ = state.get("exit")
    return exit_ is not None and exit_["current"] is not None


def _start_next(run: Bookkeeping) -> None:
    exit_ = run.s["exit"]
    key = exit_["pending"].pop(0)
    handler = handler_model(run.defn.workflow.on_exit, key)
    assert handler is not None
    frame = run.new_frame([[None, key]], None, None, vars_=dict(exit_["vars"]), locals_={})
    frame["exit"] = key
    exit_["current"] = {"handler": key, "frame": frame["id"]}
    run.emit("ExitHandlerStarted", payload={"handler": key, "status": exit_["status"]})
    if handler.timeout is not None:
        timer = run.start_timer(EXIT_TIMER, frame, parse_duration(handler.timeout))
        exit_["current"]["timer"] = timer
    run.enter(frame, run.defn.machine(frame["machine"])[1])


def timed_out(run: Bookkeeping, frame: dict[str, Any]) -> dict[str, Any]:
    """The error of a handler that outlived its own timeout."""
    handler = handler_model(run.defn.workflow.on_exit, frame["exit"])
    limit = handler.timeout if handler is not None else None
    return error("Timeout", f"exit handler {frame['exit']!r} exceeded its timeout of {limit}")


def handler_ended(
    run: Bookkeeping, frame: dict[str, Any], output: Any, err: dict[str, Any] | None
) -> tuple[str, Any, dict[str, Any] | None] | None:
    """The handler of `frame` ended (its frames and waits are already dropped): record it and
    start the next one. Returns the run's outcome once no handler is left, else None."""
    exit_ = run.s["exit"]
    key = frame["exit"]
    timer = (exit_["current"] or {}).get("timer")
    if timer is not None:
        run.s["timers"].pop(timer, None)
    exit_["current"] = None
    if err is None:
        run.emit("ExitHandlerCompleted", payload={"handler": key, "output": output})
    else:
        run.emit("ExitHandlerFailed", payload={"handler": key, "error": err})
        exit_["errors"].append({"handler": key, "error": err})
    if exit_["pending"]:
        _start_next(run)
        return None
    return exit_["status"], exit_["output"], exit_["error"]


def end_payload(state: dict[str, Any]) -> dict[str, Any]:
    """What the run's end event adds about its handlers: their failures, when any."""
    exit_ = state.get("exit")
    if exit_ is None or not exit_["errors"]:
        return {}
    return {"exit_errors": exit_["errors"]}
