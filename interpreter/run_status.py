"""What `tideflow status` (Client.status) and the server say of a run: where each branch stands
and what it waits for, its exit handlers, its vars and outcome. Pure: read from the record."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from interpreter.store.base import fork_link

if TYPE_CHECKING:
    from interpreter.store import RunRecord


def update_names(definition_source: str) -> set[str]:
    """The workflow's update names, from its canonical JSON (status loads no model)."""
    return set(json.loads(definition_source).get("updates") or {})


def current_states(state: dict[str, Any], updates: Collection[str] = ()) -> list[dict[str, Any]]:
    """Every active branch's current state, for `status`; `updates` are the workflow's update
    names, which a wait may name beside (or instead of) signals."""
    out = []
    for frame in state.get("frames", {}).values():
        if frame["status"] in ("ready", "waiting") and frame.get("state"):
            wait = frame.get("wait") or {}
            if wait.get("kind") in ("parallel", "map"):
                continue  # its branches are listed themselves
            entry: dict[str, Any] = {
                "frame": frame["id"],
                "state": frame["state"],
                "waiting_for": wait.get("kind"),
            }
            task = state.get("tasks", {}).get(wait.get("task") or "")
            if task is not None:
                # "ready" for long means no live worker offers this activity (see --activities).
                entry.update(
                    activity=task["activity"], attempt=task["attempt"], task_status=task["status"]
                )
            elif wait.get("kind") == "signal":
                entry.update(wait_names(wait, updates))
            elif wait.get("kind") == "child":
                entry["child"] = wait.get("child")
            out.append(entry)
    for task in state.get("tasks", {}).values():
        if task["kind"] == "compensation":
            out.append(
                {
                    "frame": None,
                    "state": task["state"],
                    "waiting_for": "compensation",
                    "activity": task["activity"],
                }
            )
    return out


def wait_names(wait: dict[str, Any], updates: Collection[str]) -> dict[str, Any]:
    """What a `wait` state waits for: `signal` and/or `update` with the names (the one name of
    `signal:`, a list for `signals:`), and `waiting_for` saying which of the two it is."""
    names = wait.get("signals") or wait.get("signal")
    if not isinstance(names, list):
        kind = "update" if names in updates else "signal"
        return {"waiting_for": kind, kind: names}
    signals = [name for name in names if name not in updates]
    updated = [name for name in names if name in updates]
    if signals and updated:
        return {"waiting_for": "signal_or_update", "signal": signals, "update": updated}
    if updated:
        return {"waiting_for": "update", "update": updated}
    return {"waiting_for": "signal", "signal": signals}


def exit_summary(state: dict[str, Any]) -> dict[str, Any] | None:
    """The run's exit handlers, once its outcome is known: the outcome, the handler running
    (None when all ran), those still to run, and the failures of those that failed."""
    exit_ = state.get("exit")
    if exit_ is None:
        return None
    return {
        "outcome": exit_["status"],
        "running": (exit_.get("current") or {}).get("handler"),
        "pending": list(exit_["pending"]),
        "errors": list(exit_["errors"]),
    }


def describe(
    record: RunRecord, children: list[str] | None = None, updates: Collection[str] = ()
) -> dict[str, Any]:
    state = record.state
    root = state.get("frames", {}).get(state.get("root") or "")
    return {
        "run_id": record.id,
        "workflow": record.workflow,
        "version": record.version,
        "definition_hash": record.def_hash,
        "status": record.status,
        "current": current_states(state, updates) if record.status == "running" else [],
        "vars": root["vars"] if root else {},
        "input": record.input,
        "output": record.output,
        "error": record.error,
        "exit_handlers": exit_summary(state),
        "parent_id": record.parent_id,
        "children": children or [],
        # The compensations a failure held (saga on_failure: hold), newest first; else None.
        "compensation_held": state.get("held") if record.status == "failed" else None,
        # A fork names the run and state it came from (interpreter/redrive.py).
        "forked_from": fork_link(record.forked_from, record.forked_from_state),
        # The latest completion-rule decisions of parallel/map states (who won, and why), and
        # the detached children still running with their parent-close policy.
        "decisions": state.get("decided", []),
        "detached": state.get("detached", {}),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "ended_at": record.ended_at,
    }
