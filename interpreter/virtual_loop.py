"""`VirtualLoop`: an asyncio event loop whose timers run on a `clock.VirtualClock`: when
nothing is ready and no thread work is in flight, time jumps straight to the next timer.
`clock.run_virtual` runs a coroutine on one. Apart from interpreter/clock.py, so that reading
the clock does not import asyncio."""

from __future__ import annotations

import asyncio
import selectors
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interpreter.clock import VirtualClock


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


__all__ = ["VirtualLoop"]
