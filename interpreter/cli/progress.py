"""Progress lines on stderr while a run executes in the foreground (only on a terminal)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interpreter.core.records import Event
    from interpreter.store import RunRecord

_SHOWN = {
    "StateEntered",
    "RetryScheduled",
    "TimerStarted",
    "ActivityFailed",
    "CompensationStarted",
    "CompensationFailed",
    "ChildStarted",
    "SignalReceived",
    "ErrorCaught",
    "ContinuedAsNew",
}


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, run: RunRecord, events: list[Event]) -> None:
        if not self.enabled:
            return
        for event in events:
            if event.type not in _SHOWN:
                continue
            detail = ""
            p = event.payload
            if event.type == "RetryScheduled":
                detail = f" attempt {event.attempt} in {p.get('delay', 0):g}s"
            elif event.type == "TimerStarted":
                detail = f" {p.get('kind')} {p.get('delay', 0):g}s"
            elif event.type in ("ActivityFailed", "CompensationFailed"):
                err = p.get("error") or {}
                detail = f" {err.get('type')}: {err.get('message')}"
            print(f"  {run.id} {event.type:<20} {event.state or ''}{detail}", file=sys.stderr)

    def summary(self, result: dict[str, Any]) -> None:
        print(f"run {result['run_id']} {result['status']}")
        if result["error"]:
            err = result["error"]
            print(f"error: {err.get('type')}: {err.get('message')}")
        if result["output"] is not None:
            print(json.dumps(result["output"], indent=2, ensure_ascii=False))
