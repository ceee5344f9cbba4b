"""Runs one activity attempt: the function call with its timeouts, heartbeats and cancellation,
turned into an outcome the engine understands. Sync functions run on daemon threads, async
ones on the worker's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interpreter import clock
from interpreter.activities.context import ActivityContext
from interpreter.activities.http import HTTP_ACTIVITY, run_http
from interpreter.activities.registry import get_activity
from interpreter.errors import ApplicationError, safe_text
from interpreter.jsondata import NotJsonData, check


@dataclass
class Outcome:
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    non_retryable: bool = False


def _err(type_: str, message: str, details: Any = None, *, final: bool = False) -> Outcome:
    return Outcome(
        False, error={"type": type_, "message": message, "details": details}, non_retryable=final
    )


def _json_details(value: Any) -> Any:
    try:
        check(value)
    except NotJsonData:
        return safe_text(value, repr)[:500]
    return value


_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


# How long a thread of a closed pool waits for a new pool to take it over before it ends.
SPARE_THREAD_SECONDS = 30.0


class _SpareThreads:
    """Threads whose pool was closed, waiting to serve the next pool. A process that runs one
    worker after another (each `Client.execute` has its own) would otherwise start a thread,
    and wait for it to come up, for every run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: list[queue.SimpleQueue[_DaemonThreads]] = []

    def park(self) -> _DaemonThreads | None:
        """Wait (on a closed pool's thread) for a pool to adopt this thread; None: time to end."""
        inbox: queue.SimpleQueue[_DaemonThreads] = queue.SimpleQueue()
        with self._lock:
            self._parked.append(inbox)
        try:
            return inbox.get(timeout=SPARE_THREAD_SECONDS)
        except queue.Empty:
            with self._lock:
                if inbox in self._parked:
                    self._parked.remove(inbox)
                    return None
            return inbox.get()  # adopted while timing out: the pool is on its way

    def adopt(self, pool: _DaemonThreads) -> bool:
        """Hand a parked thread to `pool`; False when none is parked."""
        with self._lock:
            if not self._parked:
                return False
            inbox = self._parked.pop()
        inbox.put(pool)
        return True


_SPARES = _SpareThreads()


class _DaemonThreads:
    """A pool of at most `limit` daemon threads for sync activities; calls beyond it queue.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so an attempt a
    stopping worker abandoned (or one that ignored its timeout) kept the process alive until
    the user's code returned. A daemon thread dies with the process; the attempt runs again on
    the next worker under the same idempotency key. Idle threads stay for the next call:
    starting a thread per call cost about 0.1 ms of CPU per step. Once the pool is closed they
    wait a while as spares for the next pool of the process.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0  # threads waiting for a job that no submit has claimed yet
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._idle:
                self._idle -= 1
                start = False
            else:
                start = self._threads < self._limit
                self._threads += start
        self._jobs.put((function, args, loop, future))
        if start and not _SPARES.adopt(self):
            threading.Thread(
                target=_serve, args=(self,), name="tideflow-activity", daemon=True
            ).start()
        return future

    def close(self) -> None:
        """Let every thread leave once its current call returns, to wait as a spare."""
        with self._lock:
            threads, self._threads, self._idle = self._threads, 0, 0
        for _ in range(threads):
            self._jobs.put(None)

    def serve(self) -> None:
        """Run this pool's calls on the current thread until the pool is closed."""
        while (job := self._jobs.get()) is not None:
            _run_job(*job)
            with self._lock:
                self._idle += 1


def _serve(pool: _DaemonThreads | None) -> None:
    """A pool thread's life: serve its pool, then the pools that adopt it, then end."""
    while pool is not None:
        pool.serve()
        pool = _SPARES.park()


def _run_job(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
) -> None:
    if future.cancelled():  # abandoned while it waited for a thread
        return
    try:
        result = function(*args)
    except StopIteration:  # a future cannot hold it (in a coroutine Python makes it this too)
        _settle(loop, future, None, RuntimeError("the activity raised StopIteration"))
    except BaseException as exc:  # like ThreadPoolExecutor: SystemExit ends only the attempt
        _settle(loop, future, None, exc)
    else:
        _settle(loop, future, result, None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():  # a timeout or the shutdown gave up on it
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    # The worker's loop is closed once it stopped; nobody waits for this result any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)


class ActivityRunner:
    def __init__(self, threads: int = 64) -> None:
        self._threads = _DaemonThreads(threads)

    def close(self) -> None:
        # Threads stuck in user code cannot be killed; being daemons, they do not hold the exit.
        self._threads.close()

    def start(self, task: dict[str, Any], ctx: ActivityContext) -> asyncio.Future[Outcome]:
        """Start one attempt of `task` (an engine task dict): a future of its outcome.
        Cancelling the future abandons the attempt (ctx.cancelled, a thread's late result is
        dropped, an async activity is cancelled)."""
        timeouts = task["timeouts"]
        limit: float | None = timeouts.get("start_to_close")
        deadline_bound = False
        if task.get("deadline") is not None:
            remaining = task["deadline"] - clock.wall()
            if limit is None or remaining < limit:
                limit, deadline_bound = max(0.0, remaining), True
        try:
            call = self._start(task["activity"], task["input"], ctx)
        except _NotRegistered as exc:
            settled: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            settled.set_result(_err("ActivityNotRegistered", str(exc), final=True))
            return settled
        guard = _Guard(call, ctx, limit, timeouts.get("heartbeat"), deadline_bound, task)
        return guard.outcome

    def _start(self, name: str, input_: Any, ctx: ActivityContext) -> asyncio.Future[Any]:
        registered = get_activity(name)
        if name == HTTP_ACTIVITY and registered is None:  # `tideflow test` may mock http
            return asyncio.ensure_future(run_http(input_))
        if registered is None:
            raise _NotRegistered(f"activity {name!r} is not registered in this worker")
        args: tuple[Any, ...] = (ctx, input_) if registered.wants_context else (input_,)
        if registered.is_async:
            coroutine: Any = registered.function(*args)
            future: asyncio.Future[Any] = asyncio.ensure_future(coroutine)
            return future
        return self._threads.submit(registered.function, args)


class _Guard:
    """Watches one call: its outcome future is settled by the call's end or by a timeout
    (start_to_close, schedule_to_close, heartbeat), whichever comes first.

    Callbacks and one timer, not a task waiting in asyncio.wait: a task per attempt and the
    wait's own future cost three more turns of the event loop between the call's end and the
    driver seeing it, on every step."""

    def __init__(
        self,
        call: asyncio.Future[Any],
        ctx: ActivityContext,
        limit: float | None,
        heartbeat: float | None,
        deadline_bound: bool,
        task: dict[str, Any],
    ) -> None:
        self.call, self.ctx, self.task = call, ctx, task
        self.limit, self.heartbeat, self.deadline_bound = limit, heartbeat, deadline_bound
        self.started = clock.monotonic()
        self.loop = asyncio.get_running_loop()
        self.outcome: asyncio.Future[Outcome] = self.loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.outcome.add_done_callback(self._outcome_done)
        call.add_done_callback(self._call_done)
        self._arm(self.started)

    def _arm(self, now: float) -> None:
        waits = []
        if self.limit is not None:
            waits.append(self.started + self.limit - now)
        if self.heartbeat is not None:
            waits.append(self.ctx.last_heartbeat + self.heartbeat - now)
        if waits:
            self.timer = self.loop.call_later(max(0.0, min(waits)), self._check)

    def _call_done(self, call: asyncio.Future[Any]) -> None:
        if not self.outcome.done():
            self.outcome.set_result(_outcome(call))

    def _outcome_done(self, outcome: asyncio.Future[Outcome]) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if outcome.cancelled():
            # The attempt is no longer wanted (its branch lost a race, the run was cancelled,
            # the worker gave up on it): cancel the call too, so an async activity stops at
            # its next await and a thread's late outcome is dropped.
            _abandon(self.call, self.ctx)

    def _check(self) -> None:
        self.timer = None
        if self.outcome.done():
            return
        if self.call.done():  # ended as the time ran out: its outcome counts
            self._call_done(self.call)
            return
        now = clock.monotonic()
        task = self.task
        if self.limit is not None and now >= self.started + self.limit:
            _abandon(self.call, self.ctx)
            which = "schedule_to_close" if self.deadline_bound else "start_to_close"
            self.outcome.set_result(
                _err(
                    "Timeout",
                    f"activity {task['activity']!r} exceeded its {which} timeout",
                    {"timeout": which},
                    final=self.deadline_bound,
                )
            )
        elif self.heartbeat is not None and now >= self.ctx.last_heartbeat + self.heartbeat:
            _abandon(self.call, self.ctx)
            self.outcome.set_result(
                _err(
                    "HeartbeatTimeout",
                    f"activity {task['activity']!r} sent no heartbeat for {self.heartbeat:g}s",
                    {"heartbeat_details": _json_details(self.ctx._reported)},
                )
            )
        else:  # a heartbeat came meanwhile
            self._arm(now)


def _abandon(call: asyncio.Future[Any], ctx: ActivityContext) -> None:
    ctx._request_cancel()
    call.cancel()


def _outcome(call: asyncio.Future[Any]) -> Outcome:
    if call.cancelled():
        return _err("Cancelled", "the activity was cancelled", final=True)
    exc = call.exception()
    if exc is None:
        result = call.result()
        try:
            check(result)
        except NotJsonData as err:
            return _err(
                "ResultTooLarge" if err.too_large else "ResultNotSerializable",
                f"the activity's result cannot be kept in the run: {err.reason}",
                {"repr": safe_text(result, repr)[:500]},
                final=True,
            )
        return Outcome(True, result)
    if isinstance(exc, ApplicationError):
        return _err(
            _json_details(exc.type) if isinstance(exc.type, str) else "ApplicationError",
            _json_details(exc.message) if isinstance(exc.message, str) else "",
            _json_details(exc.details),
            final=exc.non_retryable,
        )
    if isinstance(exc, asyncio.CancelledError):
        return _err("Cancelled", "the activity was cancelled", final=True)
    message = _json_details(safe_text(exc))
    return _err(type(exc).__name__, message or type(exc).__name__)


class _NotRegistered(Exception):
    pass
