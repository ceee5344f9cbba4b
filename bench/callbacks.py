"""Callback tasks: a map of 1,000 items, each waiting for a callback that another process
completes; how long from a completion to the state moving on.

    .venv/bin/python bench/callbacks.py                            # SQLite, 1,000 items
    .venv/bin/python bench/callbacks.py --pg-url postgresql://USER@HOST:PORT/DB   # and PostgreSQL
    .venv/bin/python bench/callbacks.py --items 100 --json         # smaller, machine-readable

For each store, on a fresh store (an SQLite file in a temporary directory; a fresh schema on
PostgreSQL, dropped afterwards):

1. a `tideflow worker --activities bench/activities.py` runs in its own process;
2. this process starts one run of bench/workflows/callbacks_map.yaml (a map over N items,
   concurrency N, each item a `completion: callback` activity that writes its token to a
   file), and waits until every item waits for its callback (N `CallbackWaiting` events);
3. it then completes the tokens one by one with `Client.complete_callback`, --interval apart
   (paced: each completion meets an idle worker), and then a second run's tokens all at once
   (burst: as fast as one process can send them);
4. per item, latency = the time of its `ActivityCompleted` event (when the worker applied the
   completion and moved the state on; the step's commit follows in the same transaction)
   minus the time `complete_callback` returned (the completion was committed). Both clocks are
   this machine's.

Reported: median, p99 and max latency, and the wall time of all completions. Figures are
printed, never asserted (docs/benchmarks.md, "2026-12-02: callbacks").
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is the script directory
from _procs import start_group, stop_group

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ACTIVITIES = BENCH / "activities.py"
WORKFLOW = BENCH / "workflows" / "callbacks_map.yaml"
sys.path.insert(0, str(ROOT))


@contextmanager
def fresh_store_url(kind: str, pg_url: str | None, tmp: Path) -> Iterator[str]:
    if kind == "postgres":
        from scale import pg_schema

        assert pg_url is not None
        with pg_schema(pg_url) as url:
            yield url
    else:
        yield str(tmp / "callbacks.db")


def _tokens(path: Path) -> dict[int, str]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[int(parts[0])] = parts[1]
    return found


def _wait(what: str, condition: Any, timeout: float, worker: subprocess.Popen[Any]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited ({worker.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def one_round(
    client: Any, worker: subprocess.Popen[Any], tmp: Path, items: int, interval: float, tag: str
) -> dict[str, Any]:
    token_file = tmp / f"tokens-{tag}.txt"
    run_id = client.start(WORKFLOW, {"items": list(range(items))}, run_id=f"callbacks-{tag}")

    def all_waiting() -> bool:
        record = client.get(run_id)
        waiting = [t for t in record.state["tasks"].values() if t["status"] == "callback"]
        return len(waiting) == items

    began = time.monotonic()
    tokens: dict[int, str] = _wait(
        "every token",
        lambda: len(_tokens(token_file)) == items and _tokens(token_file),
        600,
        worker,
    )
    _wait("every item waiting", all_waiting, 600, worker)
    ready_s = time.monotonic() - began
    committed: dict[int, float] = {}
    started = time.time()
    for item in range(items):
        client.complete_callback(tokens[item], item)
        committed[item] = time.time()
        if interval:
            time.sleep(interval)
    sent_s = time.time() - started
    record = client.result(run_id, timeout=600)
    assert record.status == "completed", record.error
    task_item: dict[str, int] = {}
    moved: dict[int, float] = {}
    for event in client.history(run_id):
        payload = event["payload"]
        if event["type"] == "ActivityScheduled":
            task_item[payload["task"]] = payload["input"]["i"]
        elif event["type"] == "ActivityCompleted":
            moved[task_item[payload["task"]]] = event["time"]
    lat = sorted((moved[i] - committed[i]) * 1000 for i in range(items))
    return {
        "mode": "paced" if interval else "burst",
        "items": items,
        "interval_ms": interval * 1000,
        "all_waiting_s": round(ready_s, 2),
        "completions_wall_s": round(sent_s, 2),
        "run_done_after_last_ms": round(
            (record.ended_at or 0) * 1000 - committed[items - 1] * 1000, 1
        ),
        "median_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "max_ms": round(lat[-1], 1),
    }


def bench_store(kind: str, pg_url: str | None, items: int, interval: float) -> list[dict[str, Any]]:
    from interpreter import Client

    with tempfile.TemporaryDirectory(prefix="tideflow-callbacks-") as tmp_name:
        tmp = Path(tmp_name)
        with fresh_store_url(kind, pg_url, tmp) as url:
            Client(url).close()  # the store exists before the worker opens it
            results = []
            for tag, pace in (("paced", interval), ("burst", 0.0)):
                env = {
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "TIDEFLOW_BENCH_TOKEN_FILE": str(tmp / f"tokens-{tag}.txt"),
                }
                worker = start_group(
                    [
                        sys.executable,
                        "-m",
                        "interpreter",
                        "worker",
                        "--activities",
                        str(ACTIVITIES),
                        "--db",
                        url,
                        "--concurrency",
                        "10",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                try:
                    with Client(url) as client:
                        results.append(
                            {"store": kind, **one_round(client, worker, tmp, items, pace, tag)}
                        )
                finally:
                    stop_group(worker)
            return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument(
        "--interval", type=float, default=0.02, help="seconds between paced completions"
    )
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (a fresh schema)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stores = ["sqlite"] + (["postgres"] if args.pg_url else [])
    rows = [r for kind in stores for r in bench_store(kind, args.pg_url, args.items, args.interval)]
    if args.json:
        print(json.dumps({"machine": machine(), "results": rows}, indent=1))
        return 0
    print(f"callback latency, {args.items} map items ({machine()})")
    print(
        f"{'store':<9}{'mode':<7}{'median ms':>10}{'p99 ms':>9}{'max ms':>9}{'send s':>8}{'ready s':>9}"
    )
    for r in rows:
        print(
            f"{r['store']:<9}{r['mode']:<7}{r['median_ms']:>10}{r['p99_ms']:>9}{r['max_ms']:>9}"
            f"{r['completions_wall_s']:>8}{r['all_waiting_s']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
