"""Benchmark: start-up wall time of `tideflow --help`, `tideflow status ID` and
`tideflow validate FILE`, each in fresh processes.

    .venv/bin/python bench/startup.py [--runs 20] [--baseline REV]

Each command is run `--runs` times as `python -m interpreter ...` with the checkout first on
the path; the median and the min wall time are printed (the min is the figure a quiet machine
gives). `status` reads a run from a throw-away SQLite store made by the same checkout's
`tideflow start`; `validate` checks samples/order.yaml. Bytecode caches are written and warmed
first (also when PYTHONDONTWRITEBYTECODE is set), as an installed tideflow has them.

`--baseline REV` checks REV out into a temporary `git worktree` and times its commands in the
same run, interleaved with this checkout's, printing old, new and old/new.

Target: every command within 150 ms on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import ROOT, Baseline

TARGET_SECONDS = 0.150
SAMPLE = Path("samples") / "order.yaml"
STARTED = Path("samples") / "greeting.yaml"


def _command(root: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    # Bytecode is written (and then read) even where the environment says not to: an installed
    # tideflow has its .pyc files, and without them every run would time compiling ~12,000
    # lines of source, not starting up.
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return [sys.executable, "-m", "interpreter", *args], env


def _run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command, env = _command(root, *args)
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed under {root}:\n{done.stderr[-2000:]}")
    return done


def _commands(root: Path, db: Path) -> dict[str, list[str]]:
    """The three commands for `root`, with a store `db` holding one run for `status`."""
    run_id = _run(
        root, "start", str(STARTED), "--input", '{"name": "bench"}', "--db", str(db)
    ).stdout.strip()
    return {
        "--help": ["--help"],
        "status ID": ["status", run_id, "--db", str(db)],
        "validate FILE": ["validate", str(SAMPLE)],
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(root: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of the command."""
    command, env = _command(root, *args)
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, check=False)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed under {root}:\n{done.stderr[-2000:]!r}")
    return elapsed, cpu


def _show(runs: list[tuple[float, float]]) -> str:
    wall = [w for w, _ in runs]
    cpu = statistics.median(c for _, c in runs)
    return (
        f"{statistics.median(wall) * 1000:4.0f} ms (min {min(wall) * 1000:3.0f}, "
        f"cpu {cpu * 1000:3.0f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per command")
    parser.add_argument("--baseline", metavar="REV", help="also time this git revision")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tideflow-startup-") as scratch:
        if args.baseline:
            with Baseline(args.baseline) as old_root:
                return _measure(Path(scratch), args, old_root)
        return _measure(Path(scratch), args, None)


def _measure(scratch: Path, args: argparse.Namespace, old: Path | None) -> int:
    roots = {"new": ROOT} if old is None else {"old": old, "new": ROOT}
    commands = {name: _commands(root, scratch / f"{name}.db") for name, root in roots.items()}
    for name, root in roots.items():  # warm the bytecode caches: start-up, not compiling
        for command in commands[name].values():
            _run(root, *command, check=False)
    timings: dict[str, dict[str, list[tuple[float, float]]]] = {
        n: {c: [] for c in commands[n]} for n in roots
    }
    for _ in range(args.runs):
        for label in commands["new"]:
            for name, root in roots.items():  # interleaved: load changes hit both alike
                timings[name][label].append(_once(root, commands[name][label]))
    print(
        f"start-up: wall median (min, CPU median) of {args.runs} fresh processes; "
        f"target <= {TARGET_SECONDS * 1000:.0f} ms"
    )
    for label in commands["new"]:
        new = timings["new"][label]
        if old is None:
            print(f"  tideflow {label:14} {_show(new)}")
            continue
        before = timings["old"][label]
        ratio = statistics.median(w for w, _ in before) / statistics.median(w for w, _ in new)
        print(
            f"  tideflow {label:14} old ({args.baseline}) {_show(before)}   new {_show(new)}   "
            f"old/new {ratio:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
