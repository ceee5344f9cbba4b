"""Scale-out benchmark: 10-step no-op runs with 1, 2 and 4 `tideflow worker` processes on one
PostgreSQL database, and 1 worker on SQLite for comparison.

    .venv/bin/python bench/scale.py                      # 1000 runs per setup
    .venv/bin/python bench/scale.py --runs 300 --json    # smaller, machine-readable
    .venv/bin/python bench/scale.py --pg postgresql://user@host/db

The database comes from --pg, else TIDEFLOW_BENCH_PG_URL, else TIDEFLOW_TEST_PG_URL; each setup
gets a fresh schema (dropped afterwards). For each setup:

- throughput: the workers are started and idle, then N runs are started (Client.start, one by
  one); runs/s and steps/s over [first start, last end]; the ratio to one worker;
- latency from `start` to the first step (the first ActivityStarted): under that load, and idle
  (40 runs started 50 ms apart while the workers wait);
- CPU seconds used by the workers and by the PostgreSQL backends serving this setup (when the
  server is on this machine), to see which side is the bottleneck. Only the backends whose
  pg_stat_activity row names this database and the setup's own application_name (set in the
  URL of its workers and of the process starting the runs) count, polled while the setup
  runs; other databases and clients, this script's polling reader and the server's
  background processes (checkpointer, WAL writer, ...) do not.

Then, in this process, one Worker on PostgreSQL runs 100 runs with every statement it sends
counted and classified: the database round trips one step costs.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKFLOW = BENCH / "workflows" / "noop10.yaml"
ACTIVITIES = BENCH / "activities.py"
STEPS_PER_RUN = 10
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- plumbing
def pg_base_url(given: str | None) -> str:
    url = given or os.environ.get("TIDEFLOW_BENCH_PG_URL") or os.environ.get("TIDEFLOW_TEST_PG_URL")
    if not url:
        sys.exit("no PostgreSQL: pass --pg URL or set TIDEFLOW_BENCH_PG_URL")
    return url


def with_search_path(base: str, schema: str) -> str:
    """The URL with `-csearch_path=schema` added to its `options` (kept if it has some)."""
    parts = urlsplit(base)
    query = parse_qs(parts.query)
    options = " ".join([*query.get("options", []), f"-csearch_path={schema}"])
    query["options"] = [options]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True, quote_via=quote)))


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def sqlite_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="tideflow-scale-") as tmp:
        yield str(Path(tmp) / "store.db")


_READERS: dict[str, Any] = {}


def rows(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A read outside tideflow (not counted), on one kept connection per store: polling with a
    new connection each time would cost the server a process start per poll."""
    conn = _READERS.get(url)
    if url.startswith("postgresql://"):
        import psycopg

        if conn is None:
            conn = _READERS[url] = psycopg.connect(url, autocommit=True)
        return list(conn.execute(statement.replace("?", "%s"), params).fetchall())
    if conn is None:
        conn = _READERS[url] = sqlite3.connect(url, timeout=30, isolation_level=None)
    return list(conn.execute(statement, params).fetchall())


def close_readers() -> None:
    for conn in _READERS.values():
        conn.close()
    _READERS.clear()


def completed(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM runs WHERE status='completed'")[0][0])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    return out


class WorkerPool:
    def __init__(self, url: str, count: int, tmp: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = [tmp / f"worker{i}.err" for i in range(count)]
        for log in self.logs:
            with open(log, "wb") as err:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "interpreter",
                            "worker",
                            "--db",
                            url,
                            "--activities",
                            str(ACTIVITIES),
                            "--concurrency",
                            "200",
                        ],
                        cwd=tmp,
                        env=env(),
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                )
        wait_for(
            lambda: all("Ctrl-C to stop" in log.read_text() for log in self.logs),
            60,
            "the workers to start",
        )

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        for proc in self.procs:
            times = psutil.Process(proc.pid).cpu_times()
            total += times.user + times.system
        return total

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=60)


def with_application_name(url: str, name: str) -> str:
    """The URL with `application_name=name`: the server shows it in pg_stat_activity, which is
    how the backends serving one setup are told apart from everything else on the server."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    query["application_name"] = [name]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True, quote_via=quote)))


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving this benchmark only: the server
    processes whose pg_stat_activity row names this database and `application_name`, polled
    while the setup runs (a backend that starts meanwhile counts from zero; one that ends
    loses what it used after the last poll, at most POLL seconds of it). Other postgres
    processes (other databases, other clients, the server's own background processes) are
    not counted."""

    POLL = 0.2

    def __init__(self, url: str, application_name: str) -> None:
        self.url = with_application_name(url, "tideflow-bench-cpu-sampler")
        self.application_name = application_name
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, conn: Any, first: bool) -> None:
        import psutil

        found = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            (self.application_name,),
        ).fetchall()
        for (pid,) in found:
            try:
                times = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            used = times.user + times.system
            self.first.setdefault(pid, used if first else 0.0)
            self.last[pid] = used

    def _run(self, conn: Any) -> None:
        with conn:
            while not self._stop.wait(self.POLL):
                self._sample(conn, first=False)
            self._sample(conn, first=False)

    def start(self) -> None:
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True)
        self._sample(conn, first=True)
        self._thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
        self._thread.start()

    def stop(self) -> tuple[float, int]:
        """CPU seconds used since start() and how many backends they came from."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        used = sum(self.last[pid] - self.first[pid] for pid in self.last)
        return used, len(self.last)


def start_runs(url: str, count: int, pace: float = 0.0) -> None:
    from interpreter.client import Client, load_definition

    defn = load_definition(WORKFLOW)
    with Client(url) as client:
        for _ in range(count):
            client.start(defn, None)
            if pace:
                time.sleep(pace)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def first_step_latencies(url: str, since: float) -> list[float]:
    found = rows(
        url,
        "SELECT r.created_at, min(e.time) FROM runs r JOIN events e ON e.run_id = r.id "
        # A step's events share a row (and its time): the first one's type is the row's, the
        # others are in its payload.
        "WHERE (e.type='ActivityStarted' OR (e.last_seq > e.seq "
        "AND e.payload LIKE ?)) AND r.created_at >= ? GROUP BY r.id, r.created_at",
        ('%"ActivityStarted"%', since),
    )
    return [(first - created) * 1000 for created, first in found]


# ----------------------------------------------------------------------------- setups
def measure(label: str, url: str, workers: int, runs: int, local_pg: bool) -> dict[str, Any]:
    reader_url = url
    backends = None
    if url.startswith("postgresql://"):
        # The workers' and the run starter's connections carry this name; the reader's not.
        app = f"tideflow-bench-{uuid.uuid4().hex[:8]}"
        url = with_application_name(url, app)
        reader_url = with_application_name(reader_url, "tideflow-bench-reader")
        backends = BackendCpu(url, app) if local_pg else None
    with tempfile.TemporaryDirectory(prefix="tideflow-scale-") as tmp:
        start_runs(url, 1)  # creates the schema; one warm-up run
        pool = WorkerPool(url, workers, Path(tmp))
        try:
            wait_for(lambda: completed(reader_url) == 1, 60, "the warm-up run")
            cpu_w0 = pool.cpu_seconds()
            if backends is not None:
                backends.start()
            began = time.time()
            start_runs(url, runs)
            started_in = time.time() - began
            wait_for(lambda: completed(reader_url) == runs + 1, 600, f"{runs} runs")
            ((first, last),) = rows(
                reader_url,
                "SELECT min(created_at), max(ended_at) FROM runs WHERE created_at >= ?",
                (began,),
            )
            cpu_w = pool.cpu_seconds() - cpu_w0
            cpu_pg, pg_backends = (None, None) if backends is None else backends.stop()
            loaded = first_step_latencies(reader_url, began)
            idle_from = time.time()
            start_runs(url, 40, pace=0.05)
            wait_for(lambda: completed(reader_url) == runs + 41, 60, "the paced runs")
            idle = first_step_latencies(reader_url, idle_from)
        finally:
            pool.stop()
            close_readers()
    window = last - first
    return {
        "setup": label,
        "workers": workers,
        "runs": runs,
        "seconds": round(window, 2),
        "start_calls_seconds": round(started_in, 2),
        "runs_per_s": round(runs / window, 1),
        "steps_per_s": round(runs * STEPS_PER_RUN / window, 1),
        "first_step_ms_loaded": {
            "p50": round(percentile(loaded, 0.5), 1),
            "p99": round(percentile(loaded, 0.99), 1),
        },
        "first_step_ms_idle": {
            "p50": round(percentile(idle, 0.5), 1),
            "p99": round(percentile(idle, 0.99), 1),
        },
        "worker_cpu_s": round(cpu_w, 2),
        "postgres_cpu_s": None if cpu_pg is None else round(cpu_pg, 2),
        "postgres_backends_counted": pg_backends,
        "worker_cpu_ms_per_step": round(cpu_w * 1000 / (runs * STEPS_PER_RUN), 3),
        "postgres_cpu_ms_per_step": None
        if cpu_pg is None
        else round(cpu_pg * 1000 / (runs * STEPS_PER_RUN), 3),
    }


_KINDS = (
    ("WITH upd AS", "commit (one statement)"),
    ("FOR UPDATE SKIP LOCKED", "claim"),
    ("MIN(r.due_at)", "next_due"),
    ("DISTINCT lease_owner", "scan for dead lease holders"),
    ("WHERE attention AND", "needs_attention"),
    ("WITH a AS", "read_inbox"),
    ("SET lease_owner=NULL", "release"),
    ("SET lease_expires=%s", "renew"),
    ("FROM definitions WHERE hash", "load_definition"),
    ("INSERT INTO heartbeats", "record_heartbeat"),
    ("FROM heartbeats", "heartbeat_details"),
)


def count_round_trips(base: str, runs: int) -> dict[str, Any]:
    """One in-process Worker on PostgreSQL; every statement its store sends is counted."""
    from interpreter.activities import load_activity_modules
    from interpreter.store.postgres import PostgresStore
    from interpreter.worker import Worker

    load_activity_modules([str(ACTIVITIES)])
    with pg_schema(base) as url:
        start_runs(url, runs)
        store = PostgresStore(url)
        kinds: Counter[str] = Counter()
        real_exec = store._exec

        def counted(conn: Any, query: str, params: Any = None) -> Any:
            kinds[next((name for needle, name in _KINDS if needle in query), query.split()[0])] += 1
            return real_exec(conn, query, params)

        store._exec = counted  # type: ignore[method-assign]
        before = store.db.round_trips
        worker = Worker(store, concurrency=200)
        began = time.monotonic()
        asyncio.run(worker.run(until=lambda: completed(url) == runs))
        seconds = time.monotonic() - began
        total = store.db.round_trips - before
        store.close()
        close_readers()
    steps = runs * STEPS_PER_RUN
    return {
        "runs": runs,
        "steps": steps,
        "seconds": round(seconds, 2),
        "round_trips": total,
        "round_trips_per_step": round(total / steps, 2),
        "by_kind_per_step": {k: round(n / steps, 3) for k, n in kinds.most_common()},
        "start_run_round_trips": 2,  # the insert (one CTE statement) and reading the record back
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per setup (default 1000)")
    parser.add_argument(
        "--pg", help="PostgreSQL URL (default: TIDEFLOW_BENCH_PG_URL, TIDEFLOW_TEST_PG_URL)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    base = pg_base_url(args.pg)
    local_pg = (urlsplit(base).hostname or "localhost") in ("localhost", "127.0.0.1", "::1")
    host = machine()  # the load average before this benchmark adds its own
    results = []
    for workers in (1, 2, 4):
        with pg_schema(base) as url:
            results.append(measure(f"postgres x{workers}", url, workers, args.runs, local_pg))
            if not args.json:
                print(json.dumps(results[-1]), flush=True)
    with sqlite_file() as path:
        results.append(measure("sqlite x1", path, 1, args.runs, False))
        if not args.json:
            print(json.dumps(results[-1]), flush=True)
    one = results[0]["runs_per_s"]
    for result in results:
        result["ratio_to_1_pg_worker"] = round(result["runs_per_s"] / one, 2)
    trips = count_round_trips(base, min(args.runs, 100))
    report = {"machine": host, "setups": results, "round_trips": trips}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print()
    print(f"machine: {report['machine']}")
    print(
        "pg cpu/step: CPU of the PostgreSQL backends serving the setup only (pids from "
        "pg_stat_activity for its database and application_name, polled while it ran)"
    )
    print(
        f"{'setup':<13} {'runs/s':>8} {'steps/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'idle p50':>9} {'idle p99':>9} {'wrk cpu/step':>13} {'pg cpu/step':>12}"
    )
    for r in results:
        pg = r["postgres_cpu_ms_per_step"]
        print(
            f"{r['setup']:<13} {r['runs_per_s']:>8} {r['steps_per_s']:>8} {r['ratio_to_1_pg_worker']:>6} "
            f"{r['first_step_ms_loaded']['p50']:>8} {r['first_step_ms_loaded']['p99']:>8} "
            f"{r['first_step_ms_idle']['p50']:>9} {r['first_step_ms_idle']['p99']:>9} "
            f"{r['worker_cpu_ms_per_step']:>11}ms {'-' if pg is None else f'{pg}ms':>12}"
        )
    print(
        f"\nround trips per step (one worker, {trips['runs']} runs): {trips['round_trips_per_step']}"
    )
    for kind, per_step in trips["by_kind_per_step"].items():
        print(f"  {kind:<30} {per_step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
