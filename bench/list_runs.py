"""`tideflow list` and its store queries on many runs.

    .venv/bin/python bench/list_runs.py                         # SQLite, 10,000 runs
    .venv/bin/python bench/list_runs.py --pg-url postgresql://USER@HOST:PORT/DB   # and PostgreSQL
    .venv/bin/python bench/list_runs.py --runs 50000 --json

For each store, a fresh store (a temporary SQLite file; a fresh schema on PostgreSQL, dropped
afterwards) gets N runs of two workflows (bench/workflows/noop1.yaml and sleeper.yaml, half
each) written with the public `Store.create_run`; every fifth run is terminated (an ended run
with an error type). Then, each call repeated (median and min of up to 200 calls in 3 s):

- `find_runs` for the first page of 100, newest first: no filter, by status, by workflow, by
  error type, by a one-hour --since window; and a page deep in the list (the cursor of run
  N/2);
- `count_runs` of the running runs (what a bulk cancel asks first);
- a whole `tideflow list --limit 100` process (start-up included), median of 10.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKFLOWS = (BENCH / "workflows" / "noop1.yaml", BENCH / "workflows" / "sleeper.yaml")
sys.path.insert(0, str(ROOT))


@contextmanager
def fresh_store_url(kind: str, pg_url: str | None) -> Iterator[str]:
    if kind == "postgres":
        from scale import pg_schema

        assert pg_url is not None
        with pg_schema(pg_url) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="tideflow-list-") as tmp:
            yield str(Path(tmp) / "list.db")


def fill(url: str, n: int) -> float:
    """N runs in the store; the seconds it took."""
    from interpreter.client import load_definition
    from interpreter.new_runs import started_run
    from interpreter.store import open_store

    began = time.perf_counter()
    defns = [load_definition(path) for path in WORKFLOWS]
    store = open_store(url)
    try:
        for i in range(n):
            run = started_run(defns[i % 2], f"run-{i:07d}", {"i": i})
            store.create_run(run)
            if i % 5 == 0:
                store.terminate(run.id, "bench", time.time())
    finally:
        store.close()
    return time.perf_counter() - began


def timed(call: Callable[[], Any], budget_s: float = 3.0, most: int = 200) -> dict[str, float]:
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < most and (not times or time.perf_counter() < deadline):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "calls": len(times)}


def measure(kind: str, pg_url: str | None, n: int) -> dict[str, Any]:
    from interpreter.store import RunFilter, open_store

    with fresh_store_url(kind, pg_url) as url:
        fill_s = fill(url, n)
        store = open_store(url)
        try:
            middle = store.find_runs(RunFilter(), limit=n // 2)[-1]
            workflow = store.find_runs(RunFilter(), limit=1)[0].workflow
            hour_ago = time.time() - 3600
            calls: dict[str, Callable[[], Any]] = {
                "first page": lambda: store.find_runs(RunFilter(), limit=100),
                "--status terminated": lambda: store.find_runs(
                    RunFilter(statuses=("terminated",)), limit=100
                ),
                "--workflow": lambda: store.find_runs(RunFilter(workflow=workflow), limit=100),
                "--error Terminated": lambda: store.find_runs(
                    RunFilter(error_type="Terminated"), limit=100
                ),
                "--since 1h": lambda: store.find_runs(RunFilter(since=hour_ago), limit=100),
                "page at N/2 (--cursor)": lambda: store.find_runs(
                    RunFilter(), limit=100, before=(middle.created_at, middle.id)
                ),
                "count running": lambda: store.count_runs(RunFilter(statuses=("running",))),
            }
            results = {name: timed(call) for name, call in calls.items()}
        finally:
            store.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        walls = []
        for _ in range(10):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "interpreter", "list", "--limit", "100", "--db", url],
                env=env,
                check=True,
                capture_output=True,
            )
            walls.append((time.perf_counter() - began) * 1000)
        results["tideflow list (process)"] = {
            "median_ms": statistics.median(walls),
            "min_ms": min(walls),
            "calls": len(walls),
        }
    return {"store": kind, "runs": n, "fill_seconds": fill_s, "calls": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--pg-url", help="also measure PostgreSQL (a database you can write to)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kinds = ["sqlite"] + (["postgres"] if args.pg_url else [])
    results = [measure(kind, args.pg_url, args.runs) for kind in kinds]
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
        return 0
    print(f"machine: {machine()}")
    for result in results:
        print(
            f"\n{result['store']}: {result['runs']:,} runs (filled in {result['fill_seconds']:.1f} s)"
        )
        print(f"  {'query':<26} {'median':>10} {'min':>10}")
        for name, figures in result["calls"].items():
            print(f"  {name:<26} {figures['median_ms']:>8.2f}ms {figures['min_ms']:>8.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
