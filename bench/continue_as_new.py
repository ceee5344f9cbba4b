"""Continue-as-new at length: one run loops `--total` iterations (default 100,000) of one no-op
activity step, continuing as new every `--per-segment` iterations (default 1,000: 100 segments).

    .venv/bin/python bench/continue_as_new.py                     # 100,000 iterations, SQLite
    .venv/bin/python bench/continue_as_new.py --total 20000 --json
    .venv/bin/python bench/continue_as_new.py --db postgresql://USER@HOST:PORT/DB   # timings only

One `Client.start` + `Client.execute` in this process on a fresh SQLite store in a temporary
directory (WAL, synchronous=NORMAL). At every segment switch (a `ContinuedAsNew` event seen by
the worker's event sink) it records the time, the store's data size (pages in use, as a
separate read-only connection sees the database with its WAL: the data, not the log's size),
and the size of the run state document the worker commits.

Printed: per-iteration cost (wall per segment / iterations, and this process's CPU time per
iteration, which the machine's other load disturbs less) of the first and last 5 segments and
their ratio; the state size and events per segment, first vs last; store bytes added per
segment, first vs last 10. Figures are printed, never asserted.

`--side-by-side ROUNDS` separates the run's own length from the machine's load (which moves
during a 2-minute run): a run is driven to total/per-segment segments, then, ROUNDS times, one
more of its segments and the first segment of a new run in the same store are driven in turn
(the side that goes first alternates); it prints both medians and their ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOOP = BENCH / "workflows" / "can_loop.yaml"
sys.path.insert(0, str(ROOT))


def store_bytes(db: Path) -> int:
    """Bytes of the pages in use (the WAL's committed pages included)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return int((pages - free) * size)


def disk_bytes(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def measure(url: str, total: int, per_segment: int, sqlite_file: Path | None) -> dict[str, Any]:
    from interpreter import Client, load_activity_modules
    from interpreter.store.base import dumps

    load_activity_modules([str(BENCH / "activities.py")])
    marks: list[dict[str, Any]] = []
    with Client(url) as client:
        run_id = client.start(LOOP, {"total": total, "per_segment": per_segment})
        started = time.perf_counter()
        cpu_started = time.process_time()

        def on_events(record: Any, events: list[Any]) -> None:
            if not any(e.type == "ContinuedAsNew" for e in events):
                return
            size = store_bytes(sqlite_file) if sqlite_file is not None else None
            marks.append(
                {
                    "at": time.perf_counter() - started,
                    "cpu": time.process_time() - cpu_started,
                    "store_bytes": size,
                    "state_bytes": len(dumps(record.state)),
                }
            )

        record = client.execute(run_id, on_events=on_events)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        chain = client.segments(run_id)
        events_per_segment = []
        for seg in chain:
            events_per_segment.append(sum(1 for _ in client.history(run_id, segment=seg.segment)))
        final_bytes = store_bytes(sqlite_file) if sqlite_file is not None else None
        final_disk = disk_bytes(sqlite_file) if sqlite_file is not None else None
    assert record.status == "completed", (record.status, record.error)
    times = [0.0] + [m["at"] for m in marks] + [wall]
    per_iter_ms = [(b - a) / per_segment * 1000 for a, b in itertools.pairwise(times)][
        : len(marks)
    ]  # whole segments only
    cpu_times = [0.0] + [m["cpu"] for m in marks] + [cpu]
    cpu_ms = [(b - a) / per_segment * 1000 for a, b in itertools.pairwise(cpu_times)][: len(marks)]
    growth = [
        b["store_bytes"] - a["store_bytes"]
        for a, b in itertools.pairwise(marks)
        if a["store_bytes"] is not None
    ]
    head, tail = per_iter_ms[:5], per_iter_ms[-5:]
    return {
        "total": total,
        "per_segment": per_segment,
        "segments": len(chain),
        "wall_s": round(wall, 2),
        "iterations_per_s": round(total / wall),
        "per_iteration_ms_first5": round(statistics.median(head), 4),
        "per_iteration_ms_last5": round(statistics.median(tail), 4),
        "last_over_first": round(statistics.median(tail) / statistics.median(head), 3),
        "cpu_per_iteration_ms_first5": round(statistics.median(cpu_ms[:5]), 4),
        "cpu_per_iteration_ms_last5": round(statistics.median(cpu_ms[-5:]), 4),
        "cpu_last_over_first": round(
            statistics.median(cpu_ms[-5:]) / statistics.median(cpu_ms[:5]), 3
        ),
        "state_bytes_first_last": [marks[0]["state_bytes"], marks[-1]["state_bytes"]],
        "events_per_segment_first_last": [events_per_segment[0], events_per_segment[-2]],
        "store_growth_per_segment_first10_last10": [
            round(statistics.median(growth[:10])) if growth else None,
            round(statistics.median(growth[-10:])) if growth else None,
        ],
        "store_bytes_final": final_bytes,
        "disk_bytes_final": final_disk,
        "output": record.output,
        "per_iteration_ms_by_segment": [round(ms, 3) for ms in per_iter_ms],
        "cpu_per_iteration_ms_by_segment": [round(ms, 3) for ms in cpu_ms],
    }


class Segments:
    """Drives one run segment by segment, timing each segment driven without a pause."""

    def __init__(self, url: str, per_segment: int) -> None:
        from interpreter import Client

        self.client = Client(url)
        self.run_id = self.client.start(LOOP, {"total": 10**12, "per_segment": per_segment})
        self.per_segment = per_segment
        self.switches: list[tuple[float, float]] = []

    def on_events(self, record: Any, events: list[Any]) -> None:
        if any(e.type == "ContinuedAsNew" for e in events):
            self.switches.append((time.perf_counter(), time.process_time()))

    def drive(self, segments: int) -> tuple[float, float]:
        """Drive `segments` + 1 more switches; the ms (wall, CPU) per iteration of the whole
        segments between the first and the last of them."""
        import asyncio

        from interpreter.worker import Worker

        target = len(self.switches) + segments + 1
        worker = Worker(
            self.client.store, root_id=self.run_id, poll_interval=0.001, on_events=self.on_events
        )
        asyncio.run(worker.run(until=lambda: len(self.switches) >= target, grace=5))
        (wall0, cpu0), (wall1, cpu1) = (
            self.switches[target - segments - 1],
            self.switches[target - 1],
        )
        iterations = segments * self.per_segment
        return (wall1 - wall0) / iterations * 1000, (cpu1 - cpu0) / iterations * 1000

    def close(self) -> None:
        self.client.close()


def side_by_side(tmp: Path, per_segment: int, segments: int, rounds: int) -> dict[str, Any]:
    """A run already `segments` segments long beside a fresh run in the same store, one segment
    each in turn (who goes first alternates), in the same minutes: the machine's load, the
    store's size and its WAL checkpoints hit both alike; only the run's own history differs."""
    from interpreter import load_activity_modules

    load_activity_modules([str(BENCH / "activities.py")])
    long = Segments(str(tmp / "long.db"), per_segment)
    long.drive(segments - 1)
    fresh_ms: list[tuple[float, float]] = []
    long_ms: list[tuple[float, float]] = []
    for index in range(rounds):
        fresh = Segments(str(tmp / "long.db"), per_segment)  # same store: same file, checkpoints
        try:
            order = [(fresh, fresh_ms), (long, long_ms)]
            for driven, into in order if index % 2 == 0 else order[::-1]:
                into.append(driven.drive(1))
        finally:
            fresh.close()
    reached = len(long.client.segments(long.run_id))
    long.close()

    def median(values: list[tuple[float, float]], i: int) -> float:
        return round(statistics.median(v[i] for v in values), 4)

    return {
        "long_run_segments_at_end": reached,
        "fresh_run_ms_per_iteration_wall_cpu": [median(fresh_ms, 0), median(fresh_ms, 1)],
        "long_run_ms_per_iteration_wall_cpu": [median(long_ms, 0), median(long_ms, 1)],
        "long_over_fresh_wall": round(median(long_ms, 0) / median(fresh_ms, 0), 3),
        "long_over_fresh_cpu": round(median(long_ms, 1) / median(fresh_ms, 1), 3),
        "rounds_wall_fresh_long": [
            [round(f[0], 3), round(g[0], 3)] for f, g in zip(fresh_ms, long_ms, strict=True)
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--per-segment", type=int, default=1_000)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--side-by-side",
        type=int,
        metavar="ROUNDS",
        help="instead: a run of total/per-segment segments beside fresh runs, ROUNDS segments "
        "each, alternating (SQLite)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.side_by_side:
        with tempfile.TemporaryDirectory(prefix="tideflow-can-") as tmp:
            result = side_by_side(
                Path(tmp), args.per_segment, args.total // args.per_segment, args.side_by_side
            )
    elif args.db:
        result = measure(args.db, args.total, args.per_segment, None)
    else:
        with tempfile.TemporaryDirectory(prefix="tideflow-can-") as tmp:
            db = Path(tmp) / "can.db"
            result = measure(str(db), args.total, args.per_segment, db)
    result["machine"] = machine()
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for key, value in result.items():
        print(f"{key:<42} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
