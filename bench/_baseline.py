"""`bench/engine.py --baseline REV`: the same workloads on another revision and on this tree,
alternately, in the same minutes, so a change is judged against noise measured beside it.

The benchmark code is this tree's for both sides; only the `interpreter` package under test
comes from a temporary `git worktree` of REV (engine.TREE_ENV tells the children which tree
to import, and they check that they did)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# What each workload is judged by: (label, path into its result, "lower" | "higher" is better).
Headline = tuple[str, tuple[str, ...], str]
HEADLINES: dict[str, list[Headline]] = {
    "w1": [
        ("10-step run, median ms", ("noop10_ms", "median"), "lower"),
        ("CPU per step ms", ("cpu_per_step_ms",), "lower"),
    ],
    "w2pg": [
        ("steps/s", ("steps_per_s_median",), "higher"),
        ("worker CPU us/step", ("worker_cpu_us_per_step",), "lower"),
        ("round trips/step", ("round_trips_per_step",), "lower"),
    ],
    "w3": [("fan-out + join, median s", ("wall_s", "median"), "lower")],
    "sleepers": [
        ("take up and release s", ("pickup_s",), "lower"),
        ("tideflow list s", ("cli_list_s",), "lower"),
    ],
    "w4": [("kill -> done, median s", ("recovery_s_from_restart", "median"), "lower")],
}


def headlines(name: str, result: dict[str, Any]) -> list[Headline]:
    if name != "w2":
        return HEADLINES[name]
    sizes = sorted((key for key in result if key.isdigit()), key=int)
    out: list[Headline] = []
    for size in sizes:
        out.append((f"{size} runs, steps/s", (size, "steps_per_s_median"), "higher"))
        if "worker_cpu_us_per_step" in result[size]:  # not in results of older scripts
            out.append(
                (f"{size} runs, worker CPU us/step", (size, "worker_cpu_us_per_step"), "lower")
            )
        out.append((f"{size} runs, peak RSS MB", (size, "peak_rss_mb"), "lower"))
    return out


def _value(result: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = result
    for key in path:
        value = value[key]
    return float(value)


class BaselineError(Exception):
    """The baseline revision cannot be checked out."""


@contextmanager
def worktree(root: Path, rev: str) -> Iterator[tuple[Path, str]]:
    """A temporary detached worktree of `rev` (removed afterwards) and its short commit id."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BaselineError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    commit = git("rev-parse", "--verify", "--short", f"{rev}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="tideflow-baseline-"))
    path = parent / "tree"
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path, commit
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True
        )
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


def side_by_side(
    run_one: Callable[[str], dict[str, Any]],
    names: list[str],
    trees: dict[str, Path],
    rounds: int,
    tree_env: str,
) -> dict[str, Any]:
    """Each workload `rounds` times on each tree, alternating (ABBA: the side that goes first
    changes every round, so a drift of the machine's load falls on both)."""
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {n: {s: [] for s in trees} for n in names}
    sides = list(trees)
    saved = os.environ.get(tree_env)
    try:
        for number in range(rounds):
            order = sides if number % 2 == 0 else sides[::-1]
            for name in names:
                for side in order:
                    os.environ[tree_env] = str(trees[side])
                    samples[name][side].append(run_one(name))
    finally:
        if saved is None:
            os.environ.pop(tree_env, None)
        else:
            os.environ[tree_env] = saved
    rows = []
    for name in names:
        old_runs, new_runs = samples[name]["baseline"], samples[name]["current"]
        for label, path, better in headlines(name, old_runs[0]):
            old = statistics.median(_value(r, path) for r in old_runs)
            new = statistics.median(_value(r, path) for r in new_runs)
            ratio = new / old if old else float("nan")
            gain = ratio if better == "higher" else (1 / ratio if ratio else float("nan"))
            rows.append(
                {
                    "workload": name,
                    "metric": label,
                    "better": better,
                    "baseline_median": old,
                    "current_median": new,
                    "new_over_old": ratio,
                    "current_better_by": gain,
                    "baseline_values": [_value(r, path) for r in old_runs],
                    "current_values": [_value(r, path) for r in new_runs],
                }
            )
    return {"rounds": rounds, "rows": rows}


def report(result: dict[str, Any], baseline: str) -> str:
    lines = [
        f"side by side: baseline {baseline} vs the current tree, {result['rounds']} alternating "
        "rounds, a fresh child process each",
        "new/old = current median / baseline median; 'better by' > 1: the current tree is better",
    ]
    header = f"{'workload':<10}{'metric':<28}{'old median':>12}{'new median':>12}{'new/old':>9}{'better by':>11}"
    lines += [header, "-" * len(header)]
    for r in result["rows"]:
        lines.append(
            f"{r['workload']:<10}{r['metric']:<28}{r['baseline_median']:>12.4g}"
            f"{r['current_median']:>12.4g}{r['new_over_old']:>9.3f}{r['current_better_by']:>10.2f}x"
        )
    return "\n".join(lines)
