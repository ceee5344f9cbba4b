"""Benchmark: `validate` of generated workflows of 1k, 5k and 20k states, two shapes.

    .venv/bin/python bench/validate.py [--sizes 1000,5000,20000] [--shapes chain,branchy]
                                       [--runs 5] [--baseline REV] [--stages]

Each run is a fresh process that imports dsl, then times one `validate_file` (what
`tideflow validate FILE` does after start-up): template and validator caches start cold, as
they do for a user. The median and min over the runs are printed.

Shapes: `chain` is a line of activities with retries and templates, each `next` the following
one (no catch: every state finishes only through all the states after it); `branchy` repeats
choice -> two activities -> join, with catches, a parallel state every 50 states and a map.

`--baseline REV` checks REV out into a temporary `git worktree`, times it on the same files
in the same run, prints old, new and old/new, and says whether both found the same
diagnostics. `--stages` adds, for this checkout, where the time goes (load, model, lint,
the JSON Schema pass that only files with errors pay).

Target: 5,000 states in 1 s or less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_STATES, TARGET_SECONDS = 5000, 1.0

_HEADER = [
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


def _activity(
    name: str, index: int, next_name: str, *, reads: int | None = None, catch: bool = False
) -> list[str]:
    """An activity that stores its result as r{index} and reads r{reads} (default: the one
    before it)."""
    reads = max(index - 1, 0) if reads is None else reads
    # Compact (about 230 bytes and 22 values a state): 20,000 states stay under the loader's
    # caps of 5 MB and 500,000 values.
    lines = [
        f"  {name}:",
        "    type: activity",
        "    activity: http",
        f'    input: {{url: "https://example.com/{{{{ input.id }}}}/{index}", '
        f'prev: "{{{{ vars.r{reads} }}}}"}}',
        f"    result: r{index}",
        "    retry: {max_attempts: 5, initial_interval: 500ms}",
    ]
    if catch:
        lines.append("    catch: [{errors: [HttpError], next: failed}]")
    return [*lines, f"    next: {next_name}"]


_DONE = ["  done:", "    type: succeed", '    output: "{{ vars.r1 }}"']
_FAILED = ["  failed:", "    type: fail", "    error: StepFailed"]


def chain(states: int) -> str:
    lines = list(_HEADER)
    for i in range(states):
        lines += _activity(f"step_{i}", i, f"step_{i + 1}" if i + 1 < states else "done")
    return "\n".join([*lines, *_DONE]) + "\n"


def branchy(states: int) -> str:
    """Groups of four states (choice, two activities, join); every 50th group is a parallel
    state and every 50th (offset) a map, so there are many scopes too."""
    lines = list(_HEADER)
    groups = max(1, states // 4)
    for g in range(groups):
        after = f"choose_{g + 1}" if g + 1 < groups else "done"
        before = 4 * g - 1 if g else 3  # set by the previous (or, first, its own) join
        lines += [
            f"  choose_{g}:",
            "    type: choice",
            "    choices:",
            f'      - when: "{{{{ vars.r{before} != {g} }}}}"',
            f"        next: left_{g}",
            f"    default: right_{g}",
        ]
        lines += _activity(f"left_{g}", 4 * g + 1, f"join_{g}", reads=before, catch=True)
        lines += _activity(f"right_{g}", 4 * g + 2, f"join_{g}", reads=before, catch=True)
        if g % 50 == 10:
            lines += [
                f"  join_{g}:",
                "    type: parallel",
                "    branches:",
                *[
                    line
                    for b in range(2)
                    for line in (
                        "      - states:",
                        f"          only_{g}_{b}: {{type: activity, activity: http, end: true}}",
                    )
                ],
                f"    result: r{4 * g + 3}",
                f"    next: {after}",
            ]
        elif g % 50 == 30:
            lines += [
                f"  join_{g}:",
                "    type: map",
                "    items: \"{{ input['items'] }}\"",
                "    states:",
                f"      each_{g}: {{type: activity, activity: http, end: true}}",
                f"    result: r{4 * g + 3}",
                f"    next: {after}",
            ]
        else:
            lines += _activity(f"join_{g}", 4 * g + 3, after, reads=4 * g + 1)
    return "\n".join([*lines, *_DONE, *_FAILED]) + "\n"


SHAPES: dict[str, Callable[[int], str]] = {"chain": chain, "branchy": branchy}

# Runs in a fresh interpreter with the checkout to time first on sys.path: one validation,
# timed after the imports. Prints the seconds and a digest of the findings.
_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import dsl
assert dsl.__file__.startswith(sys.argv[1]), (dsl.__file__, sys.argv[1])
from dsl import validate_file
start, cpu = time.perf_counter(), time.process_time()
result = validate_file(sys.argv[2])
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
found = [(d.code, d.line, d.column) for d in result.diagnostics]
print(json.dumps({"seconds": elapsed, "cpu": cpu, "found": found}))
"""


def _time(root: Path, path: Path, runs: int) -> tuple[list[float], list[float], list[object]]:
    """Wall and CPU seconds of each run, and the findings."""
    timings: list[float] = []
    cpu: list[float] = []
    found: list[object] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _TIMER, str(root), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"validation failed under {root}:\n{done.stderr[-2000:]}")
        out = json.loads(done.stdout)
        timings.append(out["seconds"])
        cpu.append(out["cpu"])
        found = out["found"]
    return timings, cpu, found


class Baseline:
    """REV checked out into a temporary git worktree, removed again on exit."""

    def __init__(self, rev: str) -> None:
        self.rev = rev
        self.parent = tempfile.TemporaryDirectory(prefix="tideflow-baseline-")
        self.path = Path(self.parent.name) / "tree"

    def __enter__(self) -> Path:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(self.path), self.rev],
            check=True,
            capture_output=True,
        )
        return self.path

    def __exit__(self, *exc: object) -> None:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.path)],
            check=False,
            capture_output=True,
        )
        self.parent.cleanup()


def _stages(path: Path) -> str:
    """Where the CPU time goes in this checkout: a fresh process (cold caches) runs
    `_print_stages`."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--stages-of", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.rstrip() if done.returncode == 0 else done.stderr[-2000:]


def _print_stages(path: Path) -> None:
    """CPU seconds of loading, the strict model, each lint rule over 10 ms, and the jsonschema
    pass (which only files with errors pay)."""
    sys.path.insert(0, str(ROOT))
    from dsl.lint.context import LintContext
    from dsl.lint.rules import RULES
    from dsl.loader import load_text
    from dsl.schema_check import check_schema
    from dsl.validate import _strict_model

    def cpu(function: Callable[[], object]) -> tuple[float, object]:
        start = time.process_time()
        result = function()
        return time.process_time() - start, result

    text = path.read_text(encoding="utf-8")
    load, loaded = cpu(lambda: load_text(text, "bench.yaml"))
    document = getattr(loaded, "document", None)
    assert document is not None
    model, workflow = cpu(lambda: _strict_model(document.data))
    assert workflow is not None
    context = LintContext.create(workflow, document, None, ())  # type: ignore[arg-type]
    rules: list[str] = []
    total = 0.0
    for rule in RULES:
        spent, _ = cpu(lambda check=rule.check: list(check(context)))  # type: ignore[misc]
        total += spent
        if spent > 0.010:
            rules.append(
                f"{rule.check.__module__.removeprefix('dsl.lint.')}.{rule.check.__name__} {spent:.3f}"
            )
    schema, _ = cpu(lambda: check_schema(document))
    print(
        f"           cpu: load {load:.3f} s, model {model:.3f} s, lint {total:.3f} s, "
        f"jsonschema (files with errors only) {schema:.3f} s"
    )
    print(f"           lint rules over 10 ms: {', '.join(rules) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,5000,20000", help="state counts, comma-separated")
    parser.add_argument("--shapes", default="chain,branchy", help=", ".join(SHAPES))
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per measurement")
    parser.add_argument("--baseline", metavar="REV", help="also time this git revision")
    parser.add_argument("--stages", action="store_true", help="print where the time goes")
    parser.add_argument("--stages-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stages_of is not None:
        _print_stages(args.stages_of)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    with tempfile.TemporaryDirectory(prefix="tideflow-bench-") as scratch:
        if args.baseline:
            with Baseline(args.baseline) as old_root:
                return _run(Path(scratch), sizes, shapes, args, old_root)
        return _run(Path(scratch), sizes, shapes, args, None)


def _figure(wall: list[float], cpu: list[float]) -> str:
    return f"{statistics.median(wall):7.3f} s ({min(wall):.3f}) cpu {statistics.median(cpu):6.3f}"


def _run(
    scratch: Path, sizes: list[int], shapes: list[str], args: argparse.Namespace, old: Path | None
) -> int:
    print(
        f"validate: wall median (min) and CPU median of {args.runs} fresh processes; target: "
        f"{TARGET_STATES:,} states <= {TARGET_SECONDS:.1f} s"
    )
    if old is not None:
        print(
            f"{'shape':8} {'states':>6}  {'old (' + args.baseline + ')':>31}  "
            f"{'new':>31}  old/new (cpu)  same findings"
        )
    for shape in shapes:
        for size in sizes:
            text = SHAPES[shape](size)
            path = scratch / f"{shape}_{size}.yaml"
            path.write_text(text, encoding="utf-8")
            if len(text.encode("utf-8")) > 5 * 1024 * 1024:
                print(f"{shape:8} {size:>6}: skipped, the file is over the 5 MB cap (TF007)")
                continue
            new, new_cpu, found = _time(ROOT, path, args.runs)
            if found:
                print(f"  note: {shape} {size}: {len(found)} findings (expected none)")
            if old is not None:
                before, old_cpu, old_found = _time(old, path, args.runs)
                ratio = statistics.median(before) / statistics.median(new)
                cpu_ratio = statistics.median(old_cpu) / statistics.median(new_cpu)
                same = "yes" if old_found == found else "NO"
                print(
                    f"{shape:8} {size:>6}  {_figure(before, old_cpu):>31}  "
                    f"{_figure(new, new_cpu):>31}  {ratio:5.1f}x ({cpu_ratio:.1f}x)  {same}"
                )
            else:
                lines = text.count("\n")
                print(f"{shape:8} {size:>6} states, {lines:>7} lines: {_figure(new, new_cpu)}")
            if args.stages:
                print(_stages(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
