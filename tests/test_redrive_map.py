"""Retry and fork of runs inside a map state, on both stores: the iterations that completed keep
their results (their activities are not run again), the failed one runs again, and the map's
items and results, rebuilt whole by the retry, are written as map rows by the next commit, so a
worker that claims the run later (after a SIGKILL) finds them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from run_helpers import write_workflow
from test_crash_redrive import crash_cli
from test_redrive import RD_ACTIVITIES, calls, cli

from interpreter import Client
from interpreter.replay import replay

# Each item runs `work`; the item `input.fail_at` also runs `risky` (rd.fragile: broken until
# the fix). At most 3 iterations at a time.
MAPPED = """
name: mapped
states:
  before:
    type: activity
    activity: rd.step
    result: before
    next: each
  each:
    type: map
    items: "{{ input['items'] }}"
    as: n
    concurrency: 3
    states:
      work:
        type: activity
        activity: rd.step
        input: {n: "{{ n }}"}
        result: work
        next: pick
      pick:
        type: choice
        choices:
          - when: "{{ n == input.fail_at }}"
            next: risky
        default: item_done
      risky:
        type: activity
        activity: rd.fragile
        result: risky
        next: item_done
      item_done:
        type: succeed
        output: "{{ vars.work.input.n * 10 }}"
    result: tens
    next: after
  after:
    type: activity
    activity: rd.step
    input: "{{ vars.tens }}"
    result: after
    end: true
output: {tens: "{{ vars.after.input }}"}
"""


def _env(log: Path, broken: bool) -> dict[str, str]:
    return {"TIDEFLOW_RD_LOG": str(log), "TIDEFLOW_RD_BROKEN": "1" if broken else "0"}


def _failed_map(store: str, tmp_path: Path, items: int, fail_at: int) -> tuple[str, Path, Path]:
    wf = write_workflow(tmp_path, MAPPED)
    log = tmp_path / "calls.log"
    data = json.dumps({"items": list(range(1, items + 1)), "fail_at": fail_at})
    proc = cli(
        store, "run", str(wf), "--input", data, "--activities", RD_ACTIVITIES, "--json",
        env=_env(log, True),
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["status"] == "failed" and out["error"]["type"] == "Broken", proc.stderr
    return out["run_id"], log, wf


def _resume(store: str, run_id: str, log: Path) -> dict[str, Any]:
    proc = cli(
        store, "resume", run_id, "--activities", RD_ACTIVITIES, "--json", env=_env(log, False)
    )
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def _unrecorded_work(store: str, run_id: str, log: Path) -> int:
    """`work` calls of the ended run whose completion it never recorded: attempts in flight
    in other iterations when the run failed. A retry runs those again (at least once: their
    results were never kept); every recorded completion is kept."""
    with Client(store) as client:
        recorded = sum(
            1
            for e in client.history(run_id)
            if e["type"] == "ActivityCompleted" and e["state"] == "work"
        )
    return Counter(state for _, state in calls(log))["work"] - recorded


def _replays(store: str, run_id: str, wf: Path) -> bool:
    from interpreter.client import load_definition

    with Client(store) as client:
        events = list(client.history(run_id, all_segments=True))
    return replay(load_definition(wf), run_id, events).compatible


def test_retry_inside_a_map_keeps_the_completed_iterations(store_url: str, tmp_path: Path) -> None:
    run_id, log, wf = _failed_map(store_url, tmp_path, items=6, fail_at=3)
    unrecorded = _unrecorded_work(store_url, run_id, log)
    proc = cli(store_url, "retry", run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    out = _resume(store_url, run_id, log)
    assert out["status"] == "completed", out
    assert out["output"] == {"tens": [10, 20, 30, 40, 50, 60]}
    got = Counter(state for _, state in calls(log))
    # `before` once; each item's `work` once in all (those recorded before the failure were
    # kept, the others ran after the retry) plus the unrecorded ones again; `risky` failed
    # once and ran once more.
    assert got == Counter({"before": 1, "work": 6 + unrecorded, "risky": 2, "after": 1})
    assert _replays(store_url, run_id, wf)


def test_fork_from_a_state_inside_a_map_and_from_the_map(store_url: str, tmp_path: Path) -> None:
    run_id, log, _wf = _failed_map(store_url, tmp_path, items=4, fail_at=2)
    for state in ("risky", "each"):
        proc = cli(store_url, "fork", run_id, "--from", state, "--id", f"from-{state}")
        assert proc.returncode == 0, proc.stderr
        out = _resume(store_url, f"from-{state}", log)
        assert out["status"] == "completed", out
        assert out["output"] == {"tens": [10, 20, 30, 40]}
    by_run = Counter((run, state) for run, state in calls(log))
    # From `each`: every item anew. From `risky` (item 2's): the items whose `work` had not
    # completed when the original entered `risky` (how many had depends on the original's
    # timing: its history says).
    with Client(store_url) as client:
        history = list(client.history(run_id))
    cut = next(
        i for i, e in enumerate(history) if e["type"] == "StateEntered" and e["state"] == "risky"
    )
    done = sum(
        1 for e in history[:cut] if e["type"] == "ActivityCompleted" and e["state"] == "work"
    )
    assert by_run[("from-each", "work")] == 4 and by_run[("from-each", "before")] == 0
    assert by_run[("from-risky", "risky")] == 1 and by_run[("from-risky", "before")] == 0
    assert by_run[("from-risky", "work")] == 4 - done


def test_kill_after_the_retry_inside_a_map_then_resume(store_url: str, tmp_path: Path) -> None:
    """A bigger map: the retry's state holds the items and results whole; the resume that
    writes them as rows is killed after a few steps, and the next resume rebuilds the map
    from those rows and finishes it with every item's result."""
    items = 40
    run_id, log, wf = _failed_map(store_url, tmp_path, items=items, fail_at=20)
    unrecorded = _unrecorded_work(store_url, run_id, log)
    assert cli(store_url, "retry", run_id).returncode == 0
    code = crash_cli(
        store_url, "after:ActivityCompleted:3", "resume", run_id, "--activities", RD_ACTIVITIES,
        env=_env(log, False),
    )  # fmt: skip
    assert code == -9
    out = _resume(store_url, run_id, log)
    assert out["status"] == "completed", out
    assert out["output"] == {"tens": [10 * n for n in range(1, items + 1)]}
    got = Counter(state for _, state in calls(log))
    assert got["before"] == 1 and got["after"] == 1 and got["risky"] >= 2
    # Each item's work at least once; more only for attempts whose completion the failure
    # or the kill lost (at most 3 in flight at a time).
    assert items <= got["work"] <= items + unrecorded + 3
    assert _replays(store_url, run_id, wf)
