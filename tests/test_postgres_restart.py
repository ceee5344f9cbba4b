"""PostgreSQL restarting under tideflow, seen through a proxy that cuts every connection and
refuses new ones for a while (tests/pg_proxy.py): commands wait for the server within the retry
budget, workers stay up, and when the budget runs out the message says the server is
unreachable (not that the URL is wrong)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, _drop_schema, _postgres_url, run_cli
from pg_proxy import PgProxy
from run_helpers import assert_clean, cli_popen, finish, one_json, wait_for

from interpreter import Client

WF = ROOT / "tests" / "workflows_concurrency" / "signals.yaml"
ACT = ("--activities", str(ROOT / "tests" / "concurrency_activities.py"))


@pytest.fixture
def proxied() -> Iterator[tuple[str, PgProxy]]:
    url = _postgres_url()
    proxy = PgProxy(url)
    yield proxy.url(), proxy
    proxy.close()
    _drop_schema(url)


def _stage(url: str, run_id: str) -> str:
    with Client(url) as client:
        value: str = client.query(run_id, "stage")
        return value


def _status(url: str, run_id: str) -> str:
    with Client(url) as client:
        return client.get(run_id).status


def test_signal_and_worker_ride_through_a_restart(proxied: tuple[str, PgProxy]) -> None:
    url, proxy = proxied
    with Client(url) as client:
        run_id = client.start(WF, {"delay": 0})
    worker = cli_popen("worker", *ACT, "--db", url)
    try:
        wait_for(lambda: _stage(url, run_id) == "waiting", timeout=30)
        proxy.down()
        # Sent while the server is away: it waits for it, then lands once.
        signal = cli_popen("signal", run_id, "go", "--data", '{"n": 1}', "--db", url)
        time.sleep(3)
        assert signal.poll() is None, "signal gave up during a 3 s restart"
        proxy.up()
        sent = finish(signal, timeout=40)
        assert_clean(sent, 0)
        assert "retrying for up to" in sent.stderr
        second = run_cli("signal", run_id, "go", "--data", '{"n": 2}', "--db", url)
        assert_clean(second, 0)
        wait_for(lambda: _status(url, run_id) == "completed", timeout=40)
        assert worker.poll() is None, "the worker exited during the restart"
        with Client(url) as client:
            assert client.get(run_id).output == [1, 2]
    finally:
        worker.terminate()
        stopped = finish(worker, timeout=30)
    assert stopped.returncode == 0, stopped.stderr


def test_an_outage_past_the_budget_says_unreachable(
    proxied: tuple[str, PgProxy], tmp_path: Path
) -> None:
    url, proxy = proxied
    assert_clean(run_cli("list", "--db", url, "--json"), 0)
    proxy.down()
    started = time.monotonic()
    proc = run_cli("list", "--db", url, env={"TIDEFLOW_PG_RETRY_SECONDS": "2"})
    elapsed = time.monotonic() - started
    assert_clean(proc, 2)
    assert "cannot reach PostgreSQL" in proc.stderr, proc.stderr
    assert "invalid PostgreSQL URL" not in proc.stderr
    assert elapsed >= 2, "it did not wait for the server"
    proxy.up()
    assert one_json(run_cli("list", "--db", url, "--json")) == []


def test_a_bad_retry_setting_is_a_clear_error(proxied: tuple[str, PgProxy]) -> None:
    url, _ = proxied
    proc = run_cli("list", "--db", url, env={"TIDEFLOW_PG_RETRY_SECONDS": "soon"})
    assert_clean(proc, 2)
    assert "TIDEFLOW_PG_RETRY_SECONDS" in proc.stderr
