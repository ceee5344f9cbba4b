"""Activities for the concurrency tests (parallel, map, children, signals, crash loops).

Every activity appends JSON lines to the file named by TIDEFLOW_CC_LOG (when set): one at the
start and one at the end of each attempt, `{"activity", "run_id", "state", "attempt", "key",
"event", "tag", "t"}`, the end line with `"outcome"` (`ok`, `cancelled` or the error type).
Each line is one O_APPEND write followed by fsync, so the file is the ground truth of which
side effects really happened, in the order they happened, even across a kill -9.

`cc.barrier` and `cc.rendezvous` only return when `parties` attempts of the same run and group
are in flight at the same time: they prove that branches/iterations really overlap (run one at
a time they time out with BarrierTimeout).

Load with `--activities tests/concurrency_activities.py` (or load_activity_modules).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from interpreter import ActivityContext, ApplicationError, activity

LOG_ENV = "TIDEFLOW_CC_LOG"

_lock = threading.Lock()
_barriers: dict[tuple[str, str], threading.Barrier] = {}
_rendezvous: dict[tuple[str, str], tuple[asyncio.Event, list[int]]] = {}


def log(ctx: ActivityContext, name: str, event: str, **extra: Any) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    record = {
        "activity": name,
        "run_id": ctx.run_id,
        "state": ctx.state,
        "attempt": ctx.attempt,
        "key": ctx.idempotency_key,
        "event": event,
        "t": time.time(),
        **extra,
    }
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    with _lock:  # one writer at a time inside this process; O_APPEND across processes
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def max_in_flight(lines: list[dict[str, Any]], activity_name: str) -> int:
    """The largest number of attempts of `activity_name` that had started and not ended."""
    current = peak = 0
    for line in lines:
        if line["activity"] != activity_name:
            continue
        current += 1 if line["event"] == "start" else -1
        peak = max(peak, current)
    return peak


def _obj(payload: Any) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else {}


def _sleep(ctx: ActivityContext, seconds: float) -> bool:
    """Sleep in small steps; True when the attempt was cancelled meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return True
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        ctx.heartbeat()
    return ctx.cancelled


@activity("cc.echo")
def echo(ctx: ActivityContext, payload: Any) -> Any:
    """Sleep `delay` seconds (watching for cancellation), then return `value`.

    A cancelled attempt logs `outcome: cancelled` and raises Cancelled."""
    data = _obj(payload)
    tag = data.get("tag")
    log(ctx, "cc.echo", "start", tag=tag)
    if _sleep(ctx, float(data.get("delay", 0))):
        log(ctx, "cc.echo", "end", tag=tag, outcome="cancelled")
        raise ApplicationError("cancelled", type="Cancelled", non_retryable=True)
    log(ctx, "cc.echo", "end", tag=tag, outcome="ok")
    return data.get("value")


@activity("cc.stubborn_async")
async def stubborn_async(ctx: ActivityContext, payload: Any) -> Any:
    """Waits `delay` seconds on the event loop; cancelled, it goes on for `linger` seconds
    (clean-up that awaits) before it logs `outcome: cancelled` and gives in."""
    data = _obj(payload)
    tag = data.get("tag")
    log(ctx, "cc.stubborn_async", "start", tag=tag)
    try:
        await asyncio.sleep(float(data.get("delay", 10)))
    except asyncio.CancelledError:
        await asyncio.sleep(float(data.get("linger", 0.2)))
        log(ctx, "cc.stubborn_async", "end", tag=tag, outcome="cancelled")
        raise
    log(ctx, "cc.stubborn_async", "end", tag=tag, outcome="ok")
    return data.get("value")


@activity("cc.noop")
def noop(payload: Any) -> Any:
    return payload


@activity("cc.fail")
def fail(ctx: ActivityContext, payload: Any) -> Any:
    """After `delay` seconds raise `type` (non-retryable unless `retryable: true`)."""
    data = _obj(payload)
    tag = data.get("tag")
    log(ctx, "cc.fail", "start", tag=tag)
    time.sleep(float(data.get("delay", 0)))
    error_type = str(data.get("type", "Boom"))
    log(ctx, "cc.fail", "end", tag=tag, outcome=error_type)
    raise ApplicationError(
        str(data.get("message", f"{error_type} on purpose")),
        type=error_type,
        non_retryable=not data.get("retryable", False),
        details={"tag": tag},
    )


@activity("cc.barrier")
def barrier(ctx: ActivityContext, payload: Any) -> Any:
    """Return only once `parties` attempts of this run and `group` wait here at the same time."""
    data = _obj(payload)
    group = str(data.get("group", "default"))
    parties = int(data.get("parties", 2))
    tag = data.get("tag")
    log(ctx, "cc.barrier", "start", tag=tag)
    with _lock:
        gate = _barriers.setdefault((ctx.run_id, group), threading.Barrier(parties))
    try:
        gate.wait(timeout=float(data.get("timeout", 5)))
    except threading.BrokenBarrierError:
        log(ctx, "cc.barrier", "end", tag=tag, outcome="BarrierTimeout")
        raise ApplicationError(
            f"barrier {group!r}: fewer than {parties} attempts in flight together",
            type="BarrierTimeout",
            non_retryable=True,
        ) from None
    _sleep(ctx, float(data.get("after", 0)))
    log(ctx, "cc.barrier", "end", tag=tag, outcome="ok")
    return {"tag": tag, "value": data.get("value")}


@activity("cc.rendezvous")
async def rendezvous(ctx: ActivityContext, payload: Any) -> Any:
    """The async twin of cc.barrier, on the worker's event loop."""
    data = _obj(payload)
    group = str(data.get("group", "default"))
    parties = int(data.get("parties", 2))
    tag = data.get("tag")
    log(ctx, "cc.rendezvous", "start", tag=tag)
    event, count = _rendezvous.setdefault((ctx.run_id, group), (asyncio.Event(), [0]))
    count[0] += 1
    if count[0] >= parties:
        event.set()
    try:
        await asyncio.wait_for(event.wait(), float(data.get("timeout", 5)))
    except TimeoutError:
        log(ctx, "cc.rendezvous", "end", tag=tag, outcome="BarrierTimeout")
        raise ApplicationError(
            f"rendezvous {group!r}: fewer than {parties} attempts in flight together",
            type="BarrierTimeout",
            non_retryable=True,
        ) from None
    await asyncio.sleep(float(data.get("after", 0)))
    log(ctx, "cc.rendezvous", "end", tag=tag, outcome="ok")
    return {"tag": tag, "value": data.get("value")}


@activity("cc.undo")
def undo(ctx: ActivityContext, payload: Any) -> Any:
    """A compensation: logs that it ran (tag) and returns it."""
    tag = _obj(payload).get("tag")
    log(ctx, "cc.undo", "start", tag=tag)
    log(ctx, "cc.undo", "end", tag=tag, outcome="ok")
    return {"undone": tag}


# --------------------------------------------------------------------------- test helpers
# Plain functions and a context manager the concurrency tests share (importing this module also
# registers the activities above in the test process).


class BackgroundWorker:
    """A `Worker` on its own store connection in a thread, for tests that need runs to move
    while the test sends signals, queries or cancels. Stops (grace `grace` s) on exit.
    `options`: more Worker arguments (concurrency, lease_seconds...)."""

    def __init__(
        self,
        store_url: str,
        *,
        workflow_dirs: tuple[Any, ...] = (),
        grace: float = 0.5,
        root_id: str | None = None,
        **options: Any,
    ) -> None:
        self.store_url = store_url
        self.workflow_dirs = workflow_dirs
        self.grace = grace
        self.root_id = root_id
        self.options = options
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _main(self) -> None:
        from pathlib import Path

        from interpreter import Client
        from interpreter.worker import Worker

        try:
            with Client(self.store_url) as client:
                worker = Worker(
                    client.store,
                    root_id=self.root_id,
                    poll_interval=0.02,
                    workflow_dirs=tuple(Path(d) for d in self.workflow_dirs),
                    **self.options,
                )
                asyncio.run(worker.run(until=self._stop.is_set, grace=self.grace))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> BackgroundWorker:
        self._thread = threading.Thread(target=self._main, name="test-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the background worker did not stop"
            self._thread = None
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(
    condition: Any, timeout: float = 120.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll `condition()` until it is truthy; return the value or fail after `timeout` s. The
    bound only catches a hang: it returns as soon as the condition holds, and a worker or
    `tideflow run` subprocess can take tens of seconds just to start on a loaded CI machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        time.sleep(interval)


def current_states(client: Any, run_id: str) -> set[str]:
    """The state names `status` reports as current."""
    return {entry["state"] for entry in client.status(run_id)["current"]}


def events(client: Any, run_id: str, type_: str | None = None) -> list[dict[str, Any]]:
    return [e for e in client.history(run_id) if type_ is None or e["type"] == type_]
