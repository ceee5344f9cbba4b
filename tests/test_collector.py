"""The worker raises the garbage collector's young-generation threshold while it runs (a
speed-up: see interpreter/collector.py) and gives the process its own setting back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from interpreter.collector import WORKER_THRESHOLD, worker_pace
from interpreter.store import open_store
from interpreter.worker import Worker


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_raised_while_a_worker_runs_and_restored_after(
    default_threshold: tuple[int, int, int], tmp_path: Path
) -> None:
    seen: list[tuple[int, int, int]] = []
    store = open_store(str(tmp_path / "gc.db"))

    def look() -> bool:
        seen.append(gc.get_threshold())
        return True

    asyncio.run(Worker(store).run(until=look))
    store.close()
    assert seen and seen[0] == (WORKER_THRESHOLD, 10, 10)
    assert gc.get_threshold() == default_threshold


def test_never_lowered_and_a_change_meanwhile_is_kept(
    default_threshold: tuple[int, int, int],
) -> None:
    gc.set_threshold(50_000, 10, 10)
    with worker_pace():
        assert gc.get_threshold()[0] == 50_000
    assert gc.get_threshold()[0] == 50_000
    gc.set_threshold(700, 10, 10)
    with worker_pace():
        gc.set_threshold(1234, 10, 10)  # the application's own choice, made meanwhile
    assert gc.get_threshold()[0] == 1234
