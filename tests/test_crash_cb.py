"""SIGKILL crash tests of the callback wait (`completion: callback`): the worker dies while the
three approval branches wait for their callbacks, the tokens are completed from another
process while no worker runs, and `tideflow resume` finishes the run exactly once: each
approver's activity ran once, each callback was applied once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli
from crash_util import Cli, history, kill, peek_events, read_log, wait_until
from run_helpers import assert_clean
from test_samples_cb import APPROVERS, SAMPLE, tokens

RUN = "purchase-crash"


def _cli(tmp_path: Path, db: str | None = None) -> Cli:
    return Cli(db=db or str(tmp_path / "store.db"), log=tmp_path / "activities.log")


def _start_args(cli: Cli, outbox: Path, tmp_path: Path) -> list[str]:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"request_id": "R-9", "outbox": str(outbox)}))
    return cli.start_args(SAMPLE, input_file, RUN)


def _waiting(db: str) -> int:
    return sum(1 for _, type_, _ in peek_events(db, RUN) if type_ == "CallbackWaiting")


def _check_exactly_once(cli: Cli) -> None:
    events = history(cli.db, RUN)
    types = Counter(e["type"] for e in events)
    assert types["RunCompleted"] == 1 and types["CallbackReceived"] == 3
    assert Counter(e["state"] for e in events if e["type"] == "CallbackReceived") == Counter(
        APPROVERS
    )
    ran = [line for line in read_log(cli.log) if line["activity"] == "approval.request_callback"]
    assert Counter(line["event"] for line in ran) == {"start": 3, "end": 3}, ran


def test_kill_while_waiting_then_complete_from_another_process(tmp_path: Path) -> None:
    cli, outbox = _cli(tmp_path), tmp_path / "outbox"
    proc = cli.spawn(*_start_args(cli, outbox, tmp_path))
    try:
        wait_until(lambda: _waiting(cli.db) == 3, 30, "three callback waits", proc)
    finally:
        kill(proc)
    sent = tokens(outbox)
    for approver in APPROVERS:  # no worker runs now: each completion is stored, committed
        done = run_cli(
            "complete", sent[approver], "--result", json.dumps({"by": approver}), "--db", cli.db
        )
        assert_clean(done, 0)
    assert _waiting(cli.db) == 3 and not any(
        type_ == "CallbackReceived" for _, type_, _ in peek_events(cli.db, RUN)
    )
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    assert result["output"]["answers"] == [{"by": a} for a in APPROVERS]
    _check_exactly_once(cli)


@pytest.mark.parametrize("point", ["after:CallbackReceived:1", "before:CallbackReceived:2"])
def test_kill_while_applying_callbacks(point: str, store_url: str, tmp_path: Path) -> None:
    """The worker SIGKILLs itself right after (or before) the step that applies a callback;
    the completions not applied yet wait in the store and resume applies each once."""
    cli, outbox = _cli(tmp_path, store_url), tmp_path / "outbox"
    proc = cli.spawn(*_start_args(cli, outbox, tmp_path), crash=point)
    try:
        wait_until(lambda: bool(tokens(outbox)), 30, "the three tokens", proc)
        sent = tokens(outbox)
        wait_until(
            lambda: sum(e["type"] == "CallbackWaiting" for e in history(cli.db, RUN)) == 3,
            30,
            "three callback waits",
            proc,
        )
        for approver in APPROVERS:
            assert_clean(run_cli("complete", sent[approver], "--result", "1", "--db", cli.db), 0)
        proc.wait(timeout=30)
        assert proc.returncode == -9, "the crash hook did not fire"
    finally:
        kill(proc)
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    _check_exactly_once(cli)
