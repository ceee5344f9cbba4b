"""The interpreter's one clock seam: every wall-clock and monotonic read outside the pure core
goes through `clock.wall()` / `clock.monotonic()`.

For real runs they are `time.time` / `time.monotonic` themselves (bound at import: no extra
call). `use_virtual()` swaps in a `VirtualClock` for the duration of a block, and
`run_virtual()` runs a coroutine on `VirtualLoop` (interpreter/virtual_loop.py), an asyncio
event loop whose timers run on that clock: when nothing is ready and no thread work is in
flight, time jumps straight to the next timer. `tideflow test` runs cases on it, so a 30-day
sleep finishes in milliseconds. Generic: nothing here knows about workflows.
"""

from __future__ import annotations

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


def run_virtual(main: Callable[[], Any], virtual: VirtualClock) -> Any:
    """Run the coroutine made by `main()` to the end on a VirtualLoop over `virtual`."""
    # Imported here: the loop needs asyncio (20-30 ms of imports), which every command that
    # reads the clock (`tideflow status`, `list`) would otherwise load for nothing.
    from interpreter.virtual_loop import VirtualLoop

    loop = VirtualLoop(virtual)
    try:
        with use_virtual(virtual):
            return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


__all__ = ["VirtualClock", "monotonic", "run_virtual", "use_virtual", "wall"]
