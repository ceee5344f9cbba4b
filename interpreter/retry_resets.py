"""What a retry (interpreter/redrive.py) changes in a run state rebuilt up to the input that
ended the run, so that the run goes on from there. One function per kind of ending:

- a step's final failure: the step gets a fresh first attempt (its activity runs again);
- a callback wait that expired (`Timeout` / `HeartbeatTimeout` with `details.callback`): the
  same attempt waits again with fresh timeouts, for the token it already handed out (the
  activity that sent the token is not run again; the store opens the token again);
- the run timeout: its full length again, from the retry;
- a wait's timeout (`wait_timeout`): the wait waits again, as long as it first did;
- a child run that ended failed, timed out or was cancelled: the parent waits again for the
  same child, which is retried with it (one transaction); a child that never became a run
  (`not_started`) is started again by the parent's child state.

Pure: the state, the recorded events and `now` come in; nothing else is read.
"""

from __future__ import annotations

from typing import Any

from interpreter.core import callbacks
from interpreter.core.records import NOT_STARTED


class ResetError(Exception):
    """The ending names nothing in the rebuilt state (a history this code cannot retry)."""


def reset(
    state: dict[str, Any],
    ending: dict[str, Any],
    ids: dict[str, str],
    recorded: list[dict[str, Any]],
    now: float,
) -> None:
    kind = ending["type"]
    payload = ending.get("payload") or {}
    if kind == "ActivityFailed":
        _failed_step(state, _mine(ids, payload, "task"), payload.get("error") or {}, now)
    elif kind == "TimerFired":
        _timer(state, _mine(ids, payload, "timer"), str(payload.get("timer")), recorded, now)
    elif kind == "ChildFailed":
        _child(state, _mine(ids, payload, "child"), payload)


def is_callback_expiry(err: dict[str, Any]) -> bool:
    """Did a callback wait expire (rather than the activity or the outside party fail)?"""
    details = err.get("details")
    return (
        err.get("type") in ("Timeout", "HeartbeatTimeout")
        and isinstance(details, dict)
        and details.get("callback") is True
    )


def _mine(ids: dict[str, str], payload: dict[str, Any], key: str) -> str:
    recorded = str(payload.get(key))
    return ids.get(recorded, recorded)


def _failed_step(state: dict[str, Any], task_id: str, err: dict[str, Any], now: float) -> None:
    task = state["tasks"].get(task_id)
    if task is None or task["kind"] != "step":
        raise ResetError("the failed activity is not a step of the run")
    if is_callback_expiry(err) and task["status"] == callbacks.CALLBACK:
        callbacks.wait_again(task, now)
        return
    task.update(status="ready", attempt=1, due=now)
    task.pop("retry_counts", None)
    task.pop("started_at", None)


def _timer(
    state: dict[str, Any],
    timer_id: str,
    recorded_id: str,
    recorded: list[dict[str, Any]],
    now: float,
) -> None:
    timer = state["timers"].get(timer_id)
    if timer is None:
        return
    if timer["kind"] == "run_timeout":
        timer["due"] = now + (timer["due"] - float(recorded[0]["time"]))
        return
    started = next(
        (
            e
            for e in recorded
            if e["type"] == "TimerStarted"
            and str((e.get("payload") or {}).get("timer")) == recorded_id
        ),
        None,
    )
    if started is None:
        raise ResetError(f"the history does not say when timer {recorded_id!r} started")
    timer["due"] = now + float((started.get("payload") or {}).get("delay") or 0.0)


def _child(state: dict[str, Any], child_id: str, payload: dict[str, Any]) -> None:
    frame_id = state["children"].get(child_id)
    frame = state["frames"].get(frame_id or "")
    if frame is None:
        raise ResetError(f"no state of the run waits for child run {child_id!r}")
    if payload.get("status") == NOT_STARTED:
        # No run was made: the child state runs again and starts it (the same id).
        del state["children"][child_id]
        frame["status"] = "ready"
        frame["wait"] = None
    # Otherwise the frame goes on waiting for the same child run, which is retried with it.
