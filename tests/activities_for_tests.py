"""Activities used only by the tests (load with `--activities tests/activities_for_tests.py`, or
import the module in-process).

Attempts may run in another process than the test (a `tideflow run` subprocess, a worker), so
every activity that keeps state keeps it in a file whose path comes in the input. Each such file
gets one JSON line per call, written with one O_APPEND write so concurrent writers never
interleave.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from interpreter import ActivityContext, ApplicationError, activity


def append_json(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_json_lines(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _record(ctx: ActivityContext, **extra: Any) -> dict[str, Any]:
    return {
        "t": time.time(),
        "pid": os.getpid(),
        "run_id": ctx.run_id,
        "workflow": ctx.workflow,
        "state": ctx.state,
        "attempt": ctx.attempt,
        "key": ctx.idempotency_key,
        **extra,
    }


class InventoryMismatch(Exception):
    """A plain exception: its class name becomes the error type."""


# --- plain results -------------------------------------------------------------------------


@activity("test.echo")
def echo(ctx: ActivityContext, payload: Any) -> Any:
    return payload


@activity("test.echo_plain")
def echo_plain(payload: Any) -> Any:
    """One parameter: gets just the input, no context."""
    return {"got": payload, "type": type(payload).__name__}


@activity("test.echo_async")
async def echo_async(ctx: ActivityContext, payload: Any) -> Any:
    await asyncio.sleep(0)
    return {"async": True, "got": payload}


@activity("test.echo_async_plain")
async def echo_async_plain(payload: Any) -> Any:
    await asyncio.sleep(0)
    return {"async_plain": True, "got": payload}


@activity("test.context")
def context(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """Returns what the context says (and logs it to `path` when given)."""
    info = {
        "run_id": ctx.run_id,
        "workflow": ctx.workflow,
        "state": ctx.state,
        "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key,
        "heartbeat_details": ctx.heartbeat_details,
        "cancelled": ctx.cancelled,
    }
    if isinstance(payload, dict) and payload.get("path"):
        append_json(payload["path"], _record(ctx))
        fail_until = int(payload.get("fail_until_attempt", 0))
        if ctx.attempt < fail_until:
            raise ApplicationError(f"attempt {ctx.attempt} fails on purpose", type="Flaky")
    return info


@activity("test.append")
def append(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Appends `line` to the text file `path`; fails on purpose when `fail` is set."""
    append_json(payload["path"], _record(ctx, line=payload.get("line")))
    if payload.get("fail"):
        raise ApplicationError(
            f"cannot {payload.get('line')}", type=payload.get("type", "AppendFailed")
        )
    return {"line": payload.get("line"), "id": f"id-{payload.get('line')}"}


@activity("test.not_json")
def not_json(ctx: ActivityContext, payload: Any) -> Any:
    if isinstance(payload, dict) and payload.get("path"):
        append_json(payload["path"], _record(ctx))
    return {"when": object()}


# --- failures ------------------------------------------------------------------------------


@activity("test.fail_n_times")
def fail_n_times(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails the first `n` calls (counted in the file `path`) with `type`, then succeeds."""
    path = payload["path"]
    calls = len(read_json_lines(path)) + 1
    append_json(path, _record(ctx, call=calls))
    if calls <= int(payload.get("n", 0)):
        raise ApplicationError(
            f"call {calls} fails on purpose",
            type=payload.get("type", "Flaky"),
            non_retryable=bool(payload.get("non_retryable", False)),
            details={"call": calls},
        )
    return {"calls": calls, "attempt": ctx.attempt}


@activity("test.raise")
def raise_(ctx: ActivityContext, payload: dict[str, Any]) -> Any:
    if payload.get("path"):
        append_json(payload["path"], _record(ctx))
    kind = payload.get("kind", "InventoryMismatch")
    if kind == "InventoryMismatch":
        raise InventoryMismatch(payload.get("message", "counts differ"))
    if kind == "KeyError":
        raise KeyError(payload.get("message", "missing"))
    raise ApplicationError(
        payload.get("message", "failed on purpose"),
        type=kind,
        non_retryable=bool(payload.get("non_retryable", False)),
        details=payload.get("details"),
    )


# --- time ----------------------------------------------------------------------------------


@activity("test.sleep")
def sleep(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A sync activity that sleeps `seconds` and does not look at cancellation."""
    if payload.get("path"):
        append_json(payload["path"], _record(ctx, event="start"))
    time.sleep(float(payload["seconds"]))
    if payload.get("path"):
        append_json(payload["path"], _record(ctx, event="end"))
    return {"slept": payload["seconds"]}


@activity("test.sleep_async")
async def sleep_async(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("path"):
        append_json(payload["path"], _record(ctx, event="start"))
    await asyncio.sleep(float(payload["seconds"]))
    if payload.get("path"):
        append_json(payload["path"], _record(ctx, event="end"))
    return {"slept": payload["seconds"]}


@activity("test.hang")
def hang(ctx: ActivityContext, payload: Any) -> Any:
    """Never returns on its own (gives up after 30 s so a test process can always exit);
    stops when the attempt is abandoned (ctx.cancelled)."""
    if isinstance(payload, dict) and payload.get("path"):
        append_json(payload["path"], _record(ctx, event="start"))
    deadline = time.monotonic() + 30
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    if isinstance(payload, dict) and payload.get("path"):
        append_json(payload["path"], _record(ctx, event="abandoned"))
    return {"hung": True}


@activity("test.hang_async")
async def hang_async(ctx: ActivityContext, payload: Any) -> Any:
    if isinstance(payload, dict) and payload.get("path"):
        append_json(payload["path"], _record(ctx, event="start"))
    await asyncio.sleep(30)
    return {"hung": True}


@activity("test.heartbeat_then_hang")
def heartbeat_then_hang(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Attempt 1 heartbeats `beats` times (details {"step": i}), then hangs without
    heartbeating. Later attempts return the details they were handed."""
    append_json(payload["path"], _record(ctx, seen=ctx.heartbeat_details))
    if ctx.attempt >= int(payload.get("succeed_on", 2)):
        return {"seen": ctx.heartbeat_details, "attempt": ctx.attempt}
    for step in range(1, int(payload.get("beats", 3)) + 1):
        ctx.heartbeat({"step": step, "attempt": ctx.attempt})
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"unexpected": True}


@activity("test.heartbeat_steadily")
async def heartbeat_steadily(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs `seconds` in all, heartbeating every 50 ms: a heartbeat timeout never fires."""
    end = time.monotonic() + float(payload["seconds"])
    beats = 0
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        beats += 1
        ctx.heartbeat({"beats": beats})
    return {"beats": beats}


# --- retry policies by error (test_retry_lists.py) -----------------------------------------


@activity("test.fail_sequence")
def fail_sequence(ctx: ActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Call n (counted in the file `path`) fails as `failures[n-1]` ({type, status?, final?})
    while there is one, then succeeds."""
    path = payload["path"]
    calls = len(read_json_lines(path)) + 1
    append_json(path, _record(ctx, call=calls))
    failures = payload.get("failures", [])
    if calls <= len(failures):
        failure = failures[calls - 1]
        raise ApplicationError(
            f"call {calls} fails as {failure['type']}",
            type=failure["type"],
            non_retryable=bool(failure.get("final", False)),
            details={"status": failure.get("status"), "call": calls},
        )
    return {"calls": calls}
