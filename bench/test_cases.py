"""`tideflow test` speed: run the sample test cases (samples/tests/) repeated up to N cases
(default 200) in one process, on virtual time, and print cases/s. Not a timed test: the figure
goes in docs/benchmarks.md ("2026-12-02: tideflow test").

    .venv/bin/python bench/test_cases.py            # 200 cases
    .venv/bin/python bench/test_cases.py --cases 50 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from dsl.testfile import find_test_files, load_test_file
    from interpreter.activities import load_activity_modules
    from interpreter.testing import run_case

    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_activity_modules([str(ROOT / "samples" / "activities.py")])
    pairs = []
    for path in find_test_files([ROOT / "samples" / "tests"]):
        tests, diags = load_test_file(path)
        assert tests is not None, diags
        pairs.extend((tests, case) for case in tests.model.cases)
    chosen = [pairs[i % len(pairs)] for i in range(args.cases)]
    began, cpu = time.perf_counter(), time.process_time()
    failed = sum(not run_case(tests, case).ok for tests, case in chosen)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    result = {
        "cases": len(chosen),
        "distinct_cases": len(pairs),
        "failed": failed,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cases_per_s": round(len(chosen) / wall, 1),
    }
    print(
        json.dumps(result) if args.json else "\n".join(f"{k:>15}: {v}" for k, v in result.items())
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
