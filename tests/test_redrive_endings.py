"""`tideflow retry` of runs that ended in other ways than a step's final failure: a failed child
run, a wait that timed out, a callback wait that expired, an error of the definition (retried
onto a fixed one), and the refusal of a run that ended in its own `fail` state. Real
subprocesses and both stores; the activity log counts what really ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from run_helpers import write_workflow
from test_redrive import RD_ACTIVITIES, calls, cli

from interpreter import Client, load_activity_modules
from interpreter.replay import replay

TESTS = Path(__file__).resolve().parent
CB_ACTIVITIES = str(TESTS / "cb_activities.py")

PARENT = """
name: parent
states:
  before:
    type: activity
    activity: rd.step
    input: {n: 0}
    result: before
    next: kid
  kid:
    type: child
    workflow: kid
    input: {n: 1}
    result: kid
    next: after
  after:
    type: activity
    activity: rd.step
    result: after
    end: true
output: {kid: "{{ vars.kid }}", after: "{{ vars.after.done }}"}
"""
KID = """
name: kid
states:
  first:
    type: activity
    activity: rd.step
    result: first
    next: second
  second:
    type: activity
    activity: rd.fragile
    result: second
    end: true
output: {first: "{{ vars.first.done }}", second: "{{ vars.second.done }}"}
"""
WAITS = """
name: waits
signals:
  approve: {schema: {type: object}}
states:
  first:
    type: activity
    activity: rd.step
    result: first
    next: approval
  approval:
    type: wait
    signal: approve
    timeout: 1s
    result: decision
    next: third
  third:
    type: activity
    activity: rd.step
    input: "{{ vars.decision }}"
    result: third
    end: true
output: {third: "{{ vars.third.input }}"}
"""
TEMPLATE = """
name: template
states:
  first:
    type: activity
    activity: rd.step
    input: {n: 1}
    result: first
    next: second
  second:
    type: activity
    activity: rd.step
    input: "{{ vars.missing.value }}"
    result: second
    end: true
output: {second: "{{ vars.second.input }}"}
"""


def env(log: Path, broken: bool) -> dict[str, str]:
    return {"TIDEFLOW_RD_LOG": str(log), "TIDEFLOW_RD_BROKEN": "1" if broken else "0"}


def run_json(store: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = cli(store, *args, "--json", env=env)
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_a_failed_child_is_retried_with_its_parent(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, PARENT, "parent.yaml")
    write_workflow(tmp_path, KID, "kid.yaml")
    log = tmp_path / "calls.log"
    out = run_json(store_url, "run", str(wf), "--activities", RD_ACTIVITIES, env=env(log, True))
    assert out["status"] == "failed" and out["error"]["type"] == "ChildFailed"
    parent = out["run_id"]
    child = f"{parent}.kid"
    assert calls(log) == [(parent, "before"), (child, "first"), (child, "second")]

    proc = cli(store_url, "retry", parent, "--json")
    assert proc.returncode == 0, proc.stderr
    with Client(store_url) as client:
        assert client.get(child).status == "running"  # retried with it, in one transaction
        assert [e["type"] for e in client.history(child)][:1] == ["RunRetried"]
    out = run_json(store_url, "resume", parent, "--activities", RD_ACTIVITIES, env=env(log, False))
    assert out["status"] == "completed", out
    assert out["output"] == {"kid": {"first": "first", "second": "second"}, "after": "after"}
    # `before` and the child's `first` never ran again; the child's `second` ran again.
    assert calls(log)[3:] == [(child, "second"), (parent, "after")]
    assert replay_of(store_url, parent, wf)
    assert replay_of(store_url, child, tmp_path / "kid.yaml")


def replay_of(store: str, run_id: str, workflow: Path) -> bool:
    from interpreter.client import load_definition

    with Client(store) as client:
        events = list(client.history(run_id, all_segments=True))
    return replay(load_definition(workflow), run_id, events).compatible


def test_a_wait_that_timed_out_waits_again_with_a_fresh_timeout(
    store_url: str, tmp_path: Path
) -> None:
    wf = write_workflow(tmp_path, WAITS)
    log = tmp_path / "calls.log"
    out = run_json(store_url, "run", str(wf), "--activities", RD_ACTIVITIES, env=env(log, False))
    assert out["status"] == "failed" and out["error"]["type"] == "Timeout"
    run_id = out["run_id"]
    proc = cli(store_url, "retry", run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    with Client(store_url) as client:
        retried = next(iter(client.history(run_id)))
        assert retried["type"] == "RunRetried" and retried["payload"]["from"] == "TimerFired"
        timers = client.get(run_id).state["timers"]
        assert [t["kind"] for t in timers.values()] == ["wait_timeout"]
        # As long as the first wait (1s), counted from the retry.
        assert next(iter(timers.values()))["due"] == retried["time"] + 1.0
        client.signal(run_id, "approve", {"ok": True})
    out = run_json(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, env=env(log, False))
    assert out["status"] == "completed" and out["output"] == {"third": {"ok": True}}, out
    assert calls(log) == [(run_id, "first"), (run_id, "third")]
    assert replay_of(store_url, run_id, wf)


def test_an_error_of_the_definition_is_retried_onto_the_fixed_one(
    store_url: str, tmp_path: Path
) -> None:
    wf = write_workflow(tmp_path, TEMPLATE)
    log = tmp_path / "calls.log"
    out = run_json(store_url, "run", str(wf), "--activities", RD_ACTIVITIES, env=env(log, False))
    assert out["status"] == "failed" and out["error"]["type"] == "ExpressionError"
    run_id = out["run_id"]

    proc = cli(store_url, "retry", run_id)
    assert proc.returncode == 1
    assert "fail the same way" in proc.stderr and "--definition" in proc.stderr

    fixes = tmp_path / "fixes"
    fixes.mkdir()
    still = write_workflow(fixes, TEMPLATE.replace("missing.value", "missing.other"), "still.yaml")
    proc = cli(store_url, "retry", run_id, "--definition", str(still))
    assert proc.returncode == 1 and "at the same step too" in proc.stderr
    moved = write_workflow(fixes, TEMPLATE.replace("{n: 1}", "{n: 2}"), "moved.yaml")
    proc = cli(store_url, "retry", run_id, "--definition", str(moved))
    assert proc.returncode == 1 and "not compatible" in proc.stderr
    with Client(store_url) as client:
        assert client.get(run_id).status == "failed"  # nothing changed by the refusals

    fixed = write_workflow(fixes, TEMPLATE.replace("vars.missing.value", "vars.first.input"))
    proc = cli(store_url, "retry", run_id, "--definition", str(fixed), "--json")
    assert proc.returncode == 0, proc.stderr
    out = run_json(store_url, "resume", run_id, "--activities", RD_ACTIVITIES, env=env(log, False))
    assert out["status"] == "completed" and out["output"] == {"second": {"n": 1}}, out
    assert calls(log) == [(run_id, "first"), (run_id, "second")]
    with Client(store_url) as client:
        segment = list(client.history(run_id))
    assert segment[0]["payload"]["redecide"] is True
    assert replay_of(store_url, run_id, fixed)


def test_a_run_that_ended_in_its_fail_state_is_not_retried(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: refuses
        states:
          check:
            type: choice
            choices:
              - when: "{{ input.ok }}"
                next: done
            default: no
          no:
            type: fail
            error: NotOk
          done:
            type: succeed
        """,
    )
    out = run_json(store_url, "run", str(wf), "--input", '{"ok": false}')
    assert out["status"] == "failed"
    proc = cli(store_url, "retry", out["run_id"])
    assert proc.returncode == 1
    assert "fail state 'no'" in proc.stderr and "own decision" in proc.stderr
    assert "tideflow fork" in proc.stderr


CALLBACK = """
name: asks
states:
  ask:
    type: activity
    activity: cb.send
    completion: callback
    input: {dir: "{{ input.dir }}", name: ask}
    timeout: {start_to_close: 1s}
    retry: {max_attempts: 1}
    result: answer
    end: true
output: "{{ vars.answer }}"
"""


def test_an_expired_callback_wait_waits_again_for_the_same_token(
    store_url: str, tmp_path: Path
) -> None:
    load_activity_modules([CB_ACTIVITIES])
    wf = write_workflow(tmp_path, CALLBACK)
    with Client(store_url) as client:
        run_id = client.start(wf, {"dir": str(tmp_path)})
        record = client.execute(run_id)
        assert record.status == "failed" and record.error["type"] == "Timeout"
        token = (tmp_path / "ask-1.token").read_text("utf-8")
        client.retry(run_id)
        # The same attempt waits again: its token works, the activity is not run again.
        client.complete_callback(token, {"approved": True})
        record = client.execute(run_id)
        assert record.status == "completed" and record.output == {"approved": True}
        assert sorted(p.name for p in tmp_path.glob("*.token")) == ["ask-1.token"]
        events = list(client.history(run_id, all_segments=True))
        assert replay(client.definition_of(record), run_id, events).compatible
