"""Update round trip: `Client.update` call -> the worker applies it -> the value is returned.

    .venv/bin/python bench/updates.py                        # SQLite
    .venv/bin/python bench/updates.py --pg-url postgresql://USER@HOST:PORT/DB   # and PostgreSQL
    .venv/bin/python bench/updates.py --count 100 --json     # fewer calls, machine-readable

For each store (a fresh SQLite file in a temporary directory; a fresh schema on PostgreSQL,
dropped afterwards): one run of samples/entity_greeting.yaml and one `tideflow worker`
subprocess on that store (its default poll: 50 ms on SQLite; on PostgreSQL woken by
LISTEN/NOTIFY). The run waits for its `finish` update, so the worker has released it: each
update is stored, the run is claimed again, the update decided by the core and committed with
its step, and the caller (this process, polling the update's row) reads the value. Each call
alternates the language (fr/de), with a fresh update id; --warmup calls first, then --count
measured ones back to back ("applied": each call lands just after the worker's previous step,
i.e. at the start of its poll sleep on SQLite, the worst case), then --count more after a
random pause of 0-100 ms each ("applied_spaced": callers that arrive at random moments).
Reported: median, p90, p99 and max wall time per call, and a rejected update (validator false)
for comparison. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine  # noqa: E402
from _procs import start_group, stop_group  # noqa: E402

ENTITY = ROOT / "samples" / "entity_greeting.yaml"


@contextmanager
def fresh_store_url(kind: str, pg_url: str | None) -> Iterator[str]:
    if kind == "postgres":
        from scale import pg_schema  # the same fresh-schema helper as the scale benchmark

        assert pg_url is not None
        with pg_schema(pg_url) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="tideflow-updates-") as tmp:
            yield str(Path(tmp) / "updates.db")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(times: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times]
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(_percentile(ms, 0.90), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "calls": len(ms),
    }


def measure(kind: str, pg_url: str | None, count: int, warmup: int) -> dict[str, Any]:
    from interpreter import Client
    from interpreter.errors import UpdateRejected

    with fresh_store_url(kind, pg_url) as url, Client(url) as client:
        run_id = client.start(ENTITY, {"name": "Ada"}, run_id="bench-entity")
        worker = start_group(
            [sys.executable, "-m", "interpreter", "worker", "--db", url],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            client.update(run_id, "set_language", {"language": "es"}, timeout=60)  # worker up
            applied: list[float] = []
            spaced: list[float] = []
            pauses = random.Random(7)
            for i in range(warmup + 2 * count):
                language = "fr" if i % 2 else "de"
                if i >= warmup + count:  # arrivals at random moments, not in lockstep
                    time.sleep(pauses.uniform(0.0, 0.1))
                began = time.perf_counter()
                client.update(run_id, "set_language", {"language": language}, timeout=60)
                if i >= warmup:
                    took = time.perf_counter() - began
                    (applied if i < warmup + count else spaced).append(took)
            rejected: list[float] = []
            for i in range(warmup + max(10, count // 5)):
                began = time.perf_counter()
                with suppress(UpdateRejected):
                    client.update(run_id, "set_language", {"language": "xx"}, timeout=60)
                if i >= warmup:
                    rejected.append(time.perf_counter() - began)
            changes = client.query(run_id, "status")["changes"]
        finally:
            stop_group(worker)
    assert changes == 1 + warmup + 2 * count, changes
    return {
        "store": kind,
        "applied": _summary(applied),
        "applied_spaced": _summary(spaced),
        "rejected": _summary(rejected),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", help="also measure on this PostgreSQL database")
    parser.add_argument("--count", type=int, default=500, help="measured calls per store")
    parser.add_argument("--warmup", type=int, default=20, help="calls before measuring")
    parser.add_argument("--json", action="store_true", help="JSON instead of the table")
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgres"] if args.pg_url else [])
    results = [measure(kind, args.pg_url, args.count, args.warmup) for kind in kinds]
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=1))
        return 0
    print(f"{'store':<10} {'outcome':<15} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9} calls")
    for result in results:
        for outcome in ("applied", "applied_spaced", "rejected"):
            s = result[outcome]
            print(
                f"{result['store']:<10} {outcome:<15} {s['median_ms']:>7.2f}ms "
                f"{s['p90_ms']:>7.2f}ms {s['p99_ms']:>7.2f}ms {s['max_ms']:>7.2f}ms {s['calls']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
