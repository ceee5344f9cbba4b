"""Activities of the callback task tests (tests/test_callbacks.py): they hand their callback
token to the test through a file, since the test plays the outside party."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from interpreter import ActivityContext, activity


@activity("cb.send")
async def send(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Write the token to `<dir>/<name>-<attempt>.token`; with `linger`, keep running that
    many seconds after (noting in `<name>.cancelled` when the step no longer wants it)."""
    folder = Path(payload["dir"])
    name = f"{payload['name']}-{ctx.attempt}"
    part = folder / f"{name}.part"
    part.write_text(ctx.callback_token or "", encoding="utf-8")
    part.replace(folder / f"{name}.token")
    linger = float(payload.get("linger", 0))
    for _ in range(int(linger * 20)):
        if ctx.cancelled:
            (folder / f"{payload['name']}.cancelled").write_text("yes")
            break
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            (folder / f"{payload['name']}.cancelled").write_text("yes")
            raise
    return {"sent": payload["name"]}
