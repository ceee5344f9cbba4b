"""Runs one activity attempt: the function call with its timeouts, heartbeats and cancellation,
turned into an outcome the engine understands. Sync functions run on daemon threads, async
ones on the worker's event loop."""

from __future__ import annotations

import asyncio
import collections
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


@dataclass(slots=True)
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


# An idle thread waits this long for a call (from any worker of the process) before it ends.
SPARE_THREAD_SECONDS = 30.0


class _DaemonThreads:
    """At most `limit` calls of one worker's sync activities at a time, on daemon threads;
    calls beyond it queue.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so an attempt a
    stopping worker abandoned (or one that ignored its timeout) kept the process alive until
    the user's code returned. A daemon thread dies with the process; the attempt runs again on
    the next worker under the same idempotency key.

    The threads are the process's, not the pool's: an idle one waits on its own inbox in
    `_IDLE` to be handed a pool (of any worker) with calls queued, so a process that runs one
    worker after another (each `Client.execute` has its own) neither starts a thread per run
    (about 0.1 ms of CPU) nor wakes one to hand it from a closed pool to the next.

    A thread takes the pool's calls one after another while any are queued, and wakes at most
    one more thread at a time (when calls wait and no woken thread has come to take one yet):
    the many calls that a worker's runs submit in one turn of its loop cost a few thread
    wake-ups, not one each, and a call that blocks still leaves the next to another thread
    at once. Outcomes go back to the loop in batches: one wake-up of the loop carries every
    outcome that came before it ran.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._threads = 0  # threads serving this pool: taking, running or woken to take calls
        self._waking = 0  # of those, woken and not yet come to take a call
        self._queued: collections.deque[_Job] = collections.deque()
        self._settling: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        # Called with a call's future as the loop sets it (see `call_when_settled`).
        self._when_settled: dict[asyncio.Future[Any], Callable[[asyncio.Future[Any]], None]] = {}
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queued.append((function, args, loop, future))
            wake = self._wants_thread()
        if wake:
            self._wake_thread()
        return future

    def _wants_thread(self) -> bool:
        """Under the lock: whether a thread should be woken for the queued calls (counted)."""
        if self._queued and not self._waking and self._threads < self._limit:
            self._waking += 1
            self._threads += 1
            return True
        return False

    def _wake_thread(self) -> None:
        with _IDLE_LOCK:
            inbox = _IDLE.pop() if _IDLE else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=_serve, args=(inbox,), name="tideflow-activity", daemon=True
            ).start()
        inbox.put(self)

    def close(self) -> None:
        """Drop the calls still queued: their worker stopped and cancelled them."""
        with self._lock:
            self._queued.clear()
        self._when_settled.clear()

    def take(self, woken: bool) -> _Job | None:
        """The next queued call for a thread serving this pool (`woken`: its first); None:
        the thread is free."""
        with self._lock:
            if woken:
                self._waking -= 1
            if not self._queued:
                self._threads -= 1
                return None
            job = self._queued.popleft()
            wake = self._wants_thread()
        if wake:
            self._wake_thread()
        return job

    def settle(self, loop: asyncio.AbstractEventLoop, settled: _Settled) -> None:
        """Hand a call's outcome to its loop; only the first of a batch wakes the loop."""
        with self._lock:
            batch = self._settling.get(loop)
            if batch is not None:
                batch.append(settled)
                return
            self._settling[loop] = [settled]
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the worker's loop is closed: nobody waits for these any more
            with self._lock:
                self._settling.pop(loop, None)

    def call_when_settled(
        self, future: asyncio.Future[Any], hook: Callable[[asyncio.Future[Any]], None]
    ) -> None:
        """Call `hook(future)` as soon as the loop sets the future of a submitted call, in the
        same turn: a done callback would run a turn of the loop later, on every step. On the
        loop's thread only."""
        self._when_settled[future] = hook

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch = self._settling.pop(loop, [])
        hooks = []
        for future, result, error in batch:
            hook = self._when_settled.pop(future, None)
            if future.done():  # a timeout or the shutdown gave up on it
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
            if hook is not None:
                hooks.append((hook, future))
        # After every future is set: a hook that raised cannot leave the others unset.
        for hook, future in hooks:
            hook(future)


_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
]
_Settled = tuple["asyncio.Future[Any]", Any, BaseException | None]
# The inboxes of the idle threads, the most recently used last (it is handed out first).
_IDLE: list[queue.SimpleQueue[_DaemonThreads]] = []
_IDLE_LOCK = threading.Lock()


def _serve(inbox: queue.SimpleQueue[_DaemonThreads]) -> None:
    """An activity thread's life: take the queued calls of the pool it is handed, then wait
    idle for the next pool, and end after SPARE_THREAD_SECONDS without one."""
    pool: _DaemonThreads | None = inbox.get()
    woken = True
    while pool is not None:
        job = pool.take(woken)
        woken = False
        if job is None:
            with _IDLE_LOCK:
                _IDLE.append(inbox)
            pool, woken = _wait_idle(inbox), True
            continue
        function, args, loop, future = job
        if future.cancelled():  # abandoned meanwhile
            continue
        result, error = _call(function, args)
        pool.settle(loop, (future, result, error))


def _wait_idle(inbox: queue.SimpleQueue[_DaemonThreads]) -> _DaemonThreads | None:
    try:
        return inbox.get(timeout=SPARE_THREAD_SECONDS)
    except queue.Empty:
        with _IDLE_LOCK:
            if inbox in _IDLE:
                _IDLE.remove(inbox)
                return None
        return inbox.get()  # handed a pool while timing out: it is on its way


def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    try:
        return function(*args), None
    except StopIteration:  # a future cannot hold it (in a coroutine Python makes it this too)
        return None, RuntimeError("the activity raised StopIteration")
    except BaseException as exc:  # like ThreadPoolExecutor: SystemExit ends only the attempt
        return None, exc


class ActivityRunner:
    def __init__(self, threads: int = 64) -> None:
        self._threads = _DaemonThreads(threads)

    def close(self) -> None:
        # Threads stuck in user code cannot be killed; being daemons, they do not hold the exit.
        self._threads.close()

    def start(
        self,
        task: dict[str, Any],
        ctx: ActivityContext,
        on_outcome: Callable[[], None] | None = None,
    ) -> asyncio.Future[Outcome]:
        """Start one attempt of `task` (an engine task dict): a future of its outcome.
        Cancelling the future abandons the attempt (ctx.cancelled, a thread's late result is
        dropped, an async activity is cancelled). `on_outcome()` is called as the outcome is
        set (not a turn of the loop later, as a done callback would be)."""
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
        threads = None if isinstance(call, asyncio.Task) else self._threads  # sync: a thread's
        guard = _Guard(
            call, ctx, limit, timeouts.get("heartbeat"), deadline_bound, task, on_outcome, threads
        )
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
        on_outcome: Callable[[], None] | None,
        threads: _DaemonThreads | None,
    ) -> None:
        """`threads`: the pool whose thread runs the call (None: a task on the loop)."""
        self.call, self.ctx, self.task, self.on_outcome = call, ctx, task, on_outcome
        self.limit, self.heartbeat, self.deadline_bound = limit, heartbeat, deadline_bound
        self.started = clock.monotonic()
        self.loop = asyncio.get_running_loop()
        self.outcome: asyncio.Future[Outcome] = self.loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.outcome.add_done_callback(self._outcome_done)
        if threads is None:
            call.add_done_callback(self._call_done)
        else:  # called as the pool sets the call's future, not a turn of the loop later
            threads.call_when_settled(call, self._call_done)
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
            # What _outcome_done would do for a result, done here: its callback would cost
            # one more turn of the loop on every step.
            self.outcome.remove_done_callback(self._outcome_done)
            self._stop_timer()
            self._settle(_outcome(call))

    def _settle(self, outcome: Outcome) -> None:
        self.outcome.set_result(outcome)
        if self.on_outcome is not None:
            self.on_outcome()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _outcome_done(self, outcome: asyncio.Future[Outcome]) -> None:
        self._stop_timer()
        if outcome.cancelled():
            # The attempt is no longer wanted (its branch lost a race, the run was cancelled,
            # the worker gave up on it): cancel the call too, so an async activity stops at
            # its next await and a thread's late outcome is dropped.
            _abandon(self.call, self.ctx)

    def _check(self, last_look: bool = False) -> None:
        self.timer = None
        if self.outcome.done():
            return
        if self.call.done():  # ended as the time ran out: its outcome counts
            self._call_done(self.call)
            return
        now = clock.monotonic()
        task = self.task
        over = self.limit is not None and now >= self.started + self.limit
        silent = self.heartbeat is not None and now >= self.ctx.last_heartbeat + self.heartbeat
        if (over or silent) and not last_look:
            # One more turn of the loop first: after the loop was held up, the call's own
            # end or heartbeat may be due in the same turn as this timer.
            self.loop.call_soon(self._check, True)
            return
        if over:
            _abandon(self.call, self.ctx)
            which = "schedule_to_close" if self.deadline_bound else "start_to_close"
            self._settle(
                _err(
                    "Timeout",
                    f"activity {task['activity']!r} exceeded its {which} timeout",
                    {"timeout": which},
                    final=self.deadline_bound,
                )
            )
        elif silent:
            _abandon(self.call, self.ctx)
            self._settle(
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
