"""Crash tests of detached children and completion rules: the real CLI SIGKILLs itself at a
transaction boundary (crash_util's hook), then `tideflow resume` finishes the run.

- Detached children: killed right after the parent started a detached child, and right before
  / right after the commit in which the parent ends and applies its parent-close policy
  (terminate, and cancel): after the resume each child exists once, the policy was applied
  exactly once (one ParentClosePolicyApplied per child; the child terminated or cancelled
  once), and the abandoned child runs on.
- A race: killed before and after the commit that decides it; the resumed run decides the same
  way, once, with the same output.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crash_util import SAMPLES, Cli, history, read_log

pytestmark = pytest.mark.slow

RUN = "crash-fan"


def _cli(tmp_path: Path) -> Cli:
    return Cli(db=str(tmp_path / "store.db"), log=tmp_path / "log.jsonl")


def _signup(tmp_path: Path, policy: str) -> Path:
    """samples/detached.yaml, with the reminder's policy set to `policy`."""
    text = (SAMPLES / "detached.yaml").read_text(encoding="utf-8")
    if policy != "terminate":
        text = text.replace("parent_close: terminate", f"parent_close: {policy}")
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "welcome_drip.yaml").write_text((SAMPLES / "welcome_drip.yaml").read_text())
    path = folder / "detached.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run_killed(cli: Cli, workflow: Path, input_name: str, crash: str) -> None:
    proc = cli.run(
        *cli.start_args(workflow, SAMPLES / "inputs" / f"{input_name}.json", RUN), crash=crash
    )
    assert proc.returncode == -9, (
        f"the crash point {crash} was never reached (exit {proc.returncode}):\n{proc.stderr}"
    )


def _types(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["type"] for e in events)


@pytest.mark.parametrize("policy", ["terminate", "cancel"])
@pytest.mark.parametrize(
    "point",
    [
        "before:ChildStarted:1",  # the account was created; starting the children is lost
        "after:ChildStarted:1",  # both children were created with the parent's step
        "before:ParentClosePolicyApplied:1",  # the parent's end (and its policies) lost
        "after:ParentClosePolicyApplied:1",  # the end and the policies are written
    ],
)
def test_detached_children_survive_kill(tmp_path: Path, point: str, policy: str) -> None:
    cli = _cli(tmp_path)
    workflow = _signup(tmp_path, policy)
    _run_killed(cli, workflow, "detached", point)
    result = cli.resume(RUN)
    drip, reminder = f"{RUN}.start_drip", f"{RUN}.start_reminder"
    assert result["status"] == "completed", result
    assert result["output"] == {"account": "acct-ada", "drip": drip, "reminder": reminder}

    parent = history(cli.db, RUN)
    counts = _types(parent)
    assert counts["ChildStarted"] == 2 and counts["RunCompleted"] == 1
    applied = [e["payload"] for e in parent if e["type"] == "ParentClosePolicyApplied"]
    assert applied == [
        {"child": drip, "policy": "abandon"},
        {"child": reminder, "policy": policy},
    ]
    from interpreter.store import open_store

    store = open_store(cli.db)
    try:
        runs = {r.id: r for r in store.list_runs(parent_id=RUN)}
    finally:
        store.close()
    assert set(runs) == {drip, reminder}
    assert runs[drip].status == "running"  # abandoned: asleep for a day
    if runs[reminder].status == "running":
        # Asked to cancel in the parent's last commit, just before the kill: any worker (here
        # a resume of the child) carries the request out.
        assert policy == "cancel"
        assert cli.resume(reminder)["status"] == "cancelled"
        runs[reminder] = _get(cli, reminder)
    reminder_events = _types(history(cli.db, reminder))
    if policy == "terminate":
        assert runs[reminder].status == "terminated"
        assert reminder_events["RunTerminated"] == 1
    else:
        assert runs[reminder].status == "cancelled"
        assert reminder_events["CancelRequested"] == 1
        assert reminder_events["RunCancelled"] == 1
    # The drip's first mail went out at most once per attempt cut off by the kill, with one
    # key (none yet when the kill came before a worker reached the drip: it runs on later).
    mails = [
        line
        for line in read_log(cli.log)
        if line["run_id"] == drip and line["event"] == "end" and line["outcome"] == "ok"
    ]
    assert len(mails) <= 2 and len({m["idempotency_key"] for m in mails}) <= 1
    ready = [
        line
        for line in read_log(cli.log)
        if line["run_id"] == RUN and line["state"] == "ready_mail" and line["event"] == "end"
    ]
    assert 1 <= len(ready) <= 2


def _get(cli: Cli, run_id: str) -> Any:
    from interpreter.store import open_store

    store = open_store(cli.db)
    try:
        return store.get_run(run_id)
    finally:
        store.close()


@pytest.mark.parametrize("point", ["before:CompletionDecided:1", "after:CompletionDecided:1"])
def test_race_survives_kill(tmp_path: Path, point: str) -> None:
    cli = _cli(tmp_path)
    _run_killed(cli, SAMPLES / "race.yaml", "race", point)
    result = cli.resume(RUN)
    assert result["status"] == "completed", result
    assert result["output"]["quote"] == {"provider": "fast", "price": 14}
    assert result["output"]["mirror"] == "ok-asia"
    events = history(cli.db, RUN)
    decided = [
        (e["state"], e["payload"]["winner"]) for e in events if e["type"] == "CompletionDecided"
    ]
    assert decided == [("quotes", 0), ("download", 2)]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert json.dumps(result)  # one JSON answer
