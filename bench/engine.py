"""Engine benchmarks: the peers' workloads (W1-W4, see ../shared/peers) and 10,000 sleeping runs.

    python bench/engine.py                  # everything, full size (a few minutes)
    python bench/engine.py --quick          # CI smoke: small counts, same code paths
    python bench/engine.py w1 w2 --json     # some workloads, machine-readable
    python bench/engine.py w1 --profile     # W1 under cProfile: where a step's time goes
    python bench/engine.py w1 w2 --baseline main   # old vs new, alternating, same minutes

Workloads (activities are no-ops returning a small dict, as in the peers' benchmarks):

- w1: one run of 10 sequential steps at a time, in-process (Client.start + Client.execute);
      5 warm-up + 30 measured. Per-step engine overhead = (10-step - 1-step) / 9.
- w2: 200 and 1,000 such runs started at once, then one Worker until all are done; each size
      in its own fresh process, so its peak RSS is its own (`--w2-sizes 200 10000` for others).
- w2pg: W2 with 200 runs on PostgreSQL (`--pg-url`, default TIDEFLOW_TEST_PG_URL; a fresh
      schema per process, dropped afterwards), one worker: steps/s, the worker's CPU and its
      round trips to the server per step. Not part of the default set.
- w3: one run that maps 100 no-op steps in parallel, then joins.
- sleepers: 10,000 runs that each sleep 1 h; a worker takes them all up and lets them go;
      store size, worker RSS and the time of `tideflow list` / `tideflow status`.
- w4: 20 steps of 100 ms; `tideflow run` gets SIGKILL once 10 steps logged their end, then
      `tideflow resume`; time from the kill to completion and re-executed steps.

Every workload runs in a fresh child process on a fresh SQLite store (WAL, synchronous=NORMAL,
the default durability) in a temporary directory. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from _engine_report import report
from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKFLOWS = BENCH / "workflows"
ACTIVITIES = BENCH / "activities.py"
SIDE_FILE_ENV = "TIDEFLOW_BENCH_SIDE_FILE"
# The source tree whose `interpreter` the children measure (default: this one); --baseline
# points it at a worktree of another revision while the benchmark code stays this one.
TREE_ENV = "TIDEFLOW_BENCH_TREE"
ALL = ("w1", "w2", "w3", "sleepers", "w4")
OPTIONAL = ("w2pg",)  # only when named (needs a PostgreSQL server)
PG_URL_ENV = "TIDEFLOW_TEST_PG_URL"

FULL = {
    "w1": {"n": 30, "warmup": 5},
    "w2": {"sizes": [200, 1000], "repeats": 3, "warmup": 20},
    "w2pg": {"size": 200, "repeats": 3, "warmup": 20},
    "w3": {"fanout": 100, "repeats": 5},
    "sleepers": {"n": 10_000},
    "w4": {"repeats": 3},
}
QUICK = {
    "w1": {"n": 10, "warmup": 2},
    "w2": {"sizes": [50], "repeats": 1, "warmup": 5},
    "w2pg": {"size": 50, "repeats": 1, "warmup": 5},
    "w3": {"fanout": 20, "repeats": 1},
    "sleepers": {"n": 300},
    "w4": {"repeats": 1},
}


# ----------------------------------------------------------------------------- helpers
def summarize(values: Iterable[float]) -> dict[str, float]:
    vals = sorted(values)
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "min": vals[0],
        "max": vals[-1],
        "mean": statistics.fmean(vals),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def engine_tree() -> Path:
    return Path(os.environ.get(TREE_ENV) or ROOT)


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(engine_tree()), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def tideflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "interpreter", *args]


def store_bytes(db: Path) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db) + suffix)
        sizes["db" + suffix.replace("-", "_")] = path.stat().st_size if path.exists() else 0
    sizes["total"] = sum(sizes.values())
    return sizes


def _client(db: Path | str) -> Any:
    """A Client of the tree under test on `db` (a SQLite path or a store URL)."""
    sys.path.insert(0, str(engine_tree()))
    import interpreter
    from interpreter import Client, load_activity_modules

    tree = engine_tree().resolve()
    if not Path(interpreter.__file__).resolve().is_relative_to(tree):
        raise SystemExit(f"measuring the wrong tree: interpreter from {interpreter.__file__}")

    load_activity_modules([str(ACTIVITIES)])
    return Client(str(db))


def _definition(name: str) -> Any:
    from interpreter.client import load_definition

    return load_definition(WORKFLOWS / name)


def _drain(client: Any, *, concurrency: int = 200, watch: Any = None) -> Any:
    """Run one Worker until no run of the store is running any more; `watch`: the store that
    looks (another connection, so the worker's own round trips can be counted apart)."""
    import asyncio

    from interpreter.worker import Worker

    worker = Worker(client.store, concurrency=concurrency)
    looking = watch or client.store

    def done() -> bool:
        return not looking.list_runs(status="running", limit=1)

    asyncio.run(worker.run(until=done))
    return worker


# ----------------------------------------------------------------------------- workloads (child)
def w1(tmp: Path, n: int, warmup: int) -> dict[str, Any]:
    client = _client(tmp / "w1.db")
    out: dict[str, Any] = {"steps": 10}
    for label, file in (
        ("noop10", "noop10.yaml"),
        ("noop1", "noop1.yaml"),
        ("noop10_async", "noop10_async.yaml"),
    ):
        defn = _definition(file)
        times, cpu = [], []
        for i in range(warmup + n):
            t0, c0 = time.perf_counter(), time.process_time()
            run_id = client.start(defn, {})
            record = client.execute(run_id)
            elapsed, used = time.perf_counter() - t0, time.process_time() - c0
            assert record.status == "completed", record.error
            if i >= warmup:
                times.append(elapsed * 1000)
                cpu.append(used * 1000)
        out[f"{label}_ms"] = summarize(times)
        # CPU time of the process (all threads): barely moved by other load on the machine.
        out[f"{label}_cpu_ms"] = summarize(cpu)
    ten, one = out["noop10_ms"]["median"], out["noop1_ms"]["median"]
    out["per_step_ms"] = ten / 10
    out["per_step_async_ms"] = out["noop10_async_ms"]["median"] / 10
    out["engine_overhead_per_step_ms"] = (ten - one) / 9
    out["cpu_per_step_ms"] = out["noop10_cpu_ms"]["median"] / 10
    out["engine_overhead_cpu_per_step_ms"] = (
        out["noop10_cpu_ms"]["median"] - out["noop1_cpu_ms"]["median"]
    ) / 9
    out["run_fixed_cost_ms"] = one - out["engine_overhead_per_step_ms"]
    out["store_bytes"] = store_bytes(tmp / "w1.db")
    return out


def w2_size(tmp: Path, size: int, repeats: int, warmup: int) -> dict[str, Any]:
    """W2 at one size; the caller gives each size a fresh process, so the peak RSS is this
    size's own (the peers report theirs at 200 runs)."""
    client = _client(tmp / f"w2-{size}.db")
    defn = _definition("noop10.yaml")
    for _ in range(warmup):
        client.start(defn, {})
    _drain(client)
    walls, starts, cpus, worker_cpus = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(size):
            client.start(defn, {})
        t1, c1 = time.perf_counter(), time.process_time()
        worker = _drain(client)
        t2 = time.perf_counter()
        assert worker.steps >= size * 10
        cpus.append(time.process_time() - c0)
        worker_cpus.append(time.process_time() - c1)
        walls.append(t2 - t0)
        starts.append(t1 - t0)
    failed = len(client.store.list_runs(status="failed"))
    assert failed == 0, f"{failed} runs failed"
    client.close()
    wall = summarize(walls)
    return {
        "workflows": size,
        "wall_s": wall,
        "start_s": summarize(starts),
        "wf_per_s_median": size / wall["median"],
        "steps_per_s_median": size * 10 / wall["median"],
        "wf_per_s_range": [size / wall["max"], size / wall["min"]],
        "cpu_ms_per_step": statistics.median(cpus) * 1000 / (size * 10),
        # The process's CPU while the worker ran (its event loop and activity threads), from
        # the first claim to the last run's end: what one step costs the worker.
        "worker_cpu_us_per_step": statistics.median(worker_cpus) * 1e6 / (size * 10),
        "peak_rss_mb": peak_rss_mb(),
    }


def w2pg(tmp: Path, size: int, repeats: int, warmup: int, pg_url: str) -> dict[str, Any]:
    """W2 on PostgreSQL in a schema of its own: steps/s, the worker's CPU and round trips per
    step (the store counts the statements it sends, a pipelined batch as one)."""
    import psycopg

    schema = f"tfbench_w2_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    url = pg_url + ("&" if "?" in pg_url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        client = _client(url)
        watch = _client(url).store  # done() reads on its own connections: not counted
        defn = _definition("noop10.yaml")
        for _ in range(warmup):
            client.start(defn, {})
        _drain(client, watch=watch)
        walls, cpus, trips = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(size):
                client.start(defn, {})
            c1, r1 = time.process_time(), client.store.db.round_trips
            worker = _drain(client, watch=watch)
            walls.append(time.perf_counter() - t0)
            assert worker.steps >= size * 10
            cpus.append(time.process_time() - c1)
            trips.append(client.store.db.round_trips - r1)
        failed = len(client.store.list_runs(status="failed"))
        assert failed == 0, f"{failed} runs failed"
        client.close()
        watch.close()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    wall = summarize(walls)
    return {
        "workflows": size,
        "wall_s": wall,
        "steps_per_s_median": size * 10 / wall["median"],
        "worker_cpu_us_per_step": statistics.median(cpus) * 1e6 / (size * 10),
        "round_trips_per_step": statistics.median(trips) / (size * 10),
        "peak_rss_mb": peak_rss_mb(),
    }


def w2(tmp: Path, sizes: list[int], repeats: int, warmup: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "steps": 10,
        "mode": "Client.start x N, then one Worker (concurrency 200) until all end; "
        "each size in a fresh process",
    }
    for size in sizes:
        out[str(size)] = in_child("w2_size", tmp, size=size, repeats=repeats, warmup=warmup)
    return out


def w3(tmp: Path, fanout: int, repeats: int) -> dict[str, Any]:
    client = _client(tmp / "w3.db")
    defn = _definition("fanout100.yaml")
    items = list(range(fanout))
    times = []
    for i in range(1 + repeats):
        t0 = time.perf_counter()
        record = client.execute(client.start(defn, {"items": items}))
        if i:
            times.append(time.perf_counter() - t0)
        assert record.status == "completed" and record.output == {"count": fanout}, record.error
    return {"fanout": fanout, "wall_s": summarize(times), "peak_rss_mb": peak_rss_mb()}


def sleepers_create(tmp: Path, n: int) -> dict[str, Any]:
    client = _client(tmp / "sleepers.db")
    defn = _definition("sleeper.yaml")
    t0 = time.perf_counter()
    for i in range(n):
        client.start(defn, None, run_id=f"sleeper-{i:05d}")
    return {"create_s": time.perf_counter() - t0, "create_rss_mb": peak_rss_mb()}


def sleepers_work(tmp: Path, n: int) -> dict[str, Any]:
    import asyncio

    from interpreter.worker import Worker

    client = _client(tmp / "sleepers.db")
    worker = Worker(client.store, concurrency=200)

    def all_asleep() -> bool:
        due = client.store.next_due()
        return due is None or due > time.time() + 600

    t0 = time.perf_counter()
    asyncio.run(worker.run(until=all_asleep))
    elapsed = time.perf_counter() - t0
    rss = peak_rss_mb()  # before the count below, which loads every run
    asleep = len(client.store.list_runs(status="running"))
    # Measured with the worker's connection still open: the WAL is only folded back on close.
    return {
        "pickup_s": elapsed,
        "asleep": asleep,
        "worker_rss_mb": rss,
        "store_bytes_live": store_bytes(tmp / "sleepers.db"),
    }


CHILD_WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "w1": w1,
    "w2_size": w2_size,
    "w2pg": w2pg,
    "w3": w3,
    "sleepers_create": sleepers_create,
    "sleepers_work": sleepers_work,
}


def in_child(name: str, tmp: Path, **params: Any) -> dict[str, Any]:
    """Run one workload in a fresh interpreter (so RSS and caches are its own)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            name,
            "--tmp",
            str(tmp),
            "--params",
            json.dumps(params),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark {name} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------- workloads (parent)
def sleepers(tmp: Path, n: int) -> dict[str, Any]:
    out = {
        "runs": n,
        **in_child("sleepers_create", tmp, n=n),
        **in_child("sleepers_work", tmp, n=n),
    }
    db = tmp / "sleepers.db"
    out["store_bytes"] = store_bytes(db)  # at rest, every connection closed
    out["store_bytes_per_run"] = out["store_bytes_live"]["total"] / n

    def timed(*args: str) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(
            tideflow(*args),
            env=cli_env(),
            cwd=engine_tree(),  # `python -m` puts the current directory first on sys.path
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return time.perf_counter() - t0

    out["cli_version_s"] = min(timed("--version") for _ in range(3))  # start-up alone
    out["cli_list_s"] = min(timed("list", "--db", str(db)) for _ in range(3))
    out["cli_list_running_s"] = min(
        timed("list", "--status", "running", "--db", str(db)) for _ in range(3)
    )
    out["cli_status_s"] = min(
        timed("status", f"sleeper-{n // 2:05d}", "--db", str(db)) for _ in range(3)
    )
    return out


def w4(tmp: Path, repeats: int) -> dict[str, Any]:
    runs = []
    for rep in range(repeats):
        db, side = tmp / f"w4-{rep}.db", tmp / f"w4-{rep}.side"
        env = cli_env(**{SIDE_FILE_ENV: str(side)})
        args = ["--activities", str(ACTIVITIES), "--db", str(db), "--json"]
        run_id = f"w4-{rep}"
        t_start = time.time()
        first = subprocess.Popen(
            tideflow("run", str(WORKFLOWS / "slow20.yaml"), "--id", run_id, *args),
            env=env,
            cwd=engine_tree(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while time.time() < deadline and first.poll() is None:
            if (
                side.exists()
                and sum(1 for ln in side.read_text().splitlines() if ln.startswith("end ")) >= 10
            ):
                break
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        t_kill = time.time()
        before = [ln.split() for ln in side.read_text().splitlines()]
        second = subprocess.run(
            tideflow("resume", run_id, *args),
            env=env,
            cwd=engine_tree(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        t_done = time.time()
        result = (
            json.loads(second.stdout)
            if second.returncode == 0
            else {"status": f"exit {second.returncode}"}
        )
        lines = [ln.split() for ln in side.read_text().splitlines()]
        after = lines[len(before) :]
        ended_before = {int(x[1]) for x in before if x[0] == "end"}
        starts: dict[int, int] = {}
        for x in lines:
            if x[0] == "start":
                starts[int(x[1])] = starts.get(int(x[1]), 0) + 1
        runs.append(
            {
                "completed": result.get("status") == "completed",
                "steps_done_before_kill": len(ended_before),
                "recovery_s_from_restart": t_done - t_kill,
                "first_step_after_restart_s": min(
                    (float(x[3]) for x in after if x[0] == "start"), default=float("nan")
                )
                - t_kill,
                "last_step_end_after_kill_s": max(float(x[3]) for x in lines if x[0] == "end")
                - t_kill,
                "total_s": t_done - t_start,
                "completed_steps_reexecuted": sorted(
                    i
                    for i in ended_before
                    if any(x[0] == "start" and int(x[1]) == i for x in after)
                ),
                "steps_executed_more_than_once": sorted(i for i, c in starts.items() if c > 1),
                "executions_total": sum(starts.values()),
            }
        )
    return {
        "runs": runs,
        "recovery_s_from_restart": summarize(r["recovery_s_from_restart"] for r in runs),
        "first_step_after_restart_s": summarize(r["first_step_after_restart_s"] for r in runs),
        "note": "kill -> done includes the resume process's start-up (Python, imports) and its exit",
    }


# Workloads that run their own child processes (the others run whole in one child).
PARENT_WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "w2": w2,
    "sleepers": sleepers,
    "w4": w4,
}


# ----------------------------------------------------------------------------- profiling
def profile_w1(tmp: Path, n: int) -> None:
    """W1 under cProfile, plus store round trips and state size per step."""
    import cProfile
    import pstats

    client = _client(tmp / "profile.db")
    defn = _definition("noop10.yaml")
    store = client.store
    calls: dict[str, int] = {}
    for name in (
        "commit",
        "claim",
        "release",
        "renew",
        "next_due",
        "needs_attention",
        "read_inbox",
        "get_run",
        "list_runs",
        "create_run",
        "heartbeat_details",
    ):
        real = getattr(store, name, None)
        if real is None:
            continue

        def counted(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*a, **k)

        setattr(store, name, counted)
    for _ in range(3):
        client.execute(client.start(defn, {}))
    calls.clear()
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    last = None
    for _ in range(n):
        last = client.execute(client.start(defn, {}))
    profiler.disable()
    wall = time.perf_counter() - t0
    steps = n * 10
    print(
        f"\n{n} runs x 10 steps under cProfile: {wall * 1000 / steps:.3f} ms per step (profiler overhead included)"
    )
    print(
        "store calls per step: "
        + ", ".join(f"{k} {v / steps:.2f}" for k, v in sorted(calls.items()))
    )
    if last is not None:
        print(f"state JSON at the end of a run: {len(json.dumps(last.state))} bytes")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def run_workloads(
    names: Iterable[str], quick: bool, overrides: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    tmp = Path(tempfile.mkdtemp(prefix="tideflow-bench-"))
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": quick}
    try:
        for name in names:
            params = {**sizes[name], **(overrides or {}).get(name, {})}
            work = tmp / name
            work.mkdir()
            if name in PARENT_WORKLOADS:
                results[name] = PARENT_WORKLOADS[name](work, **params)
            else:
                results[name] = in_child(name, work, **params)
        results["machine"] = machine()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help=f"some of {', '.join(ALL)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts (CI smoke)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile W1 with cProfile and print where the time goes",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run each workload on REV (a temporary git worktree), alternating with the "
        "current tree, and print old median, new median and their ratio",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --baseline: runs of each workload on each tree (default 3)",
    )
    parser.add_argument(
        "--w2-sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="W2's numbers of runs (default 200 1000; each size in a fresh process)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(PG_URL_ENV),
        help=f"PostgreSQL for w2pg (default: {PG_URL_ENV})",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILD_WORKLOADS[args.child](Path(args.tmp), **json.loads(args.params))))
        return 0
    if args.profile:
        tmp = Path(tempfile.mkdtemp(prefix="tideflow-profile-"))
        try:
            profile_w1(tmp, 10 if args.quick else 50)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    unknown = sorted(set(args.workloads) - set(ALL) - set(OPTIONAL))
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ALL + OPTIONAL)}"
        )
    if "w2pg" in args.workloads and not args.pg_url:
        parser.error(f"w2pg needs a PostgreSQL server: give --pg-url URL (or set {PG_URL_ENV})")
    args.overrides = {"w2pg": {"pg_url": args.pg_url}}
    if args.w2_sizes:
        args.overrides["w2"] = {"sizes": args.w2_sizes}
    if args.baseline:
        return compare_with(args.baseline, args.workloads or list(ALL), args)
    results = run_workloads(args.workloads or ALL, args.quick, args.overrides)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


def compare_with(rev: str, names: list[str], args: argparse.Namespace) -> int:
    import _baseline

    if args.rounds < 1:
        raise SystemExit("error: --rounds must be at least 1")
    try:
        with _baseline.worktree(ROOT, rev) as (tree, commit):
            result = _baseline.side_by_side(
                lambda name: run_workloads((name,), args.quick, args.overrides)[name],
                names,
                {"baseline": tree, "current": ROOT},
                args.rounds,
                TREE_ENV,
            )
    except _baseline.BaselineError as exc:
        print(f"error: cannot check out the baseline {rev!r}: {exc}", file=sys.stderr)
        print("  hint: give a commit, branch or tag of this repository", file=sys.stderr)
        return 2
    result.update(baseline=f"{rev} ({commit})", machine=machine(), quick=args.quick)
    result["date"] = time.strftime("%Y-%m-%d %H:%M")
    print(
        json.dumps(result, indent=2) if args.json else _baseline.report(result, f"{rev} ({commit})")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
