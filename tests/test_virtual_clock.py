"""interpreter/clock.py: the virtual loop jumps to the next timer; the seam is the real clock
outside use_virtual()."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from interpreter import clock

ROOT = Path(__file__).resolve().parent.parent


def test_a_thirty_day_sleep_is_instant_and_moves_both_clocks() -> None:
    virtual = clock.VirtualClock(start=1000.0)
    order: list[str] = []

    async def main() -> float:
        async def later(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            order.append(name)

        await asyncio.gather(later("b", 30 * 86400), later("a", 60))
        return clock.wall()

    began = time.monotonic()
    wall = clock.run_virtual(main, virtual)
    assert time.monotonic() - began < 60  # not a timing assertion: a real sleep would be 30 days
    assert order == ["a", "b"]
    assert wall == 1000.0 + 30 * 86400 and virtual.monotonic() == 30 * 86400
    assert clock.wall is time.time and clock.monotonic is time.monotonic


def test_thread_work_holds_virtual_time() -> None:
    virtual = clock.VirtualClock()

    async def main() -> tuple[float, float]:
        before = clock.monotonic()
        await asyncio.to_thread(time.sleep, 0.05)
        return before, clock.monotonic()

    before, after = clock.run_virtual(main, virtual)
    assert before == after == 0.0


def test_the_committed_test_file_schema_is_current() -> None:
    from dsl.testfile import schema

    committed = json.loads((ROOT / "schemas" / "test.schema.json").read_text())
    assert committed == schema(), "regenerate it: python -m dsl.testfile"
