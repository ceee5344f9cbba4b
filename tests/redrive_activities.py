"""Activities for the retry/fork tests (tests/test_redrive.py): `rd.step` always succeeds,
`rd.fragile` fails (non-retryable) while TIDEFLOW_RD_BROKEN=1 — "the bug" — and succeeds once
the variable is unset — "the fix". Each call appends one JSON line to TIDEFLOW_RD_LOG, so a
test counts the side effects that really happened."""

from __future__ import annotations

import json
import os
from typing import Any

from interpreter import ActivityContext, ApplicationError, activity


def _log(ctx: ActivityContext, name: str) -> None:
    path = os.environ.get("TIDEFLOW_RD_LOG")
    if path:
        line = {"activity": name, "run_id": ctx.run_id, "state": ctx.state, "attempt": ctx.attempt}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


@activity("rd.step")
def step(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    _log(ctx, "rd.step")
    return {"done": ctx.state, "input": payload}


@activity("rd.fragile")
def fragile(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    _log(ctx, "rd.fragile")
    if os.environ.get("TIDEFLOW_RD_BROKEN") == "1":
        raise ApplicationError("the service has a bug", type="Broken", non_retryable=True)
    return {"done": ctx.state}
