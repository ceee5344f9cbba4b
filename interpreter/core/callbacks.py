"""Callback tasks (`completion: callback`): the pure decisions of an activity state that waits,
after its activity returned, for an outside party to complete the attempt's token.

A callback task is an ordinary task (retries, timeouts, cancellation are the task's) with
`completion: "callback"`. Its life:

- running: the activity runs with `ctx.callback_token` (the worker makes the token, the store
  keeps only its hash). A completion that comes while the activity still runs is applied at
  once (the attempt is then no longer wanted and sees `ctx.cancelled`).
- callback: the activity returned (`CallbackWaiting`); no thread, no lease is needed while it
  waits. `callback_due` is when the wait fails: start_to_close counted from the attempt's
  start (it bounds activity run and wait together), the schedule_to_close deadline, or the
  last heartbeat plus the heartbeat interval.
- a completion or failure from outside arrives through the run's inbox (kind "callback",
  name = the task id, payload {attempt, outcome}): `CallbackReceived`, then the task
  completes or fails as any task does (a failure may retry: a new attempt, a new token).
- a heartbeat from outside arrives the same way and only moves `callback_due` on.

No I/O, no clock (`run.now`), no randomness: tokens are made by the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from interpreter.core.records import Command, error, iso

if TYPE_CHECKING:  # the CLI's `complete` imports this module and needs no model
    from interpreter.core.bookkeeping import Bookkeeping

CALLBACK = "callback"


class TaskOutcomes(Protocol):
    """What the engine does with a task's outcome (Engine.task_completed / task_failed)."""

    def task_completed(self, task_id: str, result: Any) -> None: ...

    def task_failed(
        self, task_id: str, err: dict[str, Any], non_retryable: bool = False
    ) -> None: ...


def is_callback(task: dict[str, Any]) -> bool:
    return task.get("completion") == CALLBACK


def activity_returned(run: Bookkeeping, task: dict[str, Any], returned: Any) -> bool:
    """The activity of a callback task returned: start waiting for its token (True), or False
    when the task is not one whose return value is still to be replaced by a callback."""
    if not is_callback(task) or task["status"] != "running":
        return False
    task["status"] = CALLBACK
    task["callback_since"] = run.now
    _set_due(task, run.now)
    payload: dict[str, Any] = {"task": task["id"], "activity": task["activity"]}
    if returned is not None:
        payload["returned"] = returned
    if task["callback_due"] is not None:
        payload["due"] = iso(task["callback_due"])
    run.emit("CallbackWaiting", task["state"], task["attempt"], payload)
    return True


def wait_again(task: dict[str, Any], now: float) -> None:
    """A retry of a run whose callback wait expired: the same attempt waits again for its
    token, with every timeout counted afresh from `now` (interpreter/retry_resets.py)."""
    task["started_at"] = task["callback_since"] = now
    task.pop("heartbeat_at", None)
    s2c = task["timeouts"].get("schedule_to_close")
    if s2c is not None:
        task["deadline"] = now + s2c
    _set_due(task, now)


def _set_due(task: dict[str, Any], now: float) -> None:
    """When the wait fails, and why (None: it waits until completed or cancelled)."""
    timeouts = task["timeouts"]
    candidates: list[tuple[float, str]] = []
    s2c = timeouts.get("start_to_close")
    if s2c is not None:
        candidates.append((task.get("started_at", now) + s2c, "start_to_close"))
    if task.get("deadline") is not None:
        candidates.append((task["deadline"], "schedule_to_close"))
    heartbeat = timeouts.get("heartbeat")
    if heartbeat is not None:
        last = max(task.get("heartbeat_at") or 0.0, task.get("callback_since") or now)
        candidates.append((last + heartbeat, "heartbeat"))
    if candidates:
        due, why = min(candidates)
        task["callback_due"], task["callback_why"] = due, why
    else:
        task["callback_due"], task["callback_why"] = None, None


def wakeups(run: Bookkeeping) -> list[float]:
    """Due times of the callback waits (for Engine.next_wakeup)."""
    return [
        t["callback_due"]
        for t in run.s["tasks"].values()
        if t["status"] == CALLBACK and t.get("callback_due") is not None
    ]


def _expired(task: dict[str, Any], now: float) -> bool:
    return (
        task["status"] == CALLBACK
        and task.get("callback_due") is not None
        and task["callback_due"] <= now
    )


def any_expired(run: Bookkeeping) -> bool:
    """A callback wait whose time is up (expire_due would fail it)."""
    return any(_expired(t, run.now) for t in run.s["tasks"].values())


def expire_due(run: Bookkeeping, flow: TaskOutcomes) -> None:
    """Fail the callback waits whose time is up (Timeout or HeartbeatTimeout; both follow the
    state's retry policy, except a schedule_to_close deadline)."""
    expired = [t for t in run.s["tasks"].values() if _expired(t, run.now)]
    for task in sorted(expired, key=lambda t: (t["callback_due"], t["id"])):
        if run.s["tasks"].get(task["id"]) is not task:
            continue  # dropped by an earlier one's outcome (a sibling branch failed)
        why = task["callback_why"]
        if why == "heartbeat":
            err = error(
                "HeartbeatTimeout",
                f"no callback heartbeat for {task['timeouts']['heartbeat']:g}s "
                f"(activity {task['activity']!r})",
                {"callback": True},
            )
        else:
            err = error(
                "Timeout",
                f"callback of activity {task['activity']!r} not completed within its {why} timeout",
                {"timeout": why, "callback": True},
            )
        flow.task_failed(task["id"], err, why == "schedule_to_close")


def apply(run: Bookkeeping, flow: TaskOutcomes, item_id: Any, task_id: str, body: Any) -> None:
    """An inbox item of kind "callback" for `task_id`: a completion, a failure or a heartbeat
    sent with the attempt's token. One for an attempt that ended meanwhile is dropped."""
    run.commands.append(Command("consume_signal", {"id": item_id}))
    body = body if isinstance(body, dict) else {}
    task = run.s["tasks"].get(task_id)
    if (
        task is None
        or not is_callback(task)
        or task["attempt"] != body.get("attempt")
        or task["status"] not in ("running", CALLBACK)
    ):
        return
    kind = body.get("kind")
    if kind == "heartbeat":
        task["heartbeat_at"] = run.now
        if task["status"] == CALLBACK:
            _set_due(task, run.now)
        return
    ok = kind == "complete"
    run.emit(
        "CallbackReceived",
        task["state"],
        task["attempt"],
        {"task": task_id, "outcome": "completed" if ok else "failed"},
    )
    # The outcome replaces the activity's: an attempt still running is no longer wanted.
    task["status"] = "received"
    if ok:
        flow.task_completed(task_id, body.get("result"))
    else:
        err = body.get("error") or {}
        flow.task_failed(
            task_id,
            error(
                str(err.get("type") or "CallbackFailed"),
                str(err.get("message") or ""),
                err.get("details"),
            ),
        )


def pending_attempts(state: dict[str, Any]) -> set[tuple[str, int]]:
    """(task, attempt) of every callback attempt whose token may still be completed."""
    return {
        (task_id, task["attempt"])
        for task_id, task in state.get("tasks", {}).items()
        if is_callback(task) and task["status"] in ("running", CALLBACK)
    }
