"""Crash tests for continue-as-new: `tideflow run` of the poller sample is SIGKILLed right before
and right after the commit that starts a new segment (and at the first step of the new
segment), then `tideflow resume` finishes the run. After the resume exactly one of each segment
exists, nothing is lost, and the history is an uninterrupted run's (crash_util.check_recovery)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from crash_util import SAMPLES, Cli, Crash, check_recovery, history, read_log

from interpreter import Client

pytestmark = pytest.mark.slow

RUN = "crash-poller"
POLLER = (SAMPLES / "poller.yaml", SAMPLES / "inputs" / "poller.json")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    tmp = tmp_path_factory.mktemp("reference")
    cli = Cli(db=str(tmp / "store.db"), log=tmp / "log.jsonl")
    proc = cli.run(*cli.start_args(*POLLER, RUN))
    assert proc.returncode == 0, proc.stderr
    return Crash(
        log_before=read_log(cli.log),
        history_before=[],
        history_after=history(cli.db, RUN),
        result=json.loads(proc.stdout),
    )


POINTS = [
    "before:ContinuedAsNew:1",  # segment 1's last poll recorded; the switch is lost
    "after:ContinuedAsNew:1",  # the switch committed: segment 2 started, its first state not run
    "after:ActivityStarted:4",  # segment 2's first poll scheduled and started
    "before:ContinuedAsNew:2",
    "after:RunStarted:3",  # the second switch, named by the new segment's first event
]


@pytest.mark.parametrize("point", POINTS)
def test_poller_survives_kill_around_the_switch(
    point: str, tmp_path: Path, reference: Crash
) -> None:
    crash_and_check(
        Cli(db=str(tmp_path / "store.db"), log=tmp_path / "log.jsonl"), point, reference
    )


@pytest.mark.parametrize("point", ["before:ContinuedAsNew:1", "after:ContinuedAsNew:1"])
def test_kill_around_the_switch_on_every_store(
    point: str, store_url: str, tmp_path: Path, reference: Crash
) -> None:
    crash_and_check(Cli(db=store_url, log=tmp_path / "log.jsonl"), point, reference)


def crash_and_check(cli: Cli, point: str, reference: Crash) -> None:
    proc = cli.run(*cli.start_args(*POLLER, RUN), crash=point)
    assert proc.returncode == -9, f"{point} never reached ({proc.returncode}):\n{proc.stderr}"
    crash = Crash(log_before=read_log(cli.log), history_before=history(cli.db, RUN))
    crash.result = cli.resume(RUN)
    crash.log_after = read_log(cli.log)[len(crash.log_before) :]
    crash.history_after = history(cli.db, RUN)
    check_recovery(crash, reference, RUN)

    counts = Counter(e["type"] for e in crash.history_after)
    assert (counts["ContinuedAsNew"], counts["RunStarted"], counts["RunCompleted"]) == (2, 3, 1)
    with Client(cli.db) as client:
        chain = client.segments(RUN)
        assert [s.segment for s in chain] == [1, 2, 3]
        starts = [e["seq"] for e in crash.history_after if e["type"] == "RunStarted"]
        assert [s.first_seq for s in chain] == starts
        assert client.get(RUN).input == {
            "job": "export-42",
            "finish_after": 8,
            "per_segment": 3,
            "checked": 6,
        }
