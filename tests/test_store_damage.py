"""A damaged SQLite store: a corrupt page, or a -wal file deleted under a live worker. Every
command says the store is damaged and how to check and recover it (exit 2, no traceback), and a
worker stops instead of retrying for ever or writing into a file nobody else reads."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli
from run_helpers import (
    TEST_ACTIVITIES,
    WORKFLOWS,
    assert_clean,
    cli_popen,
    finish,
    one_json,
    wait_for,
)

GREET = WORKFLOWS / "greet_twice.yaml"
SLOW = WORKFLOWS / "slow_steps.yaml"
ACT = ("--activities", str(TEST_ACTIVITIES))


def _store_with_runs(path: Path, runs: int = 3) -> list[str]:
    ids = []
    for index in range(runs):
        proc = run_cli(
            "run", str(GREET), "--input", f'{{"name": "n{index}"}}', *ACT, "--db", str(path)
        )
        assert_clean(proc, 0)
        ids.append(one_json(run_cli("list", "--db", str(path), "--json"))[index]["run_id"])
    return ids


def _wreck_page_of(path: Path, table: str) -> None:
    """Checkpoint the WAL into the file, then overwrite `table`'s root page with 0xFF."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as raw:
        raw.seek((page - 1) * size)
        raw.write(b"\xff" * size)


def _assert_damaged(proc: subprocess.CompletedProcess[str], path: Path) -> None:
    assert_clean(proc, 2)
    err = proc.stderr
    assert "damaged" in err, err
    assert "integrity_check" in err, err
    assert str(path) in err, err


@pytest.mark.parametrize("table", ["runs", "events"])
@pytest.mark.parametrize(
    "command",
    [("list",), ("status", "RUN"), ("history", "RUN"), ("signal", "RUN", "go"), ("cancel", "RUN")],
    ids=lambda c: c[0],
)
def test_a_corrupt_page_is_a_clear_store_error(
    tmp_path: Path, table: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "store.db"
    (run_id, *_) = _store_with_runs(path)
    _wreck_page_of(path, table)
    args = [run_id if part == "RUN" else part for part in command]
    proc = run_cli(*args, "--db", str(path))
    if table == "events" and command[0] in ("list", "status", "signal", "cancel"):
        # These do not read the history: they may work, or see the damage; never a traceback.
        assert "Traceback" not in proc.stderr, proc.stderr
        if proc.returncode == 2:
            assert "damaged" in proc.stderr, proc.stderr
        return
    _assert_damaged(proc, path)


def test_a_worker_on_a_corrupt_store_stops_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _store_with_runs(path, 1)
    proc = run_cli("start", str(GREET), "--input", '{"name": "late"}', "--db", str(path))
    assert_clean(proc, 0)
    _wreck_page_of(path, "runs")
    worker = cli_popen("worker", *ACT, "--db", str(path))
    _assert_damaged(finish(worker, timeout=30), path)


def _delete_wal(path: Path) -> None:
    wal = Path(str(path) + "-wal")
    wait_for(wal.exists, timeout=10)
    wal.unlink()


def _replace_file(path: Path) -> None:
    # A restore from a backup, say, while the worker still runs.
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    copy.replace(path)


@pytest.mark.parametrize("damage", [_delete_wal, _replace_file], ids=["wal-deleted", "replaced"])
def test_a_store_file_deleted_or_replaced_under_a_live_worker_stops_it(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    path = tmp_path / "store.db"
    side = tmp_path / "side.log"
    started = run_cli(
        "start", str(SLOW), "--input", f'{{"seconds": 1.5, "path": "{side}"}}', "--db", str(path)
    )
    assert_clean(started, 0)
    worker = cli_popen("worker", *ACT, "--db", str(path))
    try:
        # The first slow step is running: the worker holds the store, and its WAL, open.
        wait_for(lambda: side.exists() and side.read_text().strip(), timeout=30)
        damage(path)
        result = finish(worker, timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 2)
    assert "deleted or replaced" in result.stderr, result.stderr
    assert str(path) in result.stderr, result.stderr
