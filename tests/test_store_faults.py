"""Stores that cannot be used: not a store, read-only, newer schema, locked. Each gives one clear
message, exit 2, no traceback, and leaves the file as it was."""

from __future__ import annotations

import ctypes
import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from run_helpers import TEST_ACTIVITIES, WORKFLOWS, assert_clean, cli_env, one_json

from interpreter import Client, StoreError
from interpreter.errors import NotAStore, StoreVersionError

GREET = WORKFLOWS / "greet_twice.yaml"
ACT = ("--activities", str(TEST_ACTIVITIES))
# Every command that opens the store, with the arguments it needs.
COMMANDS: list[tuple[str, ...]] = [
    ("run", str(GREET), "--input", '{"name": "x"}', *ACT),
    ("start", str(GREET), "--input", '{"name": "x"}', *ACT),
    ("status", "some-run"),
    ("list",),
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_store(path: Path) -> None:
    proc = run_cli(
        "run", str(GREET), "--input", '{"name": "seed"}', *ACT, "--db", str(path), "--json"
    )
    assert_clean(proc, 0)


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_random_bytes_are_not_a_store(tmp_path: Path, command: tuple[str, ...]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    before = digest(junk)
    proc = run_cli(*command, "--db", str(junk))
    assert_clean(proc, 2)
    assert "not a tideflow store" in proc.stderr
    assert str(junk) in proc.stderr
    assert digest(junk) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.db"]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_sqlite_database_of_another_program_is_left_alone(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers(name) VALUES ('ada')")
    before = digest(other)
    proc = run_cli(*command, "--db", str(other))
    assert_clean(proc, 2)
    assert "not a tideflow store" in proc.stderr
    assert digest(other) == before, "the foreign database was modified"
    with sqlite3.connect(other) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"customers"}


def test_python_api_raises_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello, I am a text file\n" * 100)
    with pytest.raises(NotAStore):
        Client(str(junk))


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    proc = run_cli("list", "--db", str(tmp_path))
    assert_clean(proc, 2)
    assert "directory" in proc.stderr


def test_unsupported_store_url(tmp_path: Path) -> None:
    proc = run_cli("list", "--db", "mysql://localhost/x")
    assert_clean(proc, 2)
    assert "unsupported store URL" in proc.stderr


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    make_store(store)
    with sqlite3.connect(store) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.close()
    before = digest(store)
    for command in COMMANDS:
        proc = run_cli(*command, "--db", str(store))
        assert_clean(proc, 2)
        assert "schema version 99" in proc.stderr
        assert "upgrade tideflow" in proc.stderr
    assert digest(store) == before
    with pytest.raises(StoreVersionError):
        Client(str(store))


def _drop_dac_override() -> Callable[[], None] | None:
    """root ignores file permissions; a child without CAP_DAC_OVERRIDE does not."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "store.db"
    make_store(store)
    store.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(
        stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    )
    try:
        yield store
    finally:
        folder.chmod(stat.S_IRWXU)
        store.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.parametrize("command", COMMANDS[:2], ids=["run", "start"])
def test_read_only_store_gives_a_clear_message(
    read_only_store: Path, command: tuple[str, ...]
) -> None:
    before = digest(read_only_store)
    proc = subprocess.run(
        [sys.executable, "-m", "interpreter", *command, "--db", str(read_only_store)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_drop_dac_override(),
    )
    assert_clean(proc, 2)
    assert "read-only" in proc.stderr
    assert str(read_only_store) in proc.stderr
    assert digest(read_only_store) == before


def test_store_locked_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    make_store(store)
    env = {"TIDEFLOW_SQLITE_BUSY_TIMEOUT_MS": "300"}
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE meta SET value=value WHERE key='schema_version'")
        for command in COMMANDS[:2]:
            proc = run_cli(*command, "--db", str(store), env=env)
            assert_clean(proc, 2)
            assert "locked" in proc.stderr
            assert "0.3 s" in proc.stderr
        # Readers are not blocked by a writer.
        listed = run_cli("list", "--db", str(store), "--json", env=env)
        assert_clean(listed, 0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Client(str(store)) as client:
        assert len(client.list_runs()) == 1, "nothing half-created"
    proc = run_cli(
        "run",
        str(GREET),
        "--input",
        '{"name": "after"}',
        *ACT,
        "--db",
        str(store),
        "--json",
        env=env,
    )
    assert_clean(proc, 0)
    assert one_json(proc)["status"] == "completed"


def test_store_error_is_a_tideflow_error() -> None:
    assert issubclass(NotAStore, StoreError)
    assert issubclass(StoreVersionError, StoreError)


_OPEN_AT = """
import sys, time
from interpreter.store import open_store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
open_store(sys.argv[1]).close()
"""


def test_processes_creating_one_new_store_together(tmp_path: Path) -> None:
    """Regression: every process read "version 0" before one of them created the tables, so
    the others failed with "table meta already exists". The version is now re-read under the
    write lock."""
    for attempt in range(5):
        store = tmp_path / f"store{attempt}.db"
        at = str(time.time() + 0.6)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT, str(store), at],
                env=cli_env(),
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        failures = [
            err for proc in procs if (err := proc.communicate(timeout=60)[1]) or proc.returncode
        ]
        assert failures == []
        with sqlite3.connect(store) as db:
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        db.close()
        assert version is not None and int(version[0]) >= 1
