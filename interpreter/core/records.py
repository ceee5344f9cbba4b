"""The records the decision core exchanges with the rest of the interpreter: the run state
document, history events, commands for the worker, and the error shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from interpreter.core.definition import Definition

# Error types that can never succeed on a retry, whatever the policy says.
NEVER_RETRIED = frozenset({"ExpressionError", "Cancelled", "ChildFailed"})
# Marks a state that completed without producing a result (set, sleep, ...).
NO_RESULT = object()
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timed_out", "terminated"})


def error(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Event:
    type: str
    state: str | None = None
    attempt: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Command:
    """Work for the worker beyond running tasks: `start_child`, `cancel_child`, `consume_signal`."""

    kind: str
    data: dict[str, Any]


def new_run_state(defn: Definition, run_id: str, input_: Any, now: float) -> dict[str, Any]:
    return {
        "status": "running",
        "input": input_,
        "run": {
            "id": run_id,
            "workflow": defn.name,
            "version": defn.version,
            "started_at": iso(now),
        },
        "frames": {},
        "tasks": {},
        "timers": {},
        "children": {},  # child run id -> waiting frame id
        "comp_stack": [],
        "compensation": None,
        "ids": 0,
        "output": None,
        "error": None,
    }
