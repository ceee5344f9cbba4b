"""Idle cost: what a store and an idle worker cost while many runs sleep and nothing is due.

    .venv/bin/python bench/idle.py                            # SQLite: 1,000, 10,000, 50,000 runs
    .venv/bin/python bench/idle.py --pg-url postgresql://USER@HOST:PORT/DB   # and PostgreSQL
    .venv/bin/python bench/idle.py --sizes 1000 10000 --json  # some sizes, machine-readable

For each store and size, on a fresh store (an SQLite file in a temporary directory; a fresh
schema on PostgreSQL, dropped afterwards):

- N sleeping runs: one real run of bench/workflows/sleeper.yaml (`sleep: 1h`) is started and
  taken up by a Worker, which starts its timer and releases it; N - 1 copies of that run
  (same state, same history, same due time an hour ahead) are written with the public
  `Store.create_run`, which is much faster than driving each one through a worker;
- `store.next_due(...)` and an empty `store.claim(...)` (nothing is due), called as the
  worker's loop calls them (its owner id, the activities it offers): median and min of
  repeated calls; next_due also without the activities filter;
- an idle `tideflow worker --activities bench/activities.py` on that store: CPU time of its
  process (psutil: user + system) over --idle-seconds (default 10) after it has settled, as a
  percentage of one core.

Targets (issue 8): next_due <= 1 ms, an idle worker < 2% of a core. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import copy
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
from _procs import start_group, stop_group

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ACTIVITIES = BENCH / "activities.py"
SLEEPER = BENCH / "workflows" / "sleeper.yaml"
DEFAULT_SIZES = (1_000, 10_000, 50_000)
TARGET_NEXT_DUE_MS = 1.0
TARGET_IDLE_CPU_PCT = 2.0
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- stores
@contextmanager
def fresh_store_url(kind: str, pg_url: str | None) -> Iterator[str]:
    if kind == "postgres":
        from scale import pg_schema  # the same fresh-schema helper as the scale benchmark

        assert pg_url is not None
        with pg_schema(pg_url) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="tideflow-idle-") as tmp:
            yield str(Path(tmp) / "idle.db")


def sleeping_runs(url: str, n: int) -> dict[str, Any]:
    """N runs asleep for an hour in the store at `url` (see the module docstring)."""
    import asyncio

    from interpreter import Client
    from interpreter.core.records import Event
    from interpreter.store import NewRun
    from interpreter.worker import Worker

    with Client(url) as client:
        store = client.store
        template_id = client.start(SLEEPER, None, run_id="sleeper-template")
        worker = Worker(store, concurrency=10)

        def asleep() -> bool:
            due = store.next_due(template_id)
            return due is not None and due > time.time() + 600

        asyncio.run(worker.run(until=asleep))
        record = store.get_run(template_id)
        due_at = store.next_due(template_id)
        assert record is not None and due_at is not None
        source, file = store.load_definition(record.def_hash)
        events = [
            Event(e["type"], e["state"], e["attempt"], e["payload"])
            for e in store.iter_events(template_id)
        ]
        t0 = time.perf_counter()
        for i in range(n - 1):
            run_id = f"sleeper-{i:06d}"
            state = copy.deepcopy(record.state)
            state["run"]["id"] = run_id
            store.create_run(
                NewRun(
                    id=run_id,
                    workflow=record.workflow,
                    def_hash=record.def_hash,
                    def_source=source,
                    def_version=record.version,
                    def_file=file,
                    input=record.input,
                    state=state,
                    events=events,
                    due_at=due_at,
                )
            )
        created = time.perf_counter() - t0
        running = len(store.list_runs(status="running"))
    return {"create_s": created, "running": running, "due_in_s": due_at - time.time()}


# ----------------------------------------------------------------------------- measurements
def timed_calls(call: Callable[[], Any], budget_s: float = 3.0, most: int = 200) -> list[float]:
    """Milliseconds of repeated calls: at least 5, at most `most`, within about `budget_s`."""
    times: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(times) < most and (len(times) < 5 or time.monotonic() < deadline):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def store_calls(url: str) -> dict[str, Any]:
    """next_due and an empty claim, as the worker's loop makes them."""
    from interpreter import load_activity_modules
    from interpreter.store import open_store
    from interpreter.store.leases import new_owner_id

    offered = frozenset(load_activity_modules([str(ACTIVITIES)]))
    owner = new_owner_id()
    store = open_store(url)
    try:
        due = store.next_due(None, owner, activities=offered)
        assert due is not None and due > time.time(), "a run is due: the store is not idle"
        claimed = store.claim(owner, 30.0, time.time(), limit=200, activities=offered)
        assert claimed == [], f"claimed {len(claimed)} runs from an idle store"
        next_due = timed_calls(lambda: store.next_due(None, owner, activities=offered))
        # Without the activities filter (a worker that offers every activity would not need
        # it): tells the filter's share of the time.
        next_due_any = timed_calls(lambda: store.next_due(None, owner))
        claim = timed_calls(
            lambda: store.claim(owner, 30.0, time.time(), limit=200, activities=offered)
        )
    finally:
        store.close()
    return {
        "next_due_ms": summary(next_due),
        "next_due_no_filter_ms": summary(next_due_any),
        "empty_claim_ms": summary(claim),
    }


def idle_worker_cpu(url: str, seconds: float, settle: float = 3.0) -> dict[str, Any]:
    """CPU of an idle `tideflow worker` process over `seconds`, as % of one core."""
    import psutil

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="tideflow-idle-worker-") as tmp:
        log = Path(tmp) / "worker.err"
        command = [sys.executable, "-m", "interpreter", "worker", "--db", url]
        with open(log, "wb") as err:
            proc = start_group(
                [*command, "--activities", str(ACTIVITIES)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C to stop" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            time.sleep(settle)  # its first passes over the store are not idle cost
            process = psutil.Process(proc.pid)
            before, t0 = process.cpu_times(), time.monotonic()
            time.sleep(seconds)
            after, elapsed = process.cpu_times(), time.monotonic() - t0
        finally:
            stop_group(proc)
    used = (after.user - before.user) + (after.system - before.system)
    return {"seconds": round(elapsed, 2), "cpu_s": round(used, 3), "cpu_pct": used / elapsed * 100}


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def measure(kind: str, pg_url: str | None, n: int, idle_seconds: float) -> dict[str, Any]:
    with fresh_store_url(kind, pg_url) as url:
        made = sleeping_runs(url, n)
        calls = store_calls(url)
        worker = idle_worker_cpu(url, idle_seconds)
    load = os.getloadavg()[0]  # the machine is shared: how busy it was while this size ran
    return {"store": kind, "runs": n, **made, **calls, "idle_worker": worker, "loadavg_1m": load}


# ----------------------------------------------------------------------------- output
def table(results: list[dict[str, Any]]) -> str:
    out = [
        f"{'store':<9}{'runs':>8}{'created in':>12}{'next_due ms':>20}{'(no activities)':>20}"
        f"{'empty claim ms':>20}"
        f"{'idle worker':>13}{'load':>6}",
        f"{'':<9}{'':>8}{'(s)':>12}{'median (min)':>20}{'median (min)':>20}{'median (min)':>20}"
        f"{'% of a core':>13}"
        f"{'1 min':>6}",
    ]
    for r in results:
        nd, na, cl = r["next_due_ms"], r["next_due_no_filter_ms"], r["empty_claim_ms"]
        out.append(
            f"{r['store']:<9}{r['runs']:>8,}{r['create_s']:>12.1f}"
            f"{nd['median']:>12.3f} ({nd['min']:.3f})"
            f"{na['median']:>12.3f} ({na['min']:.3f})"
            f"{cl['median']:>12.3f} ({cl['min']:.3f})"
            f"{r['idle_worker']['cpu_pct']:>12.1f}%{r['loadavg_1m']:>6.1f}"
        )
    out.append(
        f"targets: next_due <= {TARGET_NEXT_DUE_MS:g} ms; idle worker < {TARGET_IDLE_CPU_PCT:g}% "
        "of a core. Store calls from this process; worker CPU from psutil (user + system)."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        metavar="N",
        help="numbers of sleeping runs (default 1000 10000 50000)",
    )
    parser.add_argument(
        "--pg-url",
        help="also measure PostgreSQL, e.g. postgresql://USER@HOST:PORT/DB (a fresh schema "
        "per size, dropped afterwards)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --pg-url)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=10.0,
        help="how long the idle worker's CPU is measured (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes: every size must be at least 1")
    stores = ([] if args.no_sqlite else ["sqlite"]) + (["postgres"] if args.pg_url else [])
    if not stores:
        parser.error("--no-sqlite needs --pg-url")
    host = machine()  # the load average before this benchmark adds its own
    results = []
    for kind in stores:
        for n in args.sizes:
            results.append(measure(kind, args.pg_url, n, args.idle_seconds))
            if not args.json:
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(
            json.dumps(
                {"machine": host, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results},
                indent=2,
            )
        )
    else:
        print(
            f"idle cost - {time.strftime('%Y-%m-%d %H:%M')} - {host['cpus']} vCPU, load {host['loadavg_1m']:.1f}"
        )
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
