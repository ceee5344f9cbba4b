"""The run's bookkeeping, shared by the engine and its helpers (fanout, saga): the run state
document, the events and commands collected while deciding, and the operations that create
frames, tasks, timers and events.

Imports run one way: engine, fanout and saga import this module; it imports none of them.
What fanout and saga need back from the engine (a state finished, failed, or a frame failed)
comes in as an argument typed `Transitions`.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from dsl.model import AnyState
from interpreter.core.clock import clock_names
from interpreter.core.definition import NOT_CONSTANT, Definition, Retry
from interpreter.core.records import Command, Event, iso
from interpreter.expressions import evaluate
from interpreter.jsondata import copy_data


class Transitions(Protocol):
    """The engine's state transitions, called back by fanout and saga."""

    def complete_state(self, frame: dict[str, Any], result: Any) -> None: ...

    def state_error(self, frame: dict[str, Any], err: dict[str, Any]) -> None: ...

    def frame_failed(self, frame: dict[str, Any], err: dict[str, Any]) -> None: ...


class Bookkeeping:
    """One decision's view of a run: `state` is mutated in place; events/commands collect."""

    def __init__(self, defn: Definition, state: dict[str, Any], now: float) -> None:
        self.defn = defn
        self.s = state
        self.now = now
        self.events: list[Event] = []
        self.commands: list[Command] = []
        # Tasks removed with their frames (saga.drop_waits_of), which records no event per
        # task: the worker's callback tokens look at these and at the tasks events name.
        self.dropped_tasks: list[str] = []

    def next_id(self, prefix: str) -> str:
        self.s["ids"] += 1
        return f"{prefix}{self.s['ids']}"

    def emit(
        self,
        type_: str,
        state: str | None = None,
        attempt: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(Event(type_, state, attempt, payload or {}))

    # ----------------------------------------------------------------- frames
    def new_frame(
        self,
        machine: list[list[Any]],
        parent: str | None,
        slot: int | None,
        *,
        vars_: dict[str, Any],
        locals_: dict[str, Any],
    ) -> dict[str, Any]:
        frame = {
            "id": self.next_id("f"),
            "machine": machine,
            "parent": parent,
            "slot": slot,
            "state": None,
            "status": "ready",
            "wait": None,
            "vars": vars_,
            "locals": locals_,
            "visits": {},
            "last": None,
            "has_last": False,
        }
        self.s["frames"][frame["id"]] = frame
        return frame

    def state(self, frame: dict[str, Any]) -> AnyState:
        """The model of the state `frame` is in."""
        return self.defn.state(frame["machine"], frame["state"])

    def enter(self, frame: dict[str, Any], name: str) -> None:
        frame["state"] = name
        frame["status"] = "ready"
        frame["visits"][name] = frame["visits"].get(name, 0) + 1
        # The moment the state is entered is kept with the frame and recorded in history:
        # templates read it as `now` (interpreter/core/clock.py), on resume too.
        frame["entered_at"] = at = iso(self.now)
        payload: dict[str, Any] = {"type": self.state(frame).type, "at": at}
        if frame["parent"] is not None:
            payload["frame"] = frame["id"]
        elif frame.get("exit"):
            payload["handler"] = frame["exit"]
        self.emit("StateEntered", name, payload=payload)

    def context(self, frame: dict[str, Any]) -> dict[str, Any]:
        """What a template evaluated in `frame` sees."""
        return {
            "input": self.s["input"],
            "vars": frame["vars"],
            "run": self.s["run"],
            **clock_names(frame, self.s["run"]),
            **frame["locals"],
        }

    def eval(self, frame: dict[str, Any], value: Any, what: str) -> Any:
        """Evaluate `value`, a part of the definition's model, in `frame`."""
        constant = self.defn.constant(value)
        if constant is not NOT_CONSTANT:
            return copy_data(constant)
        where = f"state {frame['state']!r}, {what}" if frame["state"] else what
        return evaluate(value, self.context(frame), where=where)

    # ----------------------------------------------------------------- timers and tasks
    def start_timer(
        self, kind: str, frame: dict[str, Any] | None, delay: float, at: float | None = None
    ) -> str:
        """A timer due `delay` seconds from now, or exactly `at` (an `until`) when given."""
        timer_id = self.next_id("t")
        state = frame["state"] if frame else None
        due = self.now + delay if at is None else at
        self.s["timers"][timer_id] = {
            "kind": kind,
            "due": due,
            "frame": frame["id"] if frame else None,
            "state": state,
        }
        self.emit(
            "TimerStarted",
            state,
            payload={"timer": timer_id, "kind": kind, "delay": delay, "due": iso(due)},
        )
        return timer_id

    def idempotency_key(self, frame: dict[str, Any]) -> str:
        raw = f"{self.s['run']['id']}|{frame['id']}|{frame['state']}|{frame['visits'][frame['state']]}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def new_task(
        self,
        *,
        kind: str,
        frame: dict[str, Any] | None,
        state_name: str,
        activity: str,
        input_: Any,
        retry: Retry,
        timeouts: dict[str, float | None],
        key: str,
    ) -> dict[str, Any]:
        task_id = self.next_id("a")
        s2c = timeouts.get("schedule_to_close")
        task = {
            "id": task_id,
            "kind": kind,
            "frame": frame["id"] if frame else None,
            "state": state_name,
            "activity": activity,
            "input": input_,
            "attempt": 1,
            "key": key,
            "status": "ready",
            "due": self.now,
            "scheduled_at": self.now,
            "deadline": None if s2c is None else self.now + s2c,
            "retry": retry.to_json(),
            "timeouts": timeouts,
        }
        self.s["tasks"][task_id] = task
        return task
