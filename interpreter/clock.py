"""The interpreter's one clock seam: every wall-clock and monotonic read outside the pure core
goes through `clock.wall()` / `clock.monotonic()`.

For real runs they are `time.time` / `time.monotonic` themselves (bound at import: no extra
call). `use_virtual()` swaps in a `VirtualClock` for the duration of a block, and
`VirtualLoop` is an asyncio event loop whose timers run on that clock: when nothing is ready
and no thread work is in flight, time jumps straight to the next timer. `tideflow test` runs
cases on it, so a 30-day sleep finishes in milliseconds. Generic: nothing here knows about
workflows.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

wall: Callable[[], float] = time.time
monotonic: Callable[[], float] = time.monotonic


class VirtualClock:
    """Time that moves only when told to: `advance(seconds)`."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.start = start
        self.elapsed = 0.0

    def wall(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.elapsed += seconds


@contextmanager
def use_virtual(virtual: VirtualClock) -> Iterator[VirtualClock]:
    """Route clock.wall()/clock.monotonic() to `virtual` inside the block (one thread at a
    time: the test runner)."""
    global wall, monotonic
    saved = wall, monotonic
    wall, monotonic = virtual.wall, virtual.monotonic
    try:
        yield virtual
    finally:
        wall, monotonic = saved


class _JumpingSelector(selectors.BaseSelector):
    """Wraps the loop's selector: a wait with a timeout first polls without blocking; when
    nothing is ready and no thread work is in flight, the virtual clock advances by the timeout
    instead of sleeping."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualLoop) -> None:
        self.inner = inner
        self.loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self.inner.select(0)
        if ready or timeout == 0:
            return ready
        if self.loop.in_flight:  # a thread will wake us: wait for real, time stands still
            return self.inner.select(0.05 if timeout is None else min(timeout, 0.05))
        if timeout is None:  # nothing scheduled at all: a real (short) wait
            return self.inner.select(0.05)
        self.loop.virtual.advance(timeout)
        return []

    def close(self) -> None:
        self.inner.close()

    def get_map(self) -> Any:
        return self.inner.get_map()


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on a VirtualClock (see the module docstring)."""

    def __init__(self, virtual: VirtualClock) -> None:
        self.virtual = virtual
        self.in_flight = 0
        super().__init__(selectors.DefaultSelector())
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self.virtual.monotonic()

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Any, *args: Any
    ) -> asyncio.Future[Any]:
        self.in_flight += 1
        future = super().run_in_executor(executor, func, *args)

        def done(_: object) -> None:
            self.in_flight -= 1

        future.add_done_callback(done)
        return future


def run_virtual(main: Callable[[], Any], virtual: VirtualClock) -> Any:
    """Run the coroutine made by `main()` to the end on a VirtualLoop over `virtual`."""
    loop = VirtualLoop(virtual)
    try:
        with use_virtual(virtual):
            return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


__all__ = ["VirtualClock", "VirtualLoop", "monotonic", "run_virtual", "use_virtual", "wall"]
