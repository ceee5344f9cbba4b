"""Conformance: one store object is safe to share between threads (a Client, a worker's
threads and the asyncio tasks of one process all use the same store)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from conformance.conformance_kit import claim_one, create, seqs, step
from interpreter.store import RunRecord, Store


def failed(futures: list[Future[Any]]) -> list[str]:
    return [repr(exc) for future in futures if (exc := future.exception()) is not None]


def test_signals_from_many_threads_through_one_store_land_once(store: Store) -> None:
    create(store, "r", due_at=None)
    with ThreadPoolExecutor(max_workers=16) as pool:
        sends = [
            pool.submit(store.add_signal, "r", "tick", {"n": n}, time.time()) for n in range(400)
        ]
        reads: list[Future[Any]] = [pool.submit(store.get_run, "r") for _ in range(50)]
        reads += [pool.submit(store.read_inbox, "r") for _ in range(50)]
    problems = failed(sends) + failed(reads)
    assert not problems, f"{len(problems)} of 500 calls failed; the first: {problems[0]}"
    items, _ = store.read_inbox("r")
    assert sorted(item.payload["n"] for item in items) == list(range(400))
    assert sorted(item.id for item in items) == sorted(future.result() for future in sends)


def test_commits_and_reads_of_many_runs_through_one_store(store: Store) -> None:
    runs = [create(store, f"r{i}", due_at=None) for i in range(8)]
    held = {record.id: claim_one(store, record.id) for record in runs}

    def drive(record: RunRecord) -> None:
        for k in range(50):
            store.commit(record, "w", step(record, f"s{k}", events=2), time.time())
            assert store.get_run(record.id) is not None
            assert seqs(store, record.id)[-1] == record.next_seq - 1

    problems: list[str] = []

    def guarded(record: RunRecord) -> None:
        try:
            drive(record)
        except BaseException as exc:
            problems.append(repr(exc))

    threads = [threading.Thread(target=guarded, args=(r,)) for r in held.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, f"{len(problems)} of 8 threads failed; the first: {problems[0]}"
    for record in runs:
        assert held[record.id].next_seq == record.next_seq + 100
        assert seqs(store, record.id) == list(range(1, record.next_seq + 100))
