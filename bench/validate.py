"""Benchmark: validate a generated 1,000-state workflow N times and print the median.

    .venv/bin/python bench/validate.py [--states 1000] [--runs 15]

Target: median under 0.5 s on a laptop. The figure covers the whole `validate_text`: loading
(positions of every node), the JSON Schema check, building the model and lint.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsl import validate_text

TARGET_SECONDS = 0.5


def generate(states: int) -> str:
    """A linear chain of activities with retries, templates and a catch, ending in succeed."""
    lines = [
        'dsl: "1.0"',
        "name: bench",
        "input_schema:",
        "  type: object",
        "  properties:",
        "    id: {type: string}",
        "defaults:",
        "  retry: {max_attempts: 3, initial_interval: 1s, backoff: 2}",
        "  timeout: {start_to_close: 30s}",
        "states:",
    ]
    for i in range(states):
        lines += [
            f"  step_{i}:",
            "    type: activity",
            "    activity: http",
            "    input:",
            '      url: "https://example.com/items/{{ input.id }}"',
            "      method: POST",
            f'      body: {{index: {i}, previous: "{{{{ vars.r{max(i - 1, 0)} }}}}"}}',
            f"    result: r{i}",
            "    retry: {max_attempts: 5, initial_interval: 500ms}",
            "    catch:",
            "      - errors: [HttpError]",
            "        next: failed",
            f"    next: step_{i + 1}" if i + 1 < states else "    next: done",
        ]
    lines += [
        "  done:",
        "    type: succeed",
        '    output: "{{ vars.r0 }}"',
        "  failed:",
        "    type: fail",
        "    error: StepFailed",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--states", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    text = generate(args.states)
    first = validate_text(text, "bench.yaml")  # warm-up: compiles the validator, imports lint
    if not first.ok:
        for d in first.diagnostics[:10]:
            print(f"{d.line}:{d.column} {d.code} {d.message}", file=sys.stderr)
        print("the generated workflow is not valid", file=sys.stderr)
        return 1
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        validate_text(text, "bench.yaml")
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    print(
        f"validate: {args.states} states, {len(text.splitlines())} lines, {len(text) / 1024:.0f} KiB; "
        f"median {median:.3f} s over {args.runs} runs (min {min(timings):.3f}, max {max(timings):.3f}); "
        f"target < {TARGET_SECONDS} s: {'ok' if median < TARGET_SECONDS else 'MISSED'}"
    )
    print("stages (median): " + ", ".join(f"{k} {v:.3f} s" for k, v in _stages(text, args.runs)))
    return 0


def _stages(text: str, runs: int) -> list[tuple[str, float]]:
    """Where the time goes: loading, schema + model, lint (when dsl.lint exists)."""
    from dsl.loader import load_text
    from dsl.schema_check import check_schema
    from dsl.validate import _lint_function, _strict_model

    document = load_text(text, "bench.yaml").document
    assert document is not None
    workflow = _strict_model(document.data)
    assert workflow is not None
    stages: list[tuple[str, Callable[[], object]]] = [
        ("load", lambda: load_text(text, "bench.yaml")),
        ("model (fast path)", lambda: _strict_model(document.data)),
        ("jsonschema (files with errors only)", lambda: check_schema(document)),
    ]
    lint = _lint_function()
    if lint is not None:
        stages.append(("lint", lambda: lint(workflow, document)))
    out = []
    for name, function in stages:
        times = []
        for _ in range(max(3, runs // 3)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        out.append((name, statistics.median(times)))
    return out


if __name__ == "__main__":
    sys.exit(main())
