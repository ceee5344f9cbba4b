"""Completion-rule benchmarks: how fast a decided race cancels its losers, and what a ruled map
costs per step compared with a plain one.

    python bench/completion.py           # about half a minute
    python bench/completion.py --quick   # small counts, same code paths
    python bench/completion.py --json

Workloads (in-process `Client.start` + `Client.execute`, a fresh SQLite store each):

- race: one `parallel` with `completion: {rule: first}`: one branch answers at once, N others
  run an async activity that would take 30 s; then a 300 ms sleep. Wall time of the run, and
  the latency from the winner's return to the last loser's attempt being cancelled (its
  CancelledError), median of the repeats.
- map: 10,000 no-op items, `concurrency: 50`: the default rule, then `tolerated_failures: 10%`
  with every 20th item failing (5%), then a quorum of 5,000 (the rest cancelled). Steps/s.

Figures are printed, never asserted; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is the script directory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interpreter import ApplicationError, Client, activity  # noqa: E402

_marks: dict[str, list[float]] = {"won": [], "cancelled": []}


@activity("fanbench.answer")
async def answer(value: Any) -> Any:
    _marks["won"].append(time.perf_counter())
    return value


@activity("fanbench.slow")
async def slow(value: Any) -> Any:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        _marks["cancelled"].append(time.perf_counter())
        raise
    return value


@activity("fanbench.item")
def item(value: Any) -> Any:
    if value % 20 == 19:
        raise ApplicationError("unlucky item", type="Unlucky", non_retryable=True)
    return value


def _race(losers: int) -> dict[str, Any]:
    branches = [
        {
            "states": {
                "win": {"type": "activity", "activity": "fanbench.answer", "input": 1, "end": True}
            }
        }
    ]
    branches += [
        {
            "states": {
                f"l{i}": {"type": "activity", "activity": "fanbench.slow", "input": i, "end": True}
            }
        }
        for i in range(losers)
    ]
    return {
        "dsl": "1.0",
        "name": "bench_race",
        "states": {
            "race": {
                "type": "parallel",
                "completion": {"rule": "first"},
                "branches": branches,
                "next": "pause",
            },
            # The run goes on after the race, so the losers are cancelled by the decision,
            # not by the end of the worker.
            "pause": {"type": "sleep", "duration": "300ms", "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def _map(items: int, completion: dict[str, Any] | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "type": "map",
        "items": f"{{{{ range({items}) | list }}}}",
        "concurrency": 50,
        "states": {
            "work": {
                "type": "activity",
                "activity": "fanbench.item",
                "input": "{{ item }}",
                "end": True,
            }
        },
        "next": "done",
    }
    if completion is not None:
        state["completion"] = completion
    else:  # the default rule fails at the first unlucky item: give it none
        state["states"]["work"]["input"] = "{{ (item // 20) * 20 }}"
    return {
        "dsl": "1.0",
        "name": "bench_map",
        "states": {"each": state, "done": {"type": "succeed"}},
    }


def _run(tmp: Path, name: str, workflow: dict[str, Any]) -> tuple[float, Any]:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(workflow))
    with Client(str(tmp / f"{name}.db")) as client:
        started = time.perf_counter()
        record = client.execute(client.start(path))
        elapsed = time.perf_counter() - started
        assert record.status == "completed", record.error
        steps = sum(1 for e in client.history(record.id) if e["type"] == "ActivityCompleted")
        steps += sum(1 for e in client.history(record.id) if e["type"] == "ActivityFailed")
    return elapsed, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    losers, repeats, items = (10, 1, 500) if args.quick else (100, 5, 10_000)
    report: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        walls, latencies = [], []
        for i in range(repeats + 1):
            _marks["won"].clear()
            _marks["cancelled"].clear()
            wall, _ = _run(tmp, f"race{i}", _race(losers))
            if i == 0:
                continue  # warm-up
            walls.append(wall)
            if len(_marks["cancelled"]) == losers:
                latencies.append(max(_marks["cancelled"]) - _marks["won"][0])
        report["race"] = {
            "losers": losers,
            "wall_s": round(statistics.median(walls), 4),
            "winner_to_last_loser_cancelled_ms": round(statistics.median(latencies) * 1000, 2)
            if latencies
            else None,
        }
        report["map"] = {}
        _run(tmp, "map_warm_up", _map(200, None))
        for label, completion in (
            ("default", None),
            ("tolerated_10pct", {"tolerated_failures": "10%"}),
            ("quorum_half", {"rule": "quorum", "min_successes": items // 2}),
        ):
            wall, steps = _run(tmp, f"map_{label}", _map(items, completion))
            report["map"][label] = {
                "items": items,
                "activity_steps": steps,
                "wall_s": round(wall, 3),
                "steps_per_s": round(steps / wall),
            }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    m = report["machine"]
    print(f"machine: {m['cpus']} CPUs, {m['cpu_model']}, load {m['loadavg_1m']:.2f}")
    race = report["race"]
    print(
        f"race: 1 winner + {race['losers']} losers: run {race['wall_s']} s, winner -> last "
        f"loser cancelled {race['winner_to_last_loser_cancelled_ms']} ms"
    )
    for label, row in report["map"].items():
        print(
            f"map {label}: {row['items']} items, {row['activity_steps']} steps in "
            f"{row['wall_s']} s = {row['steps_per_s']} steps/s"
        )


if __name__ == "__main__":
    main()
