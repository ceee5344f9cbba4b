"""The worker raises the garbage collector's young-generation threshold while it runs, and a
short command's start runs no collection (speed-ups: see interpreter/collector.py); both give
the process its own setting back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from interpreter.collector import WORKER_THRESHOLD, start_up, worker_pace
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


class _Node:
    """A container the collector tracks."""


def test_start_up_collects_nothing_and_files_what_it_made_as_old() -> None:
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with start_up():
            assert not gc.isenabled()
            made = [_Node() for _ in range(20_000)]  # past the young threshold many times
        assert passes == []
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
        assert gc.get_count()[0] < 100  # no pass is due for what the block made
        assert any(obj is made for obj in gc.get_objects(generation=2))
    finally:
        gc.callbacks.remove(count)


def test_start_up_leaves_a_collector_that_was_off_off_and_frozen_objects_frozen() -> None:
    gc.disable()
    try:
        with start_up():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()  # as an application that forks workers might have
    try:
        held = gc.get_freeze_count()
        with start_up():
            pass
        assert gc.get_freeze_count() == held  # the application's frozen objects stay frozen
        assert gc.isenabled()
    finally:
        gc.unfreeze()
