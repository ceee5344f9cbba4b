"""SIGKILL crash tests for updates: a `tideflow worker` is killed at an exact transaction
boundary (crash_util's hook) while a real `tideflow update` caller waits, or after that caller
was itself killed. Whatever the moment, the update is applied exactly once and the caller (or
a retry with the same update id) gets its value.

- `before:UpdateApplied:1`: the update is stored, the worker decided it in memory, and dies
  right before that step is written. The caller keeps waiting; the next worker applies it.
- `after:UpdateApplied:1`: the worker committed the application and dies at once; the first
  caller was killed before it could read the outcome. A retry with the same id returns it,
  and nothing applies it again (nor does a later worker).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from crash_util import (
    SAMPLES,
    STARTUP_SECONDS,
    WORKER_READY,
    Cli,
    kill,
    wait_for_stderr,
    wait_until,
)

from interpreter import Client
from interpreter.worker import LEASE_SECONDS

pytestmark = pytest.mark.slow

ENTITY = SAMPLES / "entity_greeting.yaml"
PAYLOAD = '{"language": "fr"}'
# Once the next worker looks for runs, the dead worker's run is claimable at once (its owner's
# process is gone) or at the latest when its lease runs out; three leases is far above both,
# so only a worker that does not take the run over fails this bound. Its start-up is waited
# for apart (STARTUP_SECONDS): on a loaded machine it is most of the time.
TAKEOVER_SECONDS = 3 * LEASE_SECONDS
# The waiting caller's own --timeout: beyond every bound above, so the test's bounds decide.
CALLER_TIMEOUT = "300"


def _cli(store_url: str, tmp_path: Path) -> Cli:
    return Cli(db=store_url, log=tmp_path / "log.jsonl")


def _applied(client: Client, run_id: str) -> list[dict[str, object]]:
    return [e["payload"] for e in client.history(run_id) if e["type"] == "UpdateApplied"]


def _taken_over(
    caller: subprocess.Popen[str],
    worker: subprocess.Popen[str],
    worker_said: str,
    client: Client,
    run_id: str,
) -> tuple[int, str, str]:
    """The waiting caller's (exit code, stdout, stderr) once the new worker, already looking
    for runs (its stderr so far: `worker_said`), applied the update; a clear failure if it did
    not within TAKEOVER_SECONDS."""
    try:
        out, err = caller.communicate(timeout=TAKEOVER_SECONDS)
    except subprocess.TimeoutExpired:
        run = client.store.get_run(run_id)
        kill(caller)
        worker.kill()
        _, worker_err = worker.communicate(timeout=10)
        raise AssertionError(
            f"the new worker was looking for runs for {TAKEOVER_SECONDS:g}s and did not apply "
            f"the pending update of run {run_id} (lease holder now: "
            f"{run.lease_owner if run else None}); a dead worker's run must be taken over at "
            f"once, or when its {LEASE_SECONDS:g}s lease runs out. Worker stderr:\n"
            + worker_said
            + worker_err
        ) from None
    return caller.returncode, out, err


def test_worker_killed_before_the_update_is_applied(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    cli = _cli(store_url, tmp_path)
    run_id = client.start(ENTITY, {"name": "Ada"}, run_id="entity-crash-1")
    doomed = cli.spawn("worker", "--db", store_url, crash="before:UpdateApplied:1")
    caller = cli.spawn(
        "update",
        run_id,
        "set_language",
        "--data",
        PAYLOAD,
        "--id",
        "u1",
        "--json",
        "--timeout",
        CALLER_TIMEOUT,
        "--db",
        store_url,
    )
    assert doomed.wait(timeout=STARTUP_SECONDS) == -9  # killed right before the step
    stored = client.store.get_update(run_id, "u1")
    assert stored is not None and stored.status == "pending"
    assert _applied(client, run_id) == []
    assert caller.poll() is None  # still waiting
    worker = cli.spawn("worker", "--db", store_url)
    try:
        said = wait_for_stderr(worker, WORKER_READY, STARTUP_SECONDS, "the new worker to start")
        code, out, err = _taken_over(caller, worker, said, client, run_id)
        assert code == 0, err
        assert json.loads(out)["value"] == "en"
    finally:
        kill(worker)
    assert [p["id"] for p in _applied(client, run_id)] == ["u1"]
    assert client.query(run_id, "status") == {"language": "fr", "changes": 1}
    assert client.store.read_inbox(run_id)[0] == []


def test_worker_killed_after_applying_before_the_caller_read_it(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    cli = _cli(store_url, tmp_path)
    run_id = client.start(ENTITY, {"name": "Ada"}, run_id="entity-crash-2")
    caller = cli.spawn(
        "update",
        run_id,
        "set_language",
        "--data",
        PAYLOAD,
        "--id",
        "u1",
        "--timeout",
        CALLER_TIMEOUT,
        "--db",
        store_url,
    )
    wait_until(
        lambda: client.store.get_update(run_id, "u1") is not None,
        STARTUP_SECONDS,
        "the update stored",
        caller,
    )
    kill(caller)  # the caller never reads the outcome
    doomed = cli.spawn("worker", "--db", store_url, crash="after:UpdateApplied:1")
    assert doomed.wait(timeout=STARTUP_SECONDS) == -9  # killed right after the step committed
    update = client.store.get_update(run_id, "u1")
    assert update is not None and (update.status, update.result) == ("applied", "en")
    # The retry with the same id gets the outcome, with or without a worker, and never a
    # second application.
    retry = cli.run(
        "update", run_id, "set_language", "--data", PAYLOAD, "--id", "u1", "--db", store_url
    )
    assert (retry.returncode, retry.stdout) == (0, "en\n"), retry.stderr
    worker = cli.spawn("worker", "--db", store_url)
    try:
        wait_for_stderr(worker, WORKER_READY, STARTUP_SECONDS, "the new worker to start")
        again = cli.run(
            "update", run_id, "set_language", "--data", PAYLOAD, "--id", "u1", "--db", store_url
        )
        assert (again.returncode, again.stdout) == (0, "en\n"), again.stderr
        later = cli.run(
            "update", run_id, "set_language", "--data", '{"language": "de"}', "--db", store_url
        )
        assert (later.returncode, later.stdout) == (0, "fr\n"), later.stderr
    finally:
        kill(worker)
    first, second = _applied(client, run_id)
    assert first["id"] == "u1" and second["id"] != "u1"
    assert client.query(run_id, "status") == {"language": "de", "changes": 2}
