"""What exit handlers and retry policies by error cost (issue 10, items 3 and 4).

    python bench/exits.py            # 30 measured runs of each shape, alternating
    python bench/exits.py --quick    # smoke: 5 runs each

Shapes, each a run of 10 no-op steps (bench/workflows/noop10.yaml) started and executed in
process on a fresh SQLite store (WAL, synchronous=NORMAL), measured alternately in the same
minutes so the machine's drift hits them alike:

- plain:   the 10 steps;
- handler: the same with `on_exit.always` running one more no-op step (what a handler adds:
           ExitHandlerStarted, the step, ExitHandlerCompleted; one more step's commits);
- and, in process without a store, Retry.decide for a failure of the third of three policies
  whose first has a `when` predicate (the decision a failed attempt adds).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # bench/ is the script directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from interpreter import Client, load_activity_modules  # noqa: E402
from interpreter.core.definition import Definition  # noqa: E402

HANDLER = """
on_exit:
  always:
    states:
      notify: {type: activity, activity: bench.noop, input: {i: 0}, end: true}
"""

RETRIES = {
    "dsl": "1.0",
    "name": "bench_retries",
    "states": {
        "s": {
            "type": "activity",
            "activity": "bench.noop",
            "retry": [
                {"errors": ["HttpError"], "when": "{{ error.details.status == 202 }}"},
                {"errors": ["Busy", "Slow"], "max_attempts": 5},
                {"errors": ["HttpError", "*"], "max_attempts": 3},
            ],
            "end": True,
        }
    },
}


def _once(client: Client, workflow: Path) -> float:
    started = time.perf_counter()
    run_id = client.start(workflow, None)
    record = client.execute(run_id)
    elapsed = time.perf_counter() - started
    assert record.status == "completed", record.error
    return elapsed


def _decide_us(rounds: int) -> float:
    defn = Definition.from_data(RETRIES)
    state = defn.workflow.states["s"]
    retry = defn.retry_for(state.retry)  # type: ignore[union-attr]
    # The first policy's `when` is evaluated (false), the second does not match, "*" decides.
    err = {"type": "HttpError", "message": "x", "details": {"status": 500}}
    started = time.perf_counter()
    for _ in range(rounds):
        retry.decide(err, [0, 0, 0], 1)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs of each shape")
    args = parser.parse_args()
    runs = 5 if args.quick else 30
    load_activity_modules([str(BENCH / "activities.py")])
    with tempfile.TemporaryDirectory() as tmp:
        plain = BENCH / "workflows" / "noop10.yaml"
        handler = Path(tmp) / "noop10_exit.yaml"
        handler.write_text(plain.read_text() + HANDLER, encoding="utf-8")
        times: dict[str, list[float]] = {"plain": [], "handler": []}
        with Client(str(Path(tmp) / "store.db")) as client:
            for _ in range(3):  # warm-up: imports, caches, the definitions
                _once(client, plain)
                _once(client, handler)
            for _ in range(runs):
                times["plain"].append(_once(client, plain))
                times["handler"].append(_once(client, handler))
    info = machine()
    print(
        f"machine: {info['cpu_model']}, {info['cpus']} cpus, load {info['loadavg_1m']:.1f}, "
        f"sqlite {info['sqlite']}"
    )
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    for name, value in medians.items():
        print(f"{name:8} median {value:6.2f} ms per 10-step run ({runs} runs)")
    print(f"an always handler of one step adds {medians['handler'] - medians['plain']:.2f} ms")
    print(f"Retry.decide, a when evaluated then the last policy: {_decide_us(20000):.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
