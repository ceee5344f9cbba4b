"""One timer for the longest waits of all of a worker's drivers.

A driver waits for its attempts to end, for a wake-up, or for its next timer, and never
longer than `Worker.step_wait` (a safety net: every change that matters wakes it at once).
A timer of its own per wait is a TimerHandle made and cancelled on every step; the drivers
whose wait is that longest one share this timer instead, which settles them all when it
fires. A driver that began its wait after the timer was armed is woken up to `cap` seconds
early: it looks again and waits again, as after any wake-up. The timer is cancelled once no
driver waits on it, so an idle loop on virtual time (`tideflow test`) is not moved on by it.
"""

from __future__ import annotations

import asyncio


class CappedWaits:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, waiter: asyncio.Future[None], cap: float) -> None:
        """Settle `waiter` within `cap` seconds (the shared timer's, if it is armed already)."""
        self._waiters.add(waiter)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(cap, self._fire)

    def discard(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)
        if not self._waiters and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
