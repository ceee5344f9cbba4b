"""bench/peers.py --fresh keeps going when a peer script fails: fake peer scripts (no peer is
installed) that time out or exit 1 are recorded as failures, the records measured before keep,
and nothing a script started is left running."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_peers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "bench" / "peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


peers = _load_peers()

# Emits one record as common.emit does, then leaves a "server" behind (a grandchild in the same
# process group, as bench_temporal.py's Temporal server is) and writes its pid down.
EMIT_AND_SERVE = """
import json, os, subprocess, sys, time
workload = sys.argv[1]
os.makedirs("results", exist_ok=True)
with open("results/fake.jsonl", "a") as f:
    f.write(json.dumps({"peer": "fake", "workload": workload, "ts": time.time(), "v": 1}) + "\\n")
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(f"server-{workload}.pid", "w") as f:
    f.write(f"{server.pid} {os.getpgid(0)}")
if workload == "slow":
    time.sleep(120)  # past the time-out: the script is stopped with its server
"""
EXIT_1 = """
import sys
print("boom: the peer could not start", file=sys.stderr)
sys.exit(1)
"""
MISSING_PACKAGE = "import dbos_not_installed_here\n"


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that still run (a zombie waiting for its reaper does not)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


@pytest.fixture
def fake_scripts(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name, text in (
        ("emit.py", EMIT_AND_SERVE),
        ("exit1.py", EXIT_1),
        ("missing.py", MISSING_PACKAGE),
    ):
        (work / name).write_text(textwrap.dedent(text))
    return work


def test_failures_are_recorded_records_kept_and_process_groups_stopped(
    fake_scripts: Path, tmp_path: Path
) -> None:
    scripts = [
        peers.Script(["emit.py", "fast"], "fake", "fast"),
        peers.Script(["emit.py", "slow"], "fake", "slow"),
        peers.Script(["exit1.py"], "fake", "broken"),
        peers.Script(["missing.py"], "fake", "missing"),
    ]
    results = peers.ResultsFile(tmp_path / "kept" / "fresh.jsonl", fake_scripts / "results")

    failures = peers.run_scripts(sys.executable, scripts, fake_scripts, results, timeout=3.0)

    by_workload = {f["workload"]: f["failed"] for f in failures}
    assert set(by_workload) == {"slow", "broken", "missing"}
    assert by_workload["slow"].startswith("timed out after 3 s")
    assert "exit status 1" in by_workload["broken"] and "boom" in by_workload["broken"]
    assert "dbos_not_installed_here" in by_workload["missing"]

    # The records emitted before the failure survive, in the kept file, and read back as
    # figures; the failure records are listed there but are no figures.
    lines = [json.loads(ln) for ln in results.path.read_text().splitlines()]
    assert [(r["workload"], "failed" in r) for r in lines] == [
        ("fast", False),
        ("slow", False),
        ("slow", True),
        ("broken", True),
        ("missing", True),
    ]
    assert set(peers.load_records([results.path])) == {("fake", "fast"), ("fake", "slow")}

    # Every "server" the scripts left behind was stopped with its script's process group.
    # The scripts ran in groups of their own, not in the test's.
    for workload in ("fast", "slow"):
        server, pgid = map(int, (fake_scripts / f"server-{workload}.pid").read_text().split())
        assert pgid != os.getpgid(0)
        assert _live_members(pgid) == [], f"the {workload} script's group (server {server}) runs"


def test_run_fresh_keeps_the_results_file_when_the_temporary_directory_goes(
    tmp_path: Path,
) -> None:
    peers_dir = tmp_path / "peers"
    peers_dir.mkdir()
    for name in ("common.py", "bench_temporal.py", "temporal_app.py"):
        (peers_dir / name).write_text("")
    (peers_dir / "bench_dbos.py").write_text(textwrap.dedent(EMIT_AND_SERVE))
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    kept = tmp_path / "kept.jsonl"

    fresh, failures = peers.run_fresh(
        peers_dir,
        tmp_path / "venv",
        [
            peers.Script(["bench_dbos.py", "fast"], "fake", "fast"),
            peers.Script(["bench_temporal.py", "w1"], "fake", "empty"),  # exits 0, emits nothing
        ],
        kept,
        timeout=30.0,
    )

    assert set(fresh) == {("fake", "fast")}
    assert [(f["workload"], f["failed"]) for f in failures] == [
        ("empty", "exited 0 but wrote no record")
    ]
    assert kept.exists()


def test_dbos_gets_a_database_of_its_own_on_the_given_server() -> None:
    url = peers.dbos_database_url("postgresql://someone@db.example:5433/bench?sslmode=disable")
    assert url == "postgresql+psycopg://someone@db.example:5433/bench_dbos_peers?sslmode=disable"


def test_without_a_pg_url_dbos_postgres_is_not_in_the_fresh_scripts() -> None:
    assert {s.peer for s in peers.fresh_scripts(True, None)} == {"dbos-sqlite", "temporal-file"}
    with_pg = peers.fresh_scripts(True, "postgresql+psycopg://u@h/x_dbos_peers")
    assert [s.workload for s in with_pg if s.peer == "dbos-postgres"] == ["w1", "w2", "w3", "w4"]
