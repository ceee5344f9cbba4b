"""Activities for the engine benchmarks: no-ops (W1, W2, W3) and a 100 ms step that logs its
start and end to a side file (W4), like the peers' benchmarks in ../shared/peers."""

from __future__ import annotations

import os
import time
from typing import Any

from interpreter import activity

SIDE_FILE_ENV = "TIDEFLOW_BENCH_SIDE_FILE"


@activity("bench.noop")
def noop(payload: Any) -> dict[str, Any]:
    return {"i": payload.get("i") if isinstance(payload, dict) else None, "ok": True}


@activity("bench.noop_async")
async def noop_async(payload: Any) -> dict[str, Any]:
    return {"i": payload.get("i") if isinstance(payload, dict) else None, "ok": True}


def _side(event: str, index: Any) -> None:
    path = os.environ.get(SIDE_FILE_ENV)
    if not path:
        return
    # One O_APPEND write per line: the benchmark reads it while the worker writes.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {index} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


@activity("bench.slow")
def slow(payload: Any) -> dict[str, Any]:
    index = payload["i"]
    _side("start", index)
    time.sleep(0.1)
    _side("end", index)
    return {"i": index}


# --- callback tasks (bench/callbacks.py) ---------------------------------------------------
TOKEN_FILE_ENV = "TIDEFLOW_BENCH_TOKEN_FILE"


@activity("bench.send_token")
def send_token(ctx: Any, payload: Any) -> dict[str, Any]:
    """Hand the callback token to the benchmark (one `item token` line, one O_APPEND write)."""
    fd = os.open(os.environ[TOKEN_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{payload['i']} {ctx.callback_token}\n".encode())
    finally:
        os.close(fd)
    return {"i": payload["i"]}
