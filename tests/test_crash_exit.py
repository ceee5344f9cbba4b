"""Crash tests for exit handlers: `tideflow run` of samples/order_notify.yaml is SIGKILLed while
a handler's activity runs (from outside, mid-activity) and at the commit boundaries around the
handlers (from inside); `tideflow resume` then finishes the run. The handler completes once
(its interrupted attempt runs again with the same idempotency key), the next handler runs, and
the outcome is the uninterrupted one (crash_util.check_recovery)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from crash_util import SAMPLES, Cli, Crash, check_recovery, history, kill, read_log, wait_until

pytestmark = pytest.mark.slow

RUN = "crash-exit"
DECLINED = ("order_notify.yaml", "order_notify_declined.json")  # failure handler, then always
SHIPPED = ("order_notify.yaml", "order_notify.json")  # success handler, then always

Reference = Callable[[tuple[str, str]], Crash]


def _paths(sample: tuple[str, str]) -> tuple[Path, Path]:
    return SAMPLES / sample[0], SAMPLES / "inputs" / sample[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
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


def _resume(cli: Cli) -> Crash:
    crash = Crash(log_before=read_log(cli.log), history_before=history(cli.db, RUN))
    crash.result = cli.resume(RUN)
    crash.log_after = read_log(cli.log)[len(crash.log_before) :]
    crash.history_after = history(cli.db, RUN)
    return crash


@pytest.mark.parametrize(
    ("sample", "activity", "state"),
    [(DECLINED, "notify.send", "alert"), (SHIPPED, "notify.send", "receipt")],
    ids=["failure-handler", "success-handler"],
)
def test_kill_while_a_handler_activity_runs(
    tmp_path: Path,
    store_url: str,
    reference: Reference,
    sample: tuple[str, str],
    activity: str,
    state: str,
) -> None:
    """On every configured store."""
    cli = Cli(db=store_url, log=tmp_path / "log.jsonl", delay=0.4)
    proc = cli.spawn(*cli.start_args(*_paths(sample), RUN))
    try:
        wait_until(
            lambda: any(line["activity"] == activity for line in read_log(cli.log)),
            30,
            f"{activity} to start",
            proc,
        )
    finally:
        kill(proc)
    crash = _resume(cli)
    in_flight = [line for line in crash.log_before if line["activity"] == activity]
    assert [line["event"] for line in in_flight] == ["start"], "the kill did not land mid-handler"
    check_recovery(crash, reference(sample), RUN)
    # The handler's activity ran to its end once, with the key of the interrupted attempt; the
    # audit (always) ran once after it.
    again = [(line["activity"], line["event"], line["idempotency_key"]) for line in crash.log_after]
    key = in_flight[0]["idempotency_key"]
    assert again[:2] == [(activity, "start", key), (activity, "end", key)]
    assert [a for a, event, _ in again if event == "end"] == [activity, "audit.record"]
    events = crash.history_after
    types = [e["type"] for e in events]
    assert "ActivityInterrupted" in types
    assert types.count("ExitHandlerStarted") == 2
    assert types.count("ExitHandlerCompleted") == 2
    assert [e["state"] for e in events if e["type"] == "ActivityInterrupted"] == [state]


@pytest.mark.parametrize(
    "point",
    [
        "after:ExitHandlerStarted:1",
        "before:ExitHandlerCompleted:1",
        "after:ExitHandlerCompleted:1",
        "before:RunFailed:1",
    ],
)
def test_kill_at_the_handlers_commit_boundaries(
    tmp_path: Path, reference: Reference, point: str
) -> None:
    cli = Cli(db=str(tmp_path / "store.db"), log=tmp_path / "log.jsonl")
    proc = cli.run(*cli.start_args(*_paths(DECLINED), RUN), crash=point)
    assert proc.returncode == -9, f"{point} never reached (exit {proc.returncode}):\n{proc.stderr}"
    crash = _resume(cli)
    check_recovery(crash, reference(DECLINED), RUN)
    assert crash.result["status"] == "failed"
    assert crash.result["error"]["type"] == "PaymentDeclined"
