"""The records the decision core exchanges with the rest of the interpreter: the run state
document, history events, commands for the worker, and the error shape."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the stores import this module, and need no model
    from interpreter.core.definition import Definition

# Error types that can never succeed on a retry, whatever the policy says.
NEVER_RETRIED = frozenset({"ExpressionError", "Cancelled", "ChildFailed"})
# Marks a state that completed without producing a result (set, sleep, ...).
NO_RESULT = object()


# The status a child that never became a run reports to its parent (see Engine.child_finished).
NOT_STARTED = "not_started"

# The first event of the history segment a retry opens (interpreter/redrive.py).
RETRIED_EVENT = "RunRetried"


def error(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Event:
    type: str
    state: str | None = None
    attempt: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Command:
    """Work for the worker beyond running tasks: `start_child`, `cancel_child`, `consume_signal`
    (an inbox item), `update_outcome` (an update's decision, see core/updates.py)."""

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
            "segment": 1,  # continue-as-new starts segment 2, 3, ... (core/segments.py)
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


def open_segment(state: dict[str, Any], now: float) -> int:
    """An ended run goes on in a new history segment (a retry, a compensation release): its
    number, counted from the event that opens it."""
    info = state["run"]
    info["segment"] = int(info.get("segment", 1)) + 1
    info["segment_started_at"] = iso(now)
    state["segment_events"] = 1
    return int(info["segment"])


MAX_RUN_ID_LENGTH = 200


# Unicode categories refused in run ids: format characters (zero-width spaces and joiners,
# bidi embeddings and overrides, U+FEFF), line/paragraph separators, private use, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Co", "Cn"})


def run_id_problem(run_id: str) -> str | None:
    """Why `run_id` cannot name a new run, or None when it can."""
    if not isinstance(run_id, str):
        return f"run id must be a string, not {type(run_id).__name__}"
    if not run_id:
        return "run id must not be empty"
    if len(run_id) > MAX_RUN_ID_LENGTH:
        return f"run id is {len(run_id)} characters long; the limit is {MAX_RUN_ID_LENGTH}"
    if not run_id.strip():
        return "run id must not be only whitespace"
    bad = next((ch for ch in run_id if ch < " " or ch == "\x7f"), None)
    if bad is not None:
        return f"run id {run_id!a} holds a control character ({bad!a})"
    # Invisible or direction-changing characters let one id pass for another in listings.
    hidden = next((ch for ch in run_id if unicodedata.category(ch) in _HIDDEN_CATEGORIES), None)
    if hidden is not None:
        return (
            f"run id {run_id!a} holds an invisible or text-direction character "
            f"({hidden!a}, {unicodedata.name(hidden, 'unnamed')})"
        )
    try:
        run_id.encode("utf-8")
    except UnicodeEncodeError:
        return f"run id {run_id!a} is not valid UTF-8 text"
    return None
