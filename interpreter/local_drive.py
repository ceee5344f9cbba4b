"""Driving a run in the calling thread (`Client.execute`): the worker runs on an event loop kept
for the thread across calls, with Ctrl-C handled by that loop.

`asyncio.run` makes a new loop (a selector and a socket pair) per call and installs its own
SIGINT handler, and `loop.add_signal_handler` lists every valid signal twice: together about
0.3 ms of every `execute`, a third of a one-step run. A loop kept per thread (a Client is shared
between threads, and each thread drives its runs on its own loop) costs nothing per call; what
asyncio.run does at its end that matters between calls, cancelling the tasks left over, is done
here after every call, so no attempt of one call runs on into the next.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from interpreter import clock
from interpreter.core.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    from interpreter.store.base import RunRecord, Store
    from interpreter.worker import EventSink, Worker

T = TypeVar("T")


class LocalRun:
    """The worker that drives one run (and its children) in this process for `execute`, on
    the client's thread loop or on the caller's own loop, and the check that says it ended."""

    def __init__(
        self,
        store: Store,
        record: RunRecord,
        *,
        workflow_dirs: tuple[Path, ...] = (),
        on_events: EventSink | None = None,
    ) -> None:
        from interpreter.worker import Worker

        self.store = store
        self.record = record
        self.worker = Worker(
            store,
            root_id=record.root_id,
            workflow_dirs=workflow_dirs,
            on_events=on_events,
            poll_interval=0.02,
        )
        # The first check uses the read the caller just made, and the read that saw the run
        # end is what execute returns: neither is made twice.
        self._unread: RunRecord | None = record
        self.ended: RunRecord | None = None

    def finished(self) -> bool:
        worker, run_id = self.worker, self.record.id
        if worker.is_driving(run_id):
            return False  # cheap: loading the run each poll costs O(state + input)
        current = self._unread if self._unread is not None else self.store.get_run(run_id)
        self._unread = None
        if current is not None and current.status not in TERMINAL_STATUSES:
            return False
        if self.record.root_id == run_id:
            if worker.has_drivers():
                return False
            # A root run that ended at once (timeout) asked its running children to cancel:
            # see through what is due now, or it would wait for another worker.
            due = self.store.next_due(self.record.root_id)
            if due is not None and due <= clock.wall():
                return False
        self.ended = current
        return True


class _ThreadLoop:
    """The loop of one thread; closed when the thread ends (its thread-local goes) or when a
    call left it in an unknown state."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


_LOCAL = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    holder: _ThreadLoop | None = getattr(_LOCAL, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _LOCAL.holder = _ThreadLoop()
    return holder.loop


def _discard_thread_loop() -> None:
    holder: _ThreadLoop | None = getattr(_LOCAL, "holder", None)
    _LOCAL.holder = None
    if holder is not None and not holder.loop.is_closed():
        holder.loop.close()


def run_here(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` to its end on this thread's loop, as asyncio.run would (a RuntimeError
    inside a running loop), then cancel and finish the tasks it left."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("Client.execute cannot be called from a running event loop")
    loop = _thread_loop()
    try:
        result = loop.run_until_complete(main())
        _finish_leftovers(loop)
    except BaseException:
        # Interrupted inside the loop's own code (or a leftover would not end): do not reuse
        # a loop whose state is unknown.
        try:
            _finish_leftovers(loop)
        finally:
            _discard_thread_loop()
        raise
    return result


def _finish_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


async def drive_until_interrupted(
    worker: Worker, finished: Callable[[], bool], grace: float
) -> bool:
    """Run `worker` until `finished()`; True when SIGINT stopped it. SIGINT is handled by the
    loop (not a KeyboardInterrupt, which a second Ctrl-C would raise wherever the code is, even
    inside a store call), so the shutdown is the worker's, as for `tideflow worker`. The
    handler only hands the stop to the loop: a plain `signal.signal` is a few microseconds, not
    the 0.14 ms of `loop.add_signal_handler` and its removal."""
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        worker.stop()

    def handler(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(on_sigint)

    previous: Any = None
    installed = threading.current_thread() is threading.main_thread()
    if installed:
        previous = signal.signal(signal.SIGINT, handler)
    try:
        await worker.run(until=finished, grace=grace)
    finally:
        if installed:  # None: a handler not set from Python; Python's own is the closest
            signal.signal(
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
    return interrupted
