"""Forks linked to their original in `list` and `status` (issue 12, section 3), and how often a
run was retried, through the real CLI on both stores; a store written before the link had its
columns (schema version 10) migrates and shows the links of the forks made then."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from test_event_rows import downgrade_events_to_version_12
from test_redrive import RD_ACTIVITIES, cli, failed_chain

from interpreter import Client
from interpreter.store import SCHEMA_VERSION


def _json(store: str, *args: str) -> Any:
    proc = cli(store, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _fork(store: str, run_id: str, state: str, new_id: str) -> None:
    proc = cli(store, "fork", run_id, "--from", state, "--id", new_id)
    assert proc.returncode == 0, proc.stderr


def test_list_shows_and_filters_forks(store_url: str, tmp_path: Path) -> None:
    run_id, _log, _fixed = failed_chain(store_url, tmp_path)
    _fork(store_url, run_id, "second", "fork-a")
    _fork(store_url, run_id, "first", "fork-b")
    _fork(store_url, "fork-a", "second", "fork-of-a")
    runs = {r["run_id"]: r for r in _json(store_url, "list")}
    assert runs[run_id]["forked_from"] is None
    assert runs["fork-a"]["forked_from"] == {"run": run_id, "state": "second"}
    assert runs["fork-b"]["forked_from"] == {"run": run_id, "state": "first"}
    assert runs["fork-of-a"]["forked_from"] == {"run": "fork-a", "state": "second"}
    forks = _json(store_url, "list", "--forked-from", run_id)
    assert [r["run_id"] for r in forks] == ["fork-b", "fork-a"]  # newest first
    assert [r["run_id"] for r in _json(store_url, "list", "--forked-from", "fork-b")] == []
    table = cli(store_url, "list", "--wide").stdout.splitlines()
    assert "FORKED FROM" in table[0]
    row = next(line for line in table if line.startswith("fork-a "))
    assert row.rstrip().endswith(f"{run_id} at second")
    original = next(line for line in table if line.startswith(run_id))
    assert " at " not in original
    # A page without a fork has no fork column.
    plain = cli(store_url, "list", "--wide", "--status", "failed").stdout.splitlines()
    assert "PARENT" in plain[0] and "FORKED FROM" not in plain[0]
    # The filter is a list filter like the others: bulk commands take it too.
    proc = cli(store_url, "terminate", "--forked-from", run_id, "--yes", "--json")
    assert json.loads(proc.stdout) == {"matched": 2, "done": 2, "skipped": 0}, proc.stderr
    assert _json(store_url, "status", "fork-of-a")["status"] == "running"


def test_status_names_the_original_the_forks_and_the_retries(
    store_url: str, tmp_path: Path
) -> None:
    run_id, _log, fixed = failed_chain(store_url, tmp_path)
    _fork(store_url, run_id, "second", "fork-a")
    _fork(store_url, run_id, "first", "fork-b")
    info = _json(store_url, "status", run_id)
    assert info["forked_from"] is None and info["forks"] == ["fork-b", "fork-a"]
    assert info["fork_count"] == 2 and info["retried"] == 0
    text = cli(store_url, "status", run_id).stdout
    assert "forks      fork-b, fork-a\n" in text and "retried" not in text
    text = cli(store_url, "status", "fork-a").stdout
    assert f"forked     from {run_id} at second\n" in text and "forks " not in text
    fork = _json(store_url, "status", "fork-a")
    assert fork["forked_from"] == {"run": run_id, "state": "second"} and fork["forks"] == []

    # Retried twice (failing again in between), then completed: "retried 2 times".
    broken = {**fixed, "TIDEFLOW_RD_BROKEN": "1"}
    assert cli(store_url, "retry", run_id).returncode == 0
    proc = cli(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, env=broken)
    assert proc.returncode == 1, proc.stderr
    assert _json(store_url, "status", run_id)["retried"] == 1
    assert "retried    1 time\n" in cli(store_url, "status", run_id).stdout
    assert cli(store_url, "retry", run_id).returncode == 0
    proc = cli(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, env=fixed)
    assert proc.returncode == 0, proc.stderr
    info = _json(store_url, "status", run_id)
    assert info["status"] == "completed" and info["retried"] == 2
    assert "retried    2 times\n" in cli(store_url, "status", run_id).stdout

    # A fork that fails and is retried is still the fork of its original.
    proc = cli(store_url, "resume", "fork-b", "--activities", RD_ACTIVITIES, env=broken)
    assert proc.returncode == 1, proc.stderr
    assert cli(store_url, "retry", "fork-b").returncode == 0
    info = _json(store_url, "status", "fork-b")
    assert info["forked_from"] == {"run": run_id, "state": "first"} and info["retried"] == 1


def test_status_names_the_newest_forks_and_counts_the_rest(store_url: str, tmp_path: Path) -> None:
    run_id, _log, _fixed = failed_chain(store_url, tmp_path)
    with Client(store_url) as client:
        for n in range(23):
            client.fork(run_id, "second", new_id=f"f{n:02}")
        info = client.status(run_id)
    assert info["fork_count"] == 23
    assert info["forks"] == [f"f{n:02}" for n in range(22, 2, -1)]  # the newest 20
    text = cli(store_url, "status", run_id).stdout
    assert f"and 3 more (`tideflow list --forked-from {run_id}`)" in text


def _downgrade_to_version_10(store_url: str) -> None:
    """Make the store what tideflow before migration 11 left: no fork columns, no index,
    migration 5's index of leased runs, one row per event, schema version 10 (the forks' run
    states name their original, as they always did)."""
    downgrade_events_to_version_12(store_url)
    statements = [
        "DROP INDEX runs_leased",
        "CREATE INDEX runs_leased ON runs(lease_owner) WHERE lease_owner IS NOT NULL",
        "DROP INDEX runs_forked_from",
        "ALTER TABLE runs DROP COLUMN forked_from",
        "ALTER TABLE runs DROP COLUMN forked_from_state",
        "UPDATE meta SET value='10' WHERE key='schema_version'",
    ]
    if store_url.startswith("postgresql"):
        with psycopg.connect(store_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with sqlite3.connect(store_url) as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def test_a_store_of_version_10_migrates_and_links_its_old_forks(
    store_url: str, tmp_path: Path
) -> None:
    assert SCHEMA_VERSION == 13  # _downgrade_to_version_10 undoes migrations 11 to 13
    run_id, _log, _fixed = failed_chain(store_url, tmp_path)
    _fork(store_url, run_id, "second", "old-fork")
    _downgrade_to_version_10(store_url)
    runs = {r["run_id"]: r for r in _json(store_url, "list")}  # opening migrates
    assert runs["old-fork"]["forked_from"] == {"run": run_id, "state": "second"}
    assert runs[run_id]["forked_from"] is None
    assert [r["run_id"] for r in _json(store_url, "list", "--forked-from", run_id)] == ["old-fork"]
    assert _json(store_url, "status", run_id)["forks"] == ["old-fork"]
    _fork(store_url, run_id, "first", "new-fork")
    assert _json(store_url, "status", run_id)["forks"] == ["new-fork", "old-fork"]
