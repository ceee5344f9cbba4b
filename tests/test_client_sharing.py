"""One Client shared by threads, asyncio tasks and processes: every concurrent call succeeds
and every signal lands exactly once, on every store.

The run waits for `tick` signals until it has `input.expect` of them and ends with the list of
their `n`s in arrival order, so its output shows each signal's fate: missing, doubled or there
once. Signals are sent while nobody drives the run (they wait in its inbox), then the Client
drives it to the end.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conftest import ROOT
from run_helpers import wait_for, write_workflow

from interpreter import Client

TALLY = """
name: tally
description: Takes `tick` signals until it has input.expect of them; outputs their n's in order.
input_schema:
  type: object
  required: [expect]
  properties: {expect: {type: integer, minimum: 1}}
signals:
  tick:
    schema:
      type: object
      required: [n]
      properties: {n: {type: integer}}
      additionalProperties: false
vars:
  got: []
queries:
  count: "{{ vars.got | length }}"
states:
  take:
    type: wait
    signal: tick
    result: last
    next: record
  record:
    type: set
    vars:
      got: "{{ vars.got + [vars.last.n] }}"
    next: enough
  enough:
    type: choice
    choices:
      - when: "{{ vars.got | length >= input.expect }}"
        next: done
    default: take
  done:
    type: succeed
    output: "{{ vars.got }}"
"""


def start_tally(client: Client, directory: Path, expect: int) -> str:
    return client.start(write_workflow(directory, TALLY, "tally.yaml"), {"expect": expect})


def read_everything(client: Client, run_id: str) -> None:
    """The reads a dashboard makes while signals arrive; each must answer correctly."""
    assert client.status(run_id)["status"] == "running"
    assert run_id in [r.id for r in client.list_runs(workflow="tally")]
    events = list(client.history(run_id))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert client.query(run_id, "count") == 0


def failures(futures: list[Future[Any]]) -> list[str]:
    return [repr(exc) for future in futures if (exc := future.exception()) is not None]


def assert_each_signal_landed_once(client: Client, run_id: str, expected: int) -> None:
    """Drive the run: it ends only after taking `expected` signals, then nothing is left."""
    items, _ = client.store.read_inbox(run_id)
    assert sorted(item.payload["n"] for item in items) == list(range(expected))
    record = client.execute(run_id)
    assert record.status == "completed", record.error
    assert sorted(record.output) == list(range(expected))
    assert client.store.read_inbox(run_id) == ([], False)
    received = [
        e["payload"]["payload"]["n"]
        for e in client.history(run_id)
        if e["type"] == "SignalReceived"
    ]
    assert sorted(received) == list(range(expected))


def assert_no_failures(failed: list[str], out_of: str) -> None:
    assert not failed, f"{len(failed)} of {out_of} failed; the first: {failed[0]}"


def test_one_client_shared_by_16_threads(store_url: str, tmp_path: Path) -> None:
    with Client(store_url) as client:
        run_id = start_tally(client, tmp_path, 200)
        with ThreadPoolExecutor(max_workers=16) as pool:
            sends: list[Future[Any]] = []
            reads: list[Future[Any]] = []
            for n in range(200):
                sends.append(pool.submit(client.signal, run_id, "tick", {"n": n}))
                if n % 4 == 0:
                    reads.append(pool.submit(read_everything, client, run_id))
        assert_no_failures(failures(sends) + failures(reads), f"{len(sends) + len(reads)} calls")
        assert len({future.result() for future in sends}) == 200  # one inbox id each
        assert_each_signal_landed_once(client, run_id, 200)


def test_one_client_shared_by_50_asyncio_tasks(store_url: str, tmp_path: Path) -> None:
    with Client(store_url) as client:
        run_id = start_tally(client, tmp_path, 200)

        async def sender(task: int) -> list[int]:
            ids = []
            for k in range(4):
                ids.append(
                    await asyncio.to_thread(client.signal, run_id, "tick", {"n": task * 4 + k})
                )
                await asyncio.to_thread(read_everything, client, run_id)
            return ids

        async def main() -> list[list[int] | BaseException]:
            # A thread per task, so all 50 really call the Client at once.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=50))
            return await asyncio.gather(*(sender(t) for t in range(50)), return_exceptions=True)

        outcomes = asyncio.run(main())
        failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
        assert_no_failures(failed, "50 tasks (each stops at its first failed call)")
        ids = [i for o in outcomes if isinstance(o, list) for i in o]
        assert len(set(ids)) == 200
        assert_each_signal_landed_once(client, run_id, 200)


SENDER = """
import pathlib, sys, time
from interpreter import Client

url, run_id, index, count, gate = sys.argv[1:]
gate_dir = pathlib.Path(gate)
with Client(url, create=False) as client:
    (gate_dir / f"ready-{index}").touch()
    while not (gate_dir / "go").exists():
        time.sleep(0.005)
    for k in range(int(count)):
        client.signal(run_id, "tick", {"n": int(index) * int(count) + k})
"""


def test_six_processes_signal_one_run_at_once(store_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    with Client(store_url) as client:
        run_id = start_tally(client, tmp_path, 180)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER, store_url, run_id, str(i), "30", str(gate)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(6)
        ]
        try:
            # Everyone connected and waiting: let them all go at once.
            wait_for(lambda: len(list(gate.glob("ready-*"))) == 6 or any_exited(procs), 60)
            (gate / "go").touch()
            outputs = [proc.communicate(timeout=120) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        assert [(p.returncode, err) for p, (_, err) in zip(procs, outputs, strict=True)] == [
            (0, "")
        ] * 6
        assert_each_signal_landed_once(client, run_id, 180)


def any_exited(procs: list[subprocess.Popen[str]]) -> bool:
    return any(proc.poll() is not None for proc in procs)
