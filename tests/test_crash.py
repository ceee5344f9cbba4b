"""Crash tests: `tideflow run` is SIGKILLed at many points, then `tideflow resume` finishes the run.

After every crash and resume (`crash_util.check_recovery`):

- the run ends with the same status, output and error as an uninterrupted run;
- an attempt whose outcome was committed before the kill never runs again;
- an attempt that was running (or had just ended, its outcome not yet committed) runs again
  with the same idempotency key and attempt number: the only allowed second execution;
- every side effect of the uninterrupted run happened, with the same idempotency keys, and
  nothing else did;
- compensations ran exactly once each, newest first;
- the history equals the uninterrupted one apart from ActivityInterrupted/ActivityStarted.

Kill points: every commit boundary of `order` (with its durable 1 s sleep) and of the
`booking_saga` whose payment fails (so compensations run), both right after a transaction
commits and right before it is written; a kill from outside in the middle of an activity and of
a compensation (the sample activities' delay keeps them in flight); a kill during the sleep; a
kill during a retry backoff; a second crash during the recovery; parallel map iterations in
flight (`fanout`); child runs in flight (`parent_child`).

"Compensations ran exactly once each" has the same one exception as every activity: a
compensation that had ended but whose completion was not yet committed runs once more.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from crash_util import (
    SAMPLES,
    Cli,
    Crash,
    check_recovery,
    history,
    kill,
    peek_events,
    read_log,
    wait_until,
)

pytestmark = pytest.mark.slow

RUN = "crash-run"
ORDER = ("order.yaml", "order.json")
FLAKY = ("order.yaml", "order_flaky.json")
SAGA = ("booking_saga.yaml", "booking_payment_fails.json")
SLEEP_SECONDS = 1.0  # the `settle` sleep of samples/order.yaml


def _paths(sample: tuple[str, str]) -> tuple[Path, Path]:
    return SAMPLES / sample[0], SAMPLES / "inputs" / sample[1]


Reference = Callable[[tuple[str, str]], Crash]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted run per sample and input (same run id, so the same keys), cached."""
    cache: dict[tuple[str, str], Crash] = {}

    def get(sample: tuple[str, str]) -> Crash:
        if sample not in cache:
            tmp = tmp_path_factory.mktemp("reference")
            cli = Cli(db=str(tmp / "store.db"), log=tmp / "log.jsonl")
            proc = cli.run(*cli.start_args(*_paths(sample), RUN))
            assert proc.returncode in (0, 1), proc.stderr
            cache[sample] = Crash(
                log_before=read_log(cli.log),
                history_before=[],
                history_after=history(cli.db, RUN),
                result=json.loads(proc.stdout),
            )
        return cache[sample]

    return get


def crash_then_resume(
    cli: Cli, sample: tuple[str, str], crash: str, *, resume_with_run: bool = False
) -> Crash:
    """Run with a self-SIGKILL at `crash` (after|before:EVENT:N), then resume."""
    proc = cli.run(*cli.start_args(*_paths(sample), RUN), crash=crash)
    assert proc.returncode == -9, (
        f"the crash point {crash} was never reached (exit {proc.returncode}):\n{proc.stderr}"
    )
    return resume_after_kill(cli, sample, resume_with_run=resume_with_run)


def resume_after_kill(cli: Cli, sample: tuple[str, str], *, resume_with_run: bool = False) -> Crash:
    crash = Crash(log_before=read_log(cli.log), history_before=history(cli.db, RUN))
    if resume_with_run:
        # Re-issuing the same `run --id` picks the existing run up instead of starting anew.
        proc = cli.run(*cli.start_args(*_paths(sample), RUN))
        assert proc.returncode in (0, 1), proc.stderr
        crash.result = json.loads(proc.stdout)
    else:
        crash.result = cli.resume(RUN)
    crash.log_after = read_log(cli.log)[len(crash.log_before) :]
    crash.history_after = history(cli.db, RUN)
    return crash


def _cli(tmp_path: Path, db: str | None = None, delay: float | None = None) -> Cli:
    return Cli(db=db or str(tmp_path / "store.db"), log=tmp_path / "log.jsonl", delay=delay)


# Every commit boundary, named by an event of the transaction: `after` = killed right after it
# committed; `before` = killed right before it was written. The saga list covers the first
# boundaries (run created, first activity started), which are the same in both workflows;
# `after:TimerStarted:1` (sleeping) is test_sleep_survives_kill_without_restarting, and
# `before:CompensationCompleted:1` is test_kill_on_every_store.
ORDER_POINTS = [
    "before:ActivityScheduled:1",  # claimed, charge not yet scheduled
    "before:ActivityCompleted:1",  # charge ran to its end; its completion is lost
    "after:ActivityCompleted:1",  # charge recorded; reserve started
    "before:ActivityCompleted:2",  # reserve ran; lost
    "before:TimerFired:1",  # the sleep ended; the firing is lost
    "after:TimerFired:1",  # fired; choice, set, ship started (StateEntered, ActivityScheduled)
    "before:ActivityCompleted:3",  # ship ran; lost together with RunCompleted
    "after:RunCompleted:1",  # everything recorded: resume just reports
]
SAGA_POINTS = [
    "after:RunStarted:1",  # run created (RunStarted, StateEntered)
    "after:ActivityStarted:1",  # hotel scheduled and marked started, not yet launched
    "before:ActivityCompleted:1",
    "after:StateEntered:2",  # hotel recorded, flight started
    "before:ActivityCompleted:2",
    "after:ActivityCompleted:2",  # flight recorded, charge started
    "before:ActivityFailed:1",  # the charge was declined; the failure is lost
    "after:ActivityFailed:1",  # failure, ErrorCaught, fail state, first CompensationStarted
    "after:CompensationStarted:2",  # cancel_flight recorded, cancel_hotel started
    "before:CompensationCompleted:2",  # cancel_hotel ran; lost with RunFailed
    "after:CompensationCompleted:2",  # RunFailed recorded
]


@pytest.mark.parametrize("point", ORDER_POINTS)
def test_order_survives_kill(point: str, tmp_path: Path, reference: Reference) -> None:
    crash = crash_then_resume(_cli(tmp_path), ORDER, point)
    check_recovery(crash, reference(ORDER), RUN)
    assert crash.result["status"] == "completed"


@pytest.mark.parametrize("point", SAGA_POINTS)
def test_saga_survives_kill(point: str, tmp_path: Path, reference: Reference) -> None:
    crash = crash_then_resume(_cli(tmp_path), SAGA, point)
    check_recovery(crash, reference(SAGA), RUN)
    assert crash.result["error"]["type"] == "BookingFailed"
    comps = [
        line["activity"]
        for line in crash.log_before + crash.log_after
        if line["event"] == "end" and "cancel" in line["activity"]
    ]
    # Newest first; a compensation whose completion was lost in the kill runs once more.
    assert list(dict.fromkeys(comps)) == ["booking.cancel_flight", "booking.cancel_hotel"]


def test_kill_on_every_store(store_url: str, tmp_path: Path, reference: Reference) -> None:
    """cancel_flight ran, its completion is lost: it runs again, then cancel_hotel."""
    crash = crash_then_resume(_cli(tmp_path, db=store_url), SAGA, "before:CompensationCompleted:1")
    check_recovery(crash, reference(SAGA), RUN)


def test_rerunning_the_same_run_command_recovers(tmp_path: Path, reference: Reference) -> None:
    crash = crash_then_resume(
        _cli(tmp_path), SAGA, "after:ActivityCompleted:1", resume_with_run=True
    )
    check_recovery(crash, reference(SAGA), RUN)


def test_kill_mid_activity(tmp_path: Path, reference: Reference) -> None:
    """SIGKILL from outside while `inventory.reserve` is in flight (started, not ended)."""
    cli = _cli(tmp_path, delay=0.4)
    proc = cli.spawn(*cli.start_args(*_paths(ORDER), RUN))
    try:
        wait_until(
            lambda: any(line["activity"] == "inventory.reserve" for line in read_log(cli.log)),
            20,
            "reserve to start",
            proc,
        )
    finally:
        kill(proc)
    crash = resume_after_kill(cli, ORDER)
    in_flight = [line for line in crash.log_before if line["activity"] == "inventory.reserve"]
    assert [line["event"] for line in in_flight] == ["start"], "the kill did not land mid-activity"
    check_recovery(crash, reference(ORDER), RUN)
    again = [line for line in crash.log_after if line["activity"] == "inventory.reserve"]
    assert [(line["event"], line["attempt"], line["idempotency_key"]) for line in again] == [
        ("start", 1, in_flight[0]["idempotency_key"]),
        ("end", 1, in_flight[0]["idempotency_key"]),
    ]
    assert "ActivityInterrupted" in [e["type"] for e in crash.history_after]


def test_kill_mid_compensation(tmp_path: Path, reference: Reference) -> None:
    """SIGKILL from outside while the first compensation (`cancel_flight`) is in flight."""
    cli = _cli(tmp_path, delay=0.3)
    proc = cli.spawn(*cli.start_args(*_paths(SAGA), RUN))
    try:
        wait_until(
            lambda: any(line["activity"] == "booking.cancel_flight" for line in read_log(cli.log)),
            20,
            "cancel_flight to start",
            proc,
        )
    finally:
        kill(proc)
    crash = resume_after_kill(cli, SAGA)
    assert [
        line["event"] for line in crash.log_before if line["activity"] == "booking.cancel_flight"
    ] == ["start"]
    check_recovery(crash, reference(SAGA), RUN)
    after = [(line["activity"], line["event"]) for line in crash.log_after]
    assert after == [
        ("booking.cancel_flight", "start"),
        ("booking.cancel_flight", "end"),
        ("booking.cancel_hotel", "start"),
        ("booking.cancel_hotel", "end"),
    ]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_kill_during_sleep_fires_overdue_timer_at_once(
    tmp_path: Path, reference: Reference
) -> None:
    """Killed while sleeping; the sleep comes due while nothing runs; the resumed run fires it
    at once instead of sleeping again."""
    cli = _cli(tmp_path)
    proc = cli.spawn(*cli.start_args(*_paths(ORDER), RUN))
    try:
        wait_until(
            lambda: any(t == "TimerStarted" for _, t, _ in peek_events(cli.db, RUN)),
            20,
            "the sleep to start",
            proc,
        )
    finally:
        kill(proc)
    started = next(json.loads(p) for _, t, p in peek_events(cli.db, RUN) if t == "TimerStarted")
    due = _ts(started["due"])
    time.sleep(max(0.0, due - time.time()) + 0.2)
    crash = resume_after_kill(cli, ORDER)
    check_recovery(crash, reference(ORDER), RUN)
    # Fired, not slept again: the one timer, no earlier than its due time (a restarted sleep
    # starts a second timer and enters its state again). How soon after the resume it fires
    # depends on the machine's load, so no bound in seconds is asserted.
    (timer,) = [e for e in crash.history_after if e["type"] == "TimerStarted"]
    fired = next(e for e in crash.history_after if e["type"] == "TimerFired")
    assert fired["payload"]["timer"] == timer["payload"]["timer"] == started["timer"]
    assert fired["time"] >= due
    entered = [e for e in crash.history_after if e["type"] == "StateEntered"]
    assert [e["state"] for e in entered].count(timer["state"]) == 1


def test_sleep_survives_kill_without_restarting(
    store_url: str, tmp_path: Path, reference: Reference
) -> None:
    """Killed right after the sleep started, resumed half-way through it: the sleep keeps its
    timer and due time instead of starting again."""
    cli = _cli(tmp_path, db=store_url)
    proc = cli.run(*cli.start_args(*_paths(ORDER), RUN), crash="after:TimerStarted:1")
    assert proc.returncode == -9, proc.stderr
    time.sleep(SLEEP_SECONDS / 2)
    crash = resume_after_kill(cli, ORDER)
    check_recovery(crash, reference(ORDER), RUN)
    (started,) = [e for e in crash.history_after if e["type"] == "TimerStarted"]
    fired = next(e for e in crash.history_after if e["type"] == "TimerFired")
    due = _ts(started["payload"]["due"])
    # Kept, not restarted: one timer (a restarted sleep starts a second one, and enters its
    # state again), fired no earlier than its due time. How late it fires depends only on the
    # machine's load, so no upper bound in seconds is asserted here.
    assert fired["payload"]["timer"] == started["payload"]["timer"]
    assert fired["time"] >= due
    entered = [e for e in crash.history_after if e["type"] == "StateEntered"]
    assert [e["state"] for e in entered].count(started["state"]) == 1


def test_kill_during_retry_backoff(tmp_path: Path, reference: Reference) -> None:
    """`ship` fails twice (flaky: 2); the worker dies while waiting to retry. The resumed run
    keeps the attempt count and the backoff: attempts 1, 2, 3 once each, one key."""
    crash = crash_then_resume(_cli(tmp_path), FLAKY, "after:RetryScheduled:1")
    check_recovery(crash, reference(FLAKY), RUN)
    ship = [
        line for line in crash.log_before + crash.log_after if line["activity"] == "shipping.ship"
    ]
    assert [(line["event"], line["attempt"]) for line in ship] == [
        ("start", 1),
        ("end", 1),
        ("start", 2),
        ("end", 2),
        ("start", 3),
        ("end", 3),
    ]
    assert len({line["idempotency_key"] for line in ship}) == 1
    assert [line for line in crash.log_before if line["activity"] == "shipping.ship"] == ship[:2]
    retry = next(e for e in crash.history_after if e["type"] == "RetryScheduled")
    second = next(
        e
        for e in crash.history_after
        if e["type"] == "ActivityStarted" and e["state"] == "ship" and e["attempt"] == 2
    )
    assert second["time"] >= _ts(retry["payload"]["due"]) - 0.01


def test_crash_during_recovery(tmp_path: Path, reference: Reference) -> None:
    """The resume itself is killed (reserve ran, its completion lost); a second resume finishes."""
    cli = _cli(tmp_path)
    first = cli.run(*cli.start_args(*_paths(ORDER), RUN), crash="after:ActivityStarted:1")
    assert first.returncode == -9
    second = cli.run(
        "resume",
        RUN,
        "--activities",
        str(SAMPLES / "activities.py"),
        "--db",
        cli.db,
        "--json",
        crash="before:ActivityCompleted:2",
    )
    assert second.returncode == -9, second.stderr
    crash = resume_after_kill(cli, ORDER)
    assert not [
        e
        for e in crash.history_before
        if e["type"] == "ActivityCompleted" and e["state"] == "reserve"
    ]
    check_recovery(crash, reference(ORDER), RUN)
    reserve_ok = [
        line
        for line in crash.log_before + crash.log_after
        if line["activity"] == "inventory.reserve" and line["event"] == "end"
    ]
    assert len(reserve_ok) == 2  # the one execution whose completion was lost, and the redo
    assert len({line["idempotency_key"] for line in reserve_ok}) == 1


def test_kill_with_parallel_attempts_in_flight(tmp_path: Path, reference: Reference) -> None:
    """fanout: several map iterations and branches are running when the kill lands; every one
    of them is restarted with its own key, none that was recorded runs again."""
    sample = ("fanout.yaml", "fanout.json")
    crash = crash_then_resume(_cli(tmp_path), sample, "before:ActivityCompleted:5")
    check_recovery(crash, reference(sample), RUN, ordered=False)
    assert "ActivityInterrupted" in [e["type"] for e in crash.history_after]


def test_kill_with_child_runs_in_flight(tmp_path: Path, reference: Reference) -> None:
    """parent_child: killed while two child runs are started; the resume drives the parent and
    its children to the same output, each pick done once per child (or redone only when its
    completion was not recorded)."""
    sample = ("parent_child.yaml", "parent_child.json")
    cli = _cli(tmp_path)
    proc = cli.run(*cli.start_args(*_paths(sample), RUN), crash="after:ChildStarted:2")
    assert proc.returncode == -9, proc.stderr
    before = read_log(cli.log)
    recorded = {
        line["run_id"]
        for line in before
        if any(e["type"] == "ActivityCompleted" for e in history(cli.db, line["run_id"]))
    }
    result = cli.resume(RUN)
    ref = reference(sample)
    assert (result["status"], result["output"]) == (ref.result["status"], ref.result["output"])
    log_all = read_log(cli.log)
    done = Counter(
        (line["run_id"], line["idempotency_key"]) for line in log_all if line["event"] == "end"
    )
    want = {
        (line["run_id"], line["idempotency_key"])
        for line in ref.log_before
        if line["event"] == "end"
    }
    assert set(done) == want
    for (run_id, _key), count in done.items():
        assert count == 1 or (count == 2 and run_id not in recorded), (run_id, count)
