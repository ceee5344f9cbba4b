"""The deterministic clock templates read: `now` is the moment the current state was entered,
as recorded in the run (the frame's `entered_at`, also the `at` of its StateEntered event), so
a resumed run evaluates every template to what an uninterrupted run did. Nothing here reads
the wall clock; `run.started_at` is in the run itself.
"""

from __future__ import annotations

from typing import Any


def clock_names(frame: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """`now` and `state` ({name, entered_at}) for templates evaluated in `frame`. Before the
    first state is entered (the workflow's `vars`, its `timeout`) the time is the run's start."""
    entered = frame.get("entered_at") or run["started_at"]
    return {"now": entered, "state": {"name": frame.get("state"), "entered_at": entered}}
