"""SIGKILL around the two ways on from a held booking saga (samples/booking_hold.yaml), at exact
transactions (tests/crash_util.py): a retry reopened and killed mid-run, and a compensation
release killed before and after its one transaction and while an undo step runs. After a
resume every activity ran the right number of times: nothing booked twice, nothing undone
twice except an undo whose completion the kill lost (run again with the same idempotency key,
as any activity)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from conftest import run_cli
from crash_util import SAMPLE_ACTIVITIES
from test_crash_redrive import crash_cli, status
from test_held_compensation import held_run, started

from interpreter import Client


def resume(store: str, run_id: str, env: dict[str, str]) -> None:
    proc = run_cli("resume", run_id, "--activities", str(SAMPLE_ACTIVITIES), "--db", store, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr


def killed_resume(store: str, spec: str, run_id: str, env: dict[str, str]) -> int:
    """`resume` under the crash hook (`spec`: when to SIGKILL itself); its exit code."""
    return crash_cli(store, spec, "resume", run_id, "--activities", str(SAMPLE_ACTIVITIES), env=env)


def keys(log: Path, activity: str) -> set[str]:
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    return {line["idempotency_key"] for line in lines if line["activity"] == activity}


def test_kill_during_the_retry_of_a_held_booking(store_url: str, tmp_path: Path) -> None:
    log, fixed = held_run(store_url, tmp_path, "trip-crash-retry")
    code = crash_cli(store_url, "after:RunRetried:1", "retry", "trip-crash-retry", env=fixed)
    assert code == -9  # killed right after the reopen committed
    assert status(store_url, "trip-crash-retry") == "running"
    # The retried charge succeeds, and the kill loses its completion.
    assert killed_resume(store_url, "before:ActivityCompleted:1", "trip-crash-retry", fixed) == -9
    resume(store_url, "trip-crash-retry", fixed)
    assert status(store_url, "trip-crash-retry") == "completed"
    assert started(log) == Counter(
        # charge: broken once, then the retry's attempt (lost) and its rerun after the kill
        {"booking.reserve_hotel": 1, "booking.reserve_flight": 1, "booking.charge": 3}
    )
    with Client(store_url) as client:
        events = list(client.history("trip-crash-retry", all_segments=True))
    done = [e["state"] for e in events if e["type"] == "ActivityCompleted"]
    assert done == ["reserve_hotel", "reserve_flight", "charge"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_kill_around_and_during_a_compensation_release(store_url: str, tmp_path: Path) -> None:
    log, env = held_run(store_url, tmp_path, "trip-crash-undo")
    args = ("compensate", "trip-crash-undo", "--yes")
    assert crash_cli(store_url, "before:CompensationReleased:1", *args, env=env) == -9
    with Client(store_url) as client:
        assert client.status("trip-crash-undo")["compensation_held"] == [
            "reserve_flight",
            "reserve_hotel",
        ]
        assert len(client.segments("trip-crash-undo")) == 1
    assert crash_cli(store_url, "after:CompensationReleased:1", *args, env=env) == -9
    assert status(store_url, "trip-crash-undo") == "running"
    # cancel_flight runs, and the kill loses its completion.
    assert killed_resume(store_url, "before:CompensationCompleted:1", "trip-crash-undo", env) == -9
    resume(store_url, "trip-crash-undo", env)
    with Client(store_url) as client:
        record = client.get("trip-crash-undo")
        events = list(client.history("trip-crash-undo", all_segments=True))
    assert record.status == "failed" and record.error["type"] == "BookingFailed"
    got = started(log)
    assert got["booking.cancel_flight"] == 2 and got["booking.cancel_hotel"] == 1
    assert len(keys(log, "booking.cancel_flight")) == 1  # the same undo, the same key
    undone = [e["state"] for e in events if e["type"] == "CompensationCompleted"]
    assert undone == ["reserve_flight", "reserve_hotel"]
    assert [e["type"] for e in events].count("CompensationReleased") == 1
    assert got["booking.reserve_hotel"] == 1 and got["booking.reserve_flight"] == 1
