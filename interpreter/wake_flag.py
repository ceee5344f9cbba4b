"""The flag a worker's loop waits on between its rounds: set when a driver ends, the store
tells of new work, or the worker is stopped.

`asyncio.wait_for(event.wait(), timeout)` made a task, a future, a timer and their callbacks
for every round, and cancelled and awaited the task when the timeout came first; a round
follows every run's end. One waiter (the loop is the only one that waits) and one timer do the
same: 7.0 against 14.3 us a round (docs/benchmarks.md, 2026-12-04 (morning)).
"""

from __future__ import annotations

import asyncio


def settle(waiter: asyncio.Future[None] | None) -> None:
    """End a wait on `waiter` (None: nobody waits), once: also the drivers' waits use it."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class WakeFlag:
    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        settle(self._waiter)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self, timeout: float) -> None:
        """Until the flag is set or `timeout` seconds pass (on the loop's clock)."""
        if self._set:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
