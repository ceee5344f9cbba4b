"""SIGKILL crash tests for the clock and the wait for several signals (samples/deadline.yaml).

- The clock: killed before the worker ran the first state (right after the run was created, or
  right before the worker's first step was written), the resumed run still sees `now` as the
  recorded time the state was entered, not the time of the resume: the deadline, the day and
  the message are those the uninterrupted run would have computed.
- An activity whose input was computed from the clock and whose completion was lost runs again
  with the same input.
- Killed while waiting for `confirm` or `cancel` until a deadline: signals sent while nothing
  runs are delivered on resume (the first one wins, the other stays buffered), and the
  deadline timer keeps its due time.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crash_util import SAMPLES, Cli, history, read_log

RUN = "clock-crash"
DEADLINE = SAMPLES / "deadline.yaml"


def _cli(tmp_path: Path, db: str | None = None) -> Cli:
    return Cli(db=db or str(tmp_path / "store.db"), log=tmp_path / "log.jsonl")


def _input(tmp_path: Path, **data: Any) -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"order_id": "C-3", "zone": "Asia/Tokyo", **data}), "utf-8")
    return path


def _entered(events: list[dict[str, Any]], state: str) -> list[str]:
    return [
        e["payload"]["at"] for e in events if e["type"] == "StateEntered" and e["state"] == state
    ]


def _killed(cli: Cli, input_file: Path, crash: str) -> None:
    proc = cli.run(*cli.start_args(DEADLINE, input_file, RUN), crash=crash)
    assert proc.returncode == -9, f"{crash} was never reached ({proc.returncode}):\n{proc.stderr}"


@pytest.mark.parametrize("point", ["after:StateEntered:1", "before:StateEntered:2"])
def test_a_resumed_run_sees_the_recorded_clock(tmp_path: Path, point: str) -> None:
    cli = _cli(tmp_path)
    _killed(cli, _input(tmp_path, hold_for="1s"), point)
    before = history(cli.db, RUN)
    [accept_at] = _entered(before, "accept")
    assert not _entered(before, "hold"), "the kill came after the first state had run"
    time.sleep(0.5)  # the resume runs `accept` well after it was entered
    resumed_at = time.time()
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    out = result["output"]
    accepted = datetime.fromisoformat(out["accepted_at"])
    assert out["accepted_at"] == accept_at  # `now` in `accept`: the recorded entry time
    assert accepted.timestamp() < resumed_at - 0.5 + 0.05
    assert out["deadline"] == (accepted + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    tokyo = accepted.astimezone(datetime.fromisoformat("2000-01-01T00:00:00+09:00").tzinfo)
    assert out["day"] == f"{tokyo.date().isoformat()}T00:00:00+09:00"
    after = history(cli.db, RUN)
    assert _entered(after, "accept") == [accept_at]
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))


def test_an_interrupted_activity_keeps_the_input_computed_from_the_clock(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    _killed(cli, _input(tmp_path, hold_for="1s"), "before:ActivityCompleted:1")
    before = history(cli.db, RUN)
    [scheduled] = [e for e in before if e["type"] == "ActivityScheduled"]
    assert [line["event"] for line in read_log(cli.log)][:1] == ["start"]
    time.sleep(0.3)
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    assert result["output"]["message"] == scheduled["payload"]["input"]["message"]
    after = history(cli.db, RUN)
    assert [e["type"] for e in after].count("ActivityInterrupted") == 1
    [again] = [e for e in after if e["type"] == "ActivityScheduled"]
    assert again == scheduled
    hold_runs = [line for line in read_log(cli.log) if line["activity"] == "deadline.hold"]
    assert len({line["idempotency_key"] for line in hold_runs}) == 1


def test_a_wait_for_several_signals_survives_a_kill(store_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db=store_url)
    _killed(cli, _input(tmp_path, hold_for="1h"), "after:TimerStarted:1")
    before = history(cli.db, RUN)
    [timer] = [e for e in before if e["type"] == "TimerStarted"]
    assert timer["state"] == "answer"
    shown = cli.run("status", RUN, "--db", cli.db)
    assert shown.returncode == 0, shown.stderr
    assert "answer (waiting for one of the signals confirm, cancel)" in shown.stdout
    shown = cli.run("status", RUN, "--db", cli.db, "--json")
    [current] = json.loads(shown.stdout)["current"]
    assert (current["state"], current["signal"]) == ("answer", ["confirm", "cancel"])
    for name, data in (("cancel", {"reason": "changed my mind"}), ("confirm", {"by": "kai"})):
        proc = cli.run("signal", RUN, name, "--data", json.dumps(data), "--db", cli.db)
        assert proc.returncode == 0, proc.stderr
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    assert result["output"]["status"] == "cancelled"
    after = history(cli.db, RUN)
    received = [e["payload"]["signal"] for e in after if e["type"] == "SignalReceived"]
    assert received == ["cancel"]
    assert [e for e in after if e["type"] == "TimerStarted"] == [timer]  # not restarted
    assert timer["payload"]["due"] == result["output"]["deadline"]
    from interpreter.store import open_store

    store = open_store(cli.db)
    try:
        items, _ = store.read_inbox(RUN)
    finally:
        store.close()
    assert [(i.name, i.payload) for i in items] == [("confirm", {"by": "kai"})]
