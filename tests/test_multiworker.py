"""Many `tideflow worker` processes on one PostgreSQL database.

- four workers run 500 orders; every step runs exactly once;
- two of the four are SIGKILLed mid-way; the others finish everything, and a step runs again
  only if its run was held by a killed worker at that moment (at-least-once), never recorded
  twice;
- PostgreSQL goes away under running workers (a proxy cuts their connections and refuses new
  ones, as a server restart does); they recover and the runs complete;
- a worker offers only some activities (`--activities`): runs it cannot carry on wait for
  another worker instead of failing (on every store).

The activity log of samples/activities.py (TIDEFLOW_SAMPLE_LOG) counts real executions.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from conftest import ROOT, SAMPLE_ACTIVITIES, SAMPLES, _postgres_url, run_cli
from pg_proxy import PgProxy

from interpreter.client import Client, load_definition
from interpreter.store.base import EVENT_COLUMNS, events_from_row

STEPS = ("charge", "reserve", "ship")
ORDER_INPUTS = [
    json.loads((SAMPLES / "inputs" / name).read_text())
    for name in ("order.json", "order_small.json")
]


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def pg_url() -> Iterator[str]:
    url = _postgres_url()
    yield url
    schema = urlsplit(url).query.partition("search_path%3D")[2]
    with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def fast_order(tmp_path: Path) -> Path:
    """samples/order.yaml with a 1 ms settle timer instead of 1 s."""
    text = (SAMPLES / "order.yaml").read_text(encoding="utf-8")
    assert "duration: 1s" in text
    path = tmp_path / "order.yaml"
    path.write_text(text.replace("duration: 1s", "duration: 1ms"), encoding="utf-8")
    return path


def query(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement on the test schema; waits out a server restart."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                return conn.execute(statement, params).fetchall()
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_orders(url: str, workflow: Path, count: int) -> list[str]:
    defn = load_definition(workflow)
    with Client(url) as client:
        return [
            client.start(
                defn, {**ORDER_INPUTS[i % 2], "order_id": f"A-{i}"}, run_id=f"order-{i:04d}"
            )
            for i in range(count)
        ]


class Workers:
    """`tideflow worker` processes with the sample activities and one shared activity log."""

    def __init__(self, url: str, tmp: Path, log: Path, *, delay: float | None = None) -> None:
        self.url, self.tmp, self.log = url, tmp, log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEFLOW_SAMPLE_")}
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), self.env.get("PYTHONPATH")])
        )
        self.env["TIDEFLOW_SAMPLE_LOG"] = str(log)
        if delay is not None:
            self.env["TIDEFLOW_SAMPLE_DELAY"] = str(delay)
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, count: int, *extra: str) -> list[subprocess.Popen[bytes]]:
        new = []
        for _ in range(count):
            index = len(self.procs)
            err = open(self.tmp / f"worker{index}.err", "wb")  # noqa: SIM115 - the child owns it
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "interpreter",
                    "worker",
                    "--db",
                    self.url,
                    "--activities",
                    str(SAMPLE_ACTIVITIES),
                    *extra,
                ],
                cwd=self.tmp,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            err.close()
            self.procs.append(proc)
            new.append(proc)
        return new

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.tmp / f"worker{self.procs.index(proc)}.err").read_text(errors="replace")

    def stop(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        """SIGTERM, then each must exit 0 without a traceback."""
        procs = [p for p in (procs or self.procs) if p.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) == 0, self.stderr(proc)
            assert "Traceback" not in self.stderr(proc)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    # The worker-pool tests hold dozens of PostgreSQL connections each (the server allows 100)
    # and keep both CPUs busy: under pytest-xdist they take turns, through a lock file that
    # every test process of this machine sees.
    with open(Path(tempfile.gettempdir()) / "tideflow-tests-pg-workers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _workers(pg_url, tmp_path)


def _workers(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(delay: float | None = None, url: str | None = None) -> Workers:
        w = Workers(url or pg_url, tmp_path, tmp_path / "activity.log", delay=delay)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill_all()


def status_counts(url: str) -> Counter[str]:
    return Counter(
        {status: n for status, n in query(url, "SELECT status, count(*) FROM runs GROUP BY status")}
    )


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, workers: Workers | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if workers is not None:
            for proc in workers.procs:
                code = proc.poll()
                assert code is None or code < 0, (
                    f"a worker exited with {code}: {workers.stderr(proc)}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}" + (diagnose(workers) if workers else "")
            )
        time.sleep(0.1)


def diagnose(workers: Workers) -> str:
    """What the unfinished runs wait for, and what the workers said."""
    rows = query(
        workers.url,
        "SELECT lease_owner, count(*), min(due_at) - extract(epoch FROM now()), "
        "max(lease_expires) - extract(epoch FROM now()) FROM runs WHERE status='running' GROUP BY 1",
    )
    said = "\n".join(workers.stderr(p)[-1500:] for p in workers.procs)
    return f"\nunfinished (owner, runs, due in, lease left): {rows}\nworkers said:\n{said}"


def all_completed(url: str, count: int) -> Callable[[], bool]:
    return lambda: status_counts(url)["completed"] == count


def executions(log: Path) -> Counter[tuple[str, str]]:
    """How many attempts really ended ok, per (run, state), from the activity log."""
    ends: Counter[tuple[str, str]] = Counter()
    keys: dict[tuple[str, str], set[str]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["event"] == "end" and entry.get("outcome") == "ok":
            ends[(entry["run_id"], entry["state"])] += 1
            keys.setdefault((entry["run_id"], entry["state"]), set()).add(entry["idempotency_key"])
    # A repeated attempt is the same attempt again: same idempotency key.
    assert all(len(k) == 1 for k in keys.values()), {s: k for s, k in keys.items() if len(k) > 1}
    return ends


def assert_each_step_once(
    url: str, log: Path, run_ids: list[str], may_repeat: frozenset[str] | set[str] = frozenset()
) -> None:
    assert status_counts(url) == Counter({"completed": len(run_ids)})
    recorded = Counter(
        (row[0], event["state"])
        for row in query(url, f"SELECT run_id, {EVENT_COLUMNS} FROM events")
        for event in events_from_row(row[1:])
        if event["type"] == "ActivityCompleted"
    )
    expected = {(run, state) for run in run_ids for state in STEPS}
    assert set(recorded) == expected
    assert set(recorded.values()) == {1}, "a step was recorded as completed twice"
    ran = executions(log)
    assert set(ran) == expected
    repeated = {key for key, n in ran.items() if n > 1}
    assert {run for run, _ in repeated} <= may_repeat, (
        f"steps ran twice outside killed workers: {sorted(repeated)[:10]}"
    )


# ----------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_four_workers_run_500_orders_each_step_exactly_once(
    pg_url: str, fast_order: Path, tmp_path: Path, workers: Callable[..., Workers]
) -> None:
    pool = workers()
    pool.spawn(4)
    run_ids = start_orders(pg_url, fast_order, 500)
    wait_until(all_completed(pg_url, 500), 120, "500 runs to complete", pool)
    pool.stop()
    assert_each_step_once(pg_url, pool.log, run_ids)


@pytest.mark.slow
def test_killing_two_of_four_workers_completes_every_run_without_recording_a_step_twice(
    pg_url: str, fast_order: Path, tmp_path: Path, workers: Callable[..., Workers]
) -> None:
    pool = workers(delay=0.05)  # keep attempts in flight when the kill lands
    pool.spawn(4, "--concurrency", "40")
    run_ids = start_orders(pg_url, fast_order, 500)
    wait_until(lambda: status_counts(pg_url)["completed"] >= 150, 120, "150 runs to complete", pool)
    victims = pool.procs[:2]
    # Freeze them first so the runs they hold can be listed exactly, then kill -9.
    for proc in victims:
        proc.send_signal(signal.SIGSTOP)
    time.sleep(0.3)
    held: set[str] = set()
    for proc in victims:
        held |= {
            r[0]
            for r in query(
                pg_url, "SELECT id FROM runs WHERE lease_owner LIKE %s", (f"%:{proc.pid}:%",)
            )
        }
    for proc in victims:
        proc.kill()
        proc.wait()
    assert status_counts(pg_url)["completed"] < 500, (
        "too late: everything had finished before the kill"
    )
    wait_until(all_completed(pg_url, 500), 120, "the survivors to finish all runs", pool)
    pool.stop(pool.procs[2:])
    assert_each_step_once(pg_url, pool.log, run_ids, may_repeat=held)


@pytest.mark.slow
def test_a_worker_recovers_when_postgres_restarts(
    pg_url: str, fast_order: Path, tmp_path: Path, workers: Callable[..., Workers]
) -> None:
    # The workers reach the server through a proxy that goes down like a restarting server
    # (connections cut mid-use, new ones refused, then accepted again); the test's own
    # statements go straight to the server, which every other test shares and keeps running.
    proxy = PgProxy(pg_url)
    try:
        pool = workers(delay=0.3, url=proxy.url())
        pool.spawn(2, "--concurrency", "20")
        run_ids = start_orders(pg_url, fast_order, 100)
        wait_until(
            lambda: status_counts(pg_url)["completed"] >= 20, 60, "20 runs to complete", pool
        )
        assert proxy.connections() > 0, "the workers were not connected through the proxy"
        proxy.down()
        # The outage lasts 3 s, long enough for every worker to hit it and retry. Nothing
        # completes meanwhile (after a second for commits already on the wire to land).
        time.sleep(1)
        during = status_counts(pg_url)["completed"]
        assert during < 100, "too late: everything had finished before the outage"
        time.sleep(2)
        assert status_counts(pg_url)["completed"] == during, "runs completed during the outage"
        assert all(p.poll() is None for p in pool.procs), "a worker died with the database"
        proxy.up()
        back = time.time()
        wait_until(all_completed(pg_url, 100), 90, "the runs to complete after the outage", pool)
        assert all(p.poll() is None for p in pool.procs), "a worker died with the database"
        pool.stop()
    finally:
        proxy.close()
    assert_each_step_once(pg_url, pool.log, run_ids)
    (after,) = query(pg_url, "SELECT count(*) FROM runs WHERE ended_at > %s", (back,))
    assert after[0] > 0, "no run was left to finish after the outage"


SPLIT_WORKFLOW = """\
dsl: "1.0"
name: split
start: first
states:
  first:
    type: activity
    activity: split.first
    next: second
  second:
    type: activity
    activity: split.second
    end: true
"""

ACTIVITY_FILE = """\
from interpreter import activity

@activity({name!r})
def run(payload):
    return {{"done": {name!r}}}
"""


def test_a_run_waits_for_a_worker_that_offers_its_activity(store_url: str, tmp_path: Path) -> None:
    workflow = tmp_path / "split.yaml"
    workflow.write_text(SPLIT_WORKFLOW)
    for name in ("first", "second"):
        (tmp_path / f"{name}.py").write_text(ACTIVITY_FILE.format(name=f"split.{name}"))
    with Client(store_url) as client:
        run_id = client.start(workflow, None)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env = {**os.environ, **env}

    def worker(offers: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "interpreter",
                "worker",
                "--db",
                store_url,
                "--activities",
                str(tmp_path / offers),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def completed_steps() -> list[str]:
        with Client(store_url) as client:
            return [e["state"] for e in client.history(run_id) if e["type"] == "ActivityCompleted"]

    first = worker("first.py")
    try:
        wait_until(lambda: completed_steps() == ["first"], 30, "the first step")
        time.sleep(1.5)  # time enough to fail the run, if it were going to
        with Client(store_url) as client:
            record = client.get(run_id)
            events = [e["type"] for e in client.history(run_id)]
        assert record.status == "running" and record.lease_owner is None
        assert "ActivityFailed" not in events and completed_steps() == ["first"]
        status = run_cli("status", run_id, "--db", store_url, "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["status"] == "running" and [c["state"] for c in info["current"]] == ["second"]
        second = worker("second.py")
        try:
            with Client(store_url) as client:
                assert client.result(run_id, timeout=30).status == "completed"
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    finally:
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=30)
    assert first.returncode == 0 and "Traceback" not in err, err
    assert completed_steps() == ["first", "second"]
