"""Concurrency benchmarks: parallel fan-out, a 10,000-item map, and signal round trips.

    python bench/concurrency.py                 # everything (about a minute)
    python bench/concurrency.py --quick         # small counts, same code paths
    python bench/concurrency.py parallel --json # one workload, machine-readable

Workloads:

- parallel: one `parallel` state with 100 branches of one 100 ms activity each (sync, on the
  default worker's thread pool; and async), in-process `Client.start` + `Client.execute`, the
  default worker settings; 1 warm-up + 5 measured. Target: under 2 s.
- map: a `map` over 10,000 no-op items with `concurrency: 50` (items from `range()`, so the
  input is tiny); the same with the 10,000 items (about 100 bytes each) given in the input;
  and that again with steps of 0-20 ms, so iterations end one by one (more, smaller steps).
  Total time, steps/s, peak RSS of the process, commits, the run's final state size, and the
  wall time of `tideflow history --json` and `tideflow status` on the finished run.
- signal: a run that loops on `wait` for `ping`, with a `tideflow worker` subprocess driving
  it; the test process sends a signal, and the latency is send -> the history records the
  next state entered (the store's event time), also as seen by a client polling the history.

Each workload runs in a fresh child process on a fresh SQLite store (WAL, synchronous=NORMAL)
in a temporary directory that is removed afterwards. Figures are printed, never asserted;
docs/benchmarks-concurrency.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from interpreter import activity  # noqa: E402  (after the path set-up, for direct runs)

ALL = ("parallel", "map", "signal")
FULL = {
    "parallel": {"branches": 100, "repeats": 5},
    "map": {"items": 10_000},
    "signal": {"round_trips": 60},
}
QUICK = {
    "parallel": {"branches": 20, "repeats": 1},
    "map": {"items": 500},
    "signal": {"round_trips": 5},
}


# ----------------------------------------------------------------------------- activities
@activity("ccbench.sleep")
def sleep_sync(seconds: Any) -> Any:
    time.sleep(float(seconds))
    return {"slept": seconds}


@activity("ccbench.sleep_async")
async def sleep_async(seconds: Any) -> Any:
    await asyncio.sleep(float(seconds))
    return {"slept": seconds}


@activity("ccbench.noop")
def noop(value: Any) -> Any:
    return value


_jitter = random.Random(7)


@activity("ccbench.jitter")
async def jitter(value: Any) -> Any:
    """A no-op that takes 0-20 ms, so iterations end one by one (a step per completion)."""
    await asyncio.sleep(_jitter.random() * 0.02)
    return value


# ----------------------------------------------------------------------------- workflows
def parallel_workflow(branches: int, activity_name: str) -> dict[str, Any]:
    return {
        "dsl": "1.0",
        "name": "bench_parallel",
        "states": {
            "fan": {
                "type": "parallel",
                "branches": [
                    {
                        "states": {
                            f"b{i}": {
                                "type": "activity",
                                "activity": activity_name,
                                "input": 0.1,
                                "end": True,
                            }
                        }
                    }
                    for i in range(branches)
                ],
                "result": "outs",
                "next": "done",
            },
            "done": {"type": "succeed", "output": "{{ vars.outs | length }}"},
        },
    }


def map_workflow(items_template: str, activity_name: str = "ccbench.noop") -> dict[str, Any]:
    return {
        "dsl": "1.0",
        "name": "bench_map",
        "states": {
            "each": {
                "type": "map",
                "items": items_template,
                "as": "n",
                "concurrency": 50,
                "states": {
                    "work": {
                        "type": "activity",
                        "activity": activity_name,
                        "input": "{{ n if n is number else n.id }}",
                        "end": True,
                    }
                },
                "result": "results",
                "next": "done",
            },
            "done": {"type": "succeed", "output": {"count": "{{ vars.results | length }}"}},
        },
    }


PING_WORKFLOW: dict[str, Any] = {
    "dsl": "1.0",
    "name": "bench_ping",
    "signals": {"ping": {}},
    "vars": {"count": 0},
    "states": {
        "wait_ping": {"type": "wait", "signal": "ping", "next": "bump"},
        "bump": {"type": "set", "vars": {"count": "{{ vars.count + 1 }}"}, "next": "check"},
        "check": {
            "type": "choice",
            "choices": [{"when": "{{ vars.count >= input.n }}", "next": "done"}],
            "default": "wait_ping",
        },
        "done": {"type": "succeed", "output": "{{ vars.count }}"},
    },
}


def write_workflow(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


# ----------------------------------------------------------------------------- helpers
def summarize(values: list[float]) -> dict[str, float]:
    vals = sorted(values)
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "p90": vals[min(len(vals) - 1, int(len(vals) * 0.9))],
        "min": vals[0],
        "max": vals[-1],
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def timed_cli(*args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "interpreter", *args],
        env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"tideflow {' '.join(args)} failed: {proc.stderr}")
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- workloads
def bench_parallel(tmp: Path, branches: int, repeats: int) -> dict[str, Any]:
    from interpreter import Client

    out: dict[str, Any] = {"branches": branches}
    with Client(str(tmp / "parallel.db")) as client:
        for kind, name in (("sync", "ccbench.sleep"), ("async", "ccbench.sleep_async")):
            path = write_workflow(tmp, f"parallel_{kind}", parallel_workflow(branches, name))
            times = []
            for i in range(1 + repeats):
                started = time.perf_counter()
                record = client.execute(client.start(path))
                if i:
                    times.append(time.perf_counter() - started)
                assert record.status == "completed" and record.output == branches, record.error
            out[kind] = summarize(times)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _count_commits(client: Any) -> dict[str, int]:
    stats = {"commits": 0, "max_state_bytes": 0}
    real = client.store.commit

    def commit(run: Any, owner: str, data: Any, now: float) -> None:
        stats["commits"] += 1
        real(run, owner, data, now)

    client.store.commit = commit
    return stats


def bench_map(tmp: Path, items: int, variant: str) -> dict[str, Any]:
    from interpreter import Client

    db = tmp / f"map_{variant}.db"
    if variant == "range":
        path = write_workflow(tmp, "map_range", map_workflow("{{ range(input.count) | list }}"))
        input_: Any = {"count": items}
    else:
        activity_name = "ccbench.jitter" if variant == "input_jitter" else "ccbench.noop"
        path = write_workflow(tmp, "map_input", map_workflow("{{ input['items'] }}", activity_name))
        input_ = {"items": [{"id": i, "payload": "x" * 80} for i in range(items)]}
    with Client(str(db)) as client:
        stats = _count_commits(client)
        started = time.perf_counter()
        cpu_started = time.process_time()
        record = client.execute(client.start(path, input_))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        assert record.status == "completed" and record.output == {"count": items}, record.error
        events = sum(1 for _ in client.history(record.id))
        final_state = len(json.dumps(record.state))
    rss = peak_rss_mb()
    history_s = timed_cli("history", record.id, "--json", "--db", str(db))
    status_s = timed_cli("status", record.id, "--db", str(db))
    version_s = timed_cli("--version")
    return {
        "items": items,
        "variant": variant,
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s": items / wall,
        "peak_rss_mb": rss,
        "commits": stats["commits"],
        "events": events,
        "final_state_bytes": final_state,
        "input_bytes": len(json.dumps(input_)),
        "store_mb": sum(p.stat().st_size for p in tmp.iterdir() if p.name.startswith(db.name))
        / 1e6,
        "cli_history_json_s": history_s,
        "cli_status_s": status_s,
        "cli_startup_s": version_s,
    }


def bench_signal(tmp: Path, round_trips: int, db: str | None = None) -> dict[str, Any]:
    from interpreter import Client

    db = db or str(tmp / "signal.db")
    path = write_workflow(tmp, "ping", PING_WORKFLOW)
    worker = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "worker", "--db", db, "--activities", str(Path(__file__).resolve())],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    recorded, observed = [], []
    try:
        with Client(db) as client:
            run_id = client.start(path, {"n": round_trips + 3})
            seq = 0

            def next_bump(after: int, deadline: float) -> dict[str, Any]:
                nonlocal seq
                while time.monotonic() < deadline:
                    for event in client.store.iter_events(run_id, after=seq):
                        seq = event["seq"]
                        if event["type"] == "StateEntered" and event["state"] == "bump":
                            return event
                    time.sleep(0.001)
                raise RuntimeError("the worker did not take the signal within 10 s")

            # Wait for the run to reach its wait, then warm up with 3 round trips.
            deadline = time.monotonic() + 30
            while not any(
                e["type"] == "StateEntered" and e["state"] == "wait_ping"
                for e in client.store.iter_events(run_id)
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker never started the run")
                time.sleep(0.01)
            pause = random.Random(3)
            for i in range(round_trips + 3):
                # A random pause, so signals land at every phase of the worker's idle poll.
                time.sleep(0.02 + pause.random() * 0.1)
                sent = time.time()
                client.signal(run_id, "ping", {"i": i})
                event = next_bump(seq, time.monotonic() + 10)
                seen = time.time()
                if i >= 3:
                    recorded.append((event["time"] - sent) * 1000)
                    observed.append((seen - sent) * 1000)
            final = client.result(run_id, timeout=30)
            assert final.status == "completed", final.error
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return {
        "store": "postgresql" if db.startswith("postgres") else "sqlite",
        "round_trips": round_trips,
        "recorded_ms": summarize(recorded),
        "observed_ms": summarize(observed),
    }


# ----------------------------------------------------------------------------- driver
def run_child(name: str, tmp: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Each workload in a fresh process, so peak RSS and caches are its own."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", name, "--tmp", str(tmp), "--params", json.dumps(params)],
        env=cli_env(), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"workload {name} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def child_main(name: str, tmp: Path, params: dict[str, Any]) -> dict[str, Any]:
    if name == "parallel":
        return bench_parallel(tmp, **params)
    if name == "map":
        return bench_map(tmp, **params)
    if name == "signal":
        return bench_signal(tmp, **params)
    raise SystemExit(f"unknown workload {name!r}")


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"tideflow concurrency benchmarks - {results['date']} - {m['cpus']} vCPU {m['cpu_model']}, Python {m['python']}, load {m['loadavg_1m']:.1f}"
    ]

    def fig(s: dict[str, float], unit: str) -> str:
        return f"median {s['median']:.3f}{unit} (min {s['min']:.3f}, max {s['max']:.3f}, p90 {s['p90']:.3f}, n={s['n']})"

    if "parallel" in results:
        r = results["parallel"]
        lines.append(
            f"parallel: {r['branches']} branches x one 100 ms activity, start -> completed"
        )
        lines.append(f"  sync activities (thread pool) {fig(r['sync'], ' s')}")
        lines.append(f"  async activities              {fig(r['async'], ' s')}")
    for key in ("map_range", "map_input", "map_input_jitter"):
        if key in results:
            r = results[key]
            where = (
                "items from range() (tiny input)"
                if r["variant"] == "range"
                else f"items in the input ({r['input_bytes'] / 1e6:.1f} MB)"
            )
            if r["variant"] == "input_jitter":
                where += ", each step 0-20 ms (iterations end one by one)"
            lines.append(f"map: {r['items']} no-op items, concurrency 50, {where}")
            lines.append(
                f"  {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, {r['steps_per_s']:.0f} steps/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"{r['commits']} commits, {r['events']} events, final state {r['final_state_bytes'] / 1e3:.0f} kB, store {r['store_mb']:.1f} MB"
            )
            lines.append(
                f"  tideflow history --json {r['cli_history_json_s']:.2f} s, status {r['cli_status_s']:.2f} s (CLI start-up alone {r['cli_startup_s']:.2f} s)"
            )
    if "signal" in results:
        r = results["signal"]
        lines.append(
            f"signal round trip (send -> wait consumed -> next state entered), tideflow worker subprocess, {r['store']}, {r['round_trips']} signals"
        )
        lines.append(f"  as recorded in the history {fig(r['recorded_ms'], ' ms')}")
        lines.append(f"  as seen by a polling client {fig(r['observed_ms'], ' ms')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help=f"any of {', '.join(ALL)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--signal-db",
        metavar="URL",
        help="run the signal workload on this store (e.g. postgresql://...)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.child, Path(args.tmp), json.loads(args.params))))
        return 0
    unknown = sorted(set(args.workloads) - set(ALL))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    sizes = QUICK if args.quick else FULL
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick}
    tmp = Path(tempfile.mkdtemp(prefix="tideflow-ccbench-"))
    try:
        for name in args.workloads or ALL:
            if name == "map":
                for variant in ("range", "input", "input_jitter"):
                    work = tmp / f"map_{variant}"
                    work.mkdir()
                    results[f"map_{variant}"] = run_child(
                        "map", work, {**sizes["map"], "variant": variant}
                    )
            else:
                work = tmp / name
                work.mkdir()
                params = dict(sizes[name])
                if name == "signal" and args.signal_db:
                    params["db"] = args.signal_db
                results[name] = run_child(name, work, params)
        results["machine"] = machine()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
