"""Shared fixtures: a fresh store per test on every configured backend, a Client on it, worker
threads driving it, sample paths, and a subprocess helper for the CLI.

`store_url` is parametrised over the stores in TIDEFLOW_TEST_STORES (default: sqlite and, when
TIDEFLOW_TEST_PG_URL is set, postgres). When CI sets TIDEFLOW_CI=1 and the PostgreSQL URL is
missing or the server is down, the postgres tests fail instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from interpreter import Client

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_ACTIVITIES = SAMPLES / "activities.py"


# Most tests wait on subprocesses (CLI commands, workers, servers), so the suite runs in more
# pytest-xdist workers than there are CPUs. `-n N` chooses another number (`-n 0` runs it in this
# process), and so does PYTEST_XDIST_AUTO_NUM_WORKERS; `-p no:xdist` runs it without the plugin.
WORKERS_PER_CPU = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Without `-n`, distribute the tests as `-n auto` would."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is None:
        config.option.numprocesses = "auto"


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown under -p no:xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


def _stores() -> list[str]:
    configured = os.environ.get("TIDEFLOW_TEST_STORES")
    if configured:
        return [s.strip() for s in configured.split(",") if s.strip()]
    stores = ["sqlite"]
    if os.environ.get("TIDEFLOW_TEST_PG_URL") or os.environ.get("TIDEFLOW_CI") == "1":
        stores.append("postgres")
    return stores


def _drop_schema(url: str) -> None:
    import psycopg

    base, _, options = url.partition("options=-csearch_path%3D")
    schema = options.split("&")[0]
    try:
        with psycopg.connect(base.rstrip("?&"), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '2s'")
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except psycopg.Error:
        pass  # a store still holding locks: the CI database is dropped as a whole anyway


def _postgres_url() -> str:
    base = os.environ.get("TIDEFLOW_TEST_PG_URL")
    if not base:
        message = "TIDEFLOW_TEST_PG_URL is not set (CI sets it to a throw-away database)"
        if os.environ.get("TIDEFLOW_CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at TIDEFLOW_TEST_PG_URL is not reachable: {exc}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=_stores())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store: an SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
    elif request.param == "postgres":
        url = _postgres_url()
        yield url
        _drop_schema(url)
    else:
        pytest.fail(f"unknown store {request.param!r} in TIDEFLOW_TEST_STORES")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    """A Client on the test's store (a module needing more set-up defines its own)."""
    from interpreter import Client  # here, not above: loading conftest stays light

    with Client(store_url) as c:
        yield c


@pytest.fixture
def start_worker(store_url: str) -> Iterator[Callable[[], None]]:
    """Starts a worker thread on its own store (the test and sample activities loaded); all are
    stopped at the end of the test."""
    from concurrency_activities import BackgroundWorker
    from run_helpers import TEST_ACTIVITIES

    from interpreter import load_activity_modules

    load_activity_modules([str(TEST_ACTIVITIES), str(SAMPLE_ACTIVITIES)])
    workers: list[BackgroundWorker] = []

    def start() -> None:
        workers.append(BackgroundWorker(store_url).__enter__())

    yield start
    for worker in workers:
        worker.stop()


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m interpreter ARGS` as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "interpreter", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
    )
