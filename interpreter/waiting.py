"""Waiting for the store to change, without a fast poll (AsyncClient.result and .update).

- A store that notifies (PostgreSQL: LISTEN/NOTIFY; a run's end, a signal, an update, ...
  NOTIFY in the transaction that writes them) wakes the waiter at once.
- A SQLite file: every commit changes the -wal file (its size or mtime) or the store file,
  so the waiter looks at those with `os.stat` (no SQL, no lock on the store's connection),
  every few milliseconds just after a change, backing off to WAIT_MAX when nothing happens.
- Anything else (an in-memory store): the same backoff, reading the store.

A wake-up only says "something may have changed": the caller reads what it waits for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

WAIT_MIN = 0.002  # the first look after a change
WAIT_MAX = 0.25  # the slowest look at the SQLite file
NOTIFIED_MAX = 2.0  # with notifications: a read this often anyway, as a safety net
WAIT_GROWTH = 1.5


class ChangeWaiter:
    """`await waiter.wait(limit)` returns once the store may have changed, or after `limit`
    seconds. Use as an async context manager (it subscribes to the store's notifications)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._event: asyncio.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None
        path = getattr(store, "path", None)
        self._files = (
            [path + "-wal", path] if isinstance(path, str) and path != ":memory:" else None
        )
        self._seen = self._token()
        self._delay = WAIT_MIN

    async def __aenter__(self) -> ChangeWaiter:
        subscribe = getattr(self.store, "subscribe", None)
        if subscribe is not None:
            loop = asyncio.get_running_loop()
            event = self._event = asyncio.Event()

            def wake() -> None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(event.set)

            self._unsubscribe = subscribe(wake)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _token(self) -> tuple[int, ...] | None:
        if self._files is None:
            return None
        token: list[int] = []
        for name in self._files:
            try:
                st = os.stat(name)
            except OSError:
                token += [-1, -1]
            else:
                token += [st.st_size, st.st_mtime_ns]
        return tuple(token)

    async def wait(self, limit: float | None) -> None:
        if self._event is not None:  # notified: wait for the next notification
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), _cap(limit, NOTIFIED_MAX))
            self._event.clear()
            return
        remaining = limit
        while True:
            step = _cap(remaining, self._delay)
            await asyncio.sleep(step)
            self._delay = min(WAIT_MAX, self._delay * WAIT_GROWTH)
            token = self._token()
            if token is None or token != self._seen:  # no file to watch, or it changed
                self._seen = token
                if token is not None:
                    self._delay = WAIT_MIN
                return
            if remaining is not None:
                remaining -= step
                if remaining <= 0:
                    return


def _cap(limit: float | None, most: float) -> float:
    return most if limit is None else max(0.0, min(limit, most))
