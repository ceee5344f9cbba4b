"""Benchmark: how long the worker's loop stands still in its commits, WAL checkpoints included.

    .venv/bin/python bench/checkpoints.py                       # this tree, 3 processes
    .venv/bin/python bench/checkpoints.py --baseline 0e8ab70    # and REV, alternating (ABBA)
    .venv/bin/python bench/checkpoints.py --rounds 12 --runs 200 --json

Each process drives `--rounds` rounds of W2 on a fresh SQLite store (`--runs` runs of 10 no-op
steps started, then one Worker until all are done; at 200 runs a round writes about 4,000 WAL
frames, so 12 rounds pass the WAL's checkpoint limit several times) and times every COMMIT the
store's connection makes: all of them together, the ones over 5 ms (those that ran a WAL
checkpoint, see WAL_CHECKPOINT_PAGES in interpreter/store/sqlite.py) and the longest. Steps/s
is printed as well, but on a noisy machine it moves more than the checkpoints change it; the
commit times do not. Read it beside `bench/engine.py w2`'s worker CPU a step: moving work off
the loop can cost more of it in all (docs/benchmarks.md, 2026-12-04 (morning)).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from _baseline import worktree  # noqa: E402

STALL_SECONDS = 0.005  # the "commits over 5 ms" of the table


def child(tree: Path, rounds: int, runs: int) -> dict[str, Any]:
    """One process: the rounds on `tree`'s interpreter; the commit times of its store."""
    sys.path.insert(0, str(tree))
    import asyncio

    import interpreter
    from interpreter import Client, load_activity_modules
    from interpreter.client import load_definition
    from interpreter.worker import Worker

    if not Path(interpreter.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"measuring the wrong tree: interpreter from {interpreter.__file__}")
    load_activity_modules([str(BENCH / "activities.py")])
    commits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        client = Client(str(Path(tmp) / "c.db"))
        store = client.store
        connection = store._db

        class Timed:
            """The store's connection, with each COMMIT timed."""

            def execute(self, sql: str, args: Any = ()) -> Any:
                if sql != "COMMIT":
                    return connection.execute(sql, args)
                started = time.perf_counter()
                try:
                    return connection.execute(sql, args)
                finally:
                    commits.append(time.perf_counter() - started)

            def __getattr__(self, name: str) -> Any:
                return getattr(connection, name)

        store._db = Timed()
        store._session.db = store._db
        definition = load_definition(BENCH / "workflows" / "noop10.yaml")

        def running() -> bool:
            return bool(store.list_runs(status="running", limit=1))

        started = time.perf_counter()
        for _ in range(rounds):
            for _ in range(runs):
                client.start(definition, {})
            worker = Worker(store, concurrency=200)
            asyncio.run(worker.run(until=lambda: not running()))
        wall = time.perf_counter() - started
        store._db = connection
        store._session.db = connection
        client.close()
    stalls = [c for c in commits if c > STALL_SECONDS]
    return {
        "steps_per_s": rounds * runs * 10 / wall,
        "commits": len(commits),
        "commit_ms_total": sum(commits) * 1000,
        "stalls": len(stalls),
        "stall_ms_total": sum(stalls) * 1000,
        "longest_commit_ms": max(commits) * 1000,
    }


def _run_child(tree: Path, rounds: int, runs: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(tree),
            "--rounds",
            str(rounds),
            "--runs",
            str(runs),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the benchmark process on {tree} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


METRICS = (
    ("commits over 5 ms, ms in all", "stall_ms_total"),
    ("commits over 5 ms", "stalls"),
    ("longest commit ms", "longest_commit_ms"),
    ("all commits, ms", "commit_ms_total"),
    ("steps/s (noisy)", "steps_per_s"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="W2 rounds a process (default 12)")
    parser.add_argument("--runs", type=int, default=200, help="runs a round (default 200)")
    parser.add_argument("--processes", type=int, default=3, help="processes a tree (default 3)")
    parser.add_argument("--baseline", metavar="REV", help="also measure REV, alternating")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.rounds, args.runs)))
        return

    def measure(trees: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        names = list(trees)
        for number in range(args.processes):
            for name in names if number % 2 == 0 else names[::-1]:
                samples[name].append(_run_child(trees[name], args.rounds, args.runs))
        return samples

    if args.baseline:
        with worktree(ROOT, args.baseline) as (path, commit):
            samples = measure({commit: path, "current": ROOT})
    else:
        samples = measure({"current": ROOT})
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for _, key in METRICS}
        for name, runs in samples.items()
    }
    if args.json:
        print(json.dumps({"samples": samples, "medians": medians}, indent=2))
        return
    print(
        f"W2 commits: {args.rounds} rounds of {args.runs} runs a process, median of "
        f"{args.processes} processes a tree"
    )
    names = list(medians)
    print(f"{'':34}" + "".join(f"{name:>14}" for name in names))
    for label, key in METRICS:
        print(f"{label:34}" + "".join(f"{medians[name][key]:>14.1f}" for name in names))


if __name__ == "__main__":
    main()
