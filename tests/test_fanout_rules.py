"""Completion rules of parallel and map (all, first, quorum, tolerated failures) and detached
children with their parent-close policy, on both stores.

A race or quorum that is decided cancels the branches still running through the one
cancellation path: a running activity sees ctx.cancelled, a sleeping branch's timer is dropped,
a waited-for child run is cancelled. The CompletionDecided event and `status` say who won and
why. A detached child's state yields its run id at once; when the parent ends its policy
(abandon, cancel, terminate) is applied exactly once, also when the parent is terminated.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import activities_for_tests as acts
import pytest
from run_helpers import history, of_type, run_to_end, types_of, wait_for, write_workflow

from interpreter import Client, activity

CANCELLED_ASYNC: list[Any] = []


@activity("fan.slow_async")
async def _slow_async(value: Any) -> Any:
    """An async activity that would take 30 s; records its cancellation."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        CANCELLED_ASYNC.append(value)
        raise
    return value


pytestmark = pytest.mark.usefixtures("_activities")


@pytest.fixture
def _activities() -> None:
    assert acts.echo  # registers the test activities


def _branch(name: str, activity: str, payload: Any) -> dict[str, Any]:
    return {
        "states": {
            name: {
                "type": "activity",
                "activity": activity,
                "input": payload,
                "result": "r",
                "next": f"{name}_done",
            },
            f"{name}_done": {"type": "succeed", "output": "{{ vars.r }}"},
        }
    }


def _parallel(tmp_path: Path, branches: list[dict[str, Any]], extra: str) -> Path:
    import json

    return write_workflow(
        tmp_path,
        f"""
        name: fan
        states:
          fan:
            type: parallel
            branches: {json.dumps(branches)}
            {extra}
            {"" if "catch:" in extra else "catch: [{errors: ['*'], result: problem, next: failed}]"}
            next: done
          done: {{type: succeed, output: {{results: "{{{{ vars.results }}}}", outcomes: "{{{{ vars.outcomes | default(none) }}}}"}}}}
          failed: {{type: succeed, output: {{error: "{{{{ vars.problem }}}}", outcomes: "{{{{ vars.outcomes | default(none) }}}}"}}}}
        """,
    )


def _log(path: Path) -> list[dict[str, Any]]:
    return acts.read_json_lines(path) if path.exists() else []


# --------------------------------------------------------------------------- race


def test_race_first_success_wins_and_the_others_are_cancelled(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "hang.log"
    wf = _parallel(
        tmp_path,
        [
            _branch("slow", "test.hang", {"path": str(log)}),
            _branch("fast", "test.echo", {"v": "fast"}),
            {"states": {"nap": {"type": "sleep", "duration": "1h", "end": True}}},
        ],
        "completion: {rule: first}\n            result: results\n            outcomes: outcomes",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    out = final.output
    assert out["results"] == [None, {"v": "fast"}, None]
    outcomes = out["outcomes"]
    assert outcomes["winner"] == 1 and outcomes["met"] is True
    assert outcomes["reason"] == "branch 1 succeeded first"
    assert [b["status"] for b in outcomes["branches"]] == ["cancelled", "succeeded", "cancelled"]
    assert (outcomes["succeeded"], outcomes["failed"], outcomes["cancelled"]) == (1, 0, 2)
    events = history(client, final.id)
    decided = of_type(events, "CompletionDecided")
    assert len(decided) == 1
    assert decided[0]["state"] == "fan" and decided[0]["payload"]["winner"] == 1
    # The hanging attempt saw ctx.cancelled; the sleeping branch's timer is gone.
    wait_for(lambda: [e for e in _log(log) if e.get("event") == "abandoned"])
    assert not of_type(events, "TimerFired")
    assert "ActivityFailed" not in types_of(events)  # no fake error for the losers
    assert client.store.get_run(final.id).state["timers"] == {}


def test_race_where_every_branch_fails_is_completion_not_met(
    client: Client, tmp_path: Path
) -> None:
    boom = {"kind": "Boom", "non_retryable": True}
    wf = _parallel(
        tmp_path,
        [_branch("a", "test.raise", boom), _branch("b", "test.raise", boom)],
        "completion: {rule: first}\n            result: results\n            outcomes: outcomes\n"
        "            catch: [{errors: [CompletionNotMet], result: problem, next: failed}]",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    problem = final.output["error"]
    assert problem["type"] == "CompletionNotMet"
    assert "only 0 of 2 branches can still succeed; 1 needed" in problem["message"]
    assert set(problem["details"]["errors"]) == {"0", "1"}
    assert problem["details"]["errors"]["0"]["type"] == "Boom"
    assert [b["status"] for b in final.output["outcomes"]["branches"]] == ["failed", "failed"]


def test_a_losing_async_attempt_is_cancelled_while_the_run_goes_on(
    client: Client, tmp_path: Path
) -> None:
    """The decision itself cancels the losers' coroutines: the run still waits for a signal
    when they see their CancelledError."""
    CANCELLED_ASYNC.clear()
    wf = write_workflow(
        tmp_path,
        """
        name: asyncrace
        signals: {go: {}}
        states:
          race:
            type: parallel
            completion: {rule: first}
            branches:
              - states: {win: {type: activity, activity: test.echo, input: 1, end: true}}
              - states: {lose: {type: activity, activity: fan.slow_async, input: a, end: true}}
              - states: {lose2: {type: activity, activity: fan.slow_async, input: b, end: true}}
            next: hold
          hold: {type: wait, signal: go, end: true}
        """,
    )
    run_id = client.start(wf)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (client.execute(run_id), done.set()), daemon=True)
    thread.start()
    wait_for(lambda: sorted(CANCELLED_ASYNC) == ["a", "b"])
    assert client.get(run_id).status == "running"
    client.signal(run_id, "go", {})
    assert done.wait(20)
    assert client.get(run_id).status == "completed"


def test_a_losing_branch_cancels_its_child_run(client: Client, tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          work: {type: activity, activity: test.hang, end: true}
        """,
        name="kid.yaml",
    )
    wf = write_workflow(
        tmp_path,
        """
        name: childrace
        states:
          race:
            type: parallel
            completion: {rule: first}
            branches:
              - states: {slow: {type: child, workflow: kid, id: "{{ run.id }}-kid", end: true}}
              - states:
                  nap: {type: sleep, duration: 300ms, next: win}
                  win: {type: succeed, output: won}
            result: r
            next: done
          done: {type: succeed, output: "{{ vars.r }}"}
        """,
        name="race.yaml",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    assert final.output == [None, "won"]
    kid = wait_for(lambda: (r := client.get(f"{final.id}-kid")).status != "running" and r)
    assert kid.status == "cancelled"


# --------------------------------------------------------------------------- quorum


def test_quorum_of_two_tolerates_a_failure_and_cancels_the_rest(
    client: Client, tmp_path: Path
) -> None:
    log = tmp_path / "hang.log"
    wf = _parallel(
        tmp_path,
        [
            _branch("a", "test.echo", "A"),
            _branch("bad", "test.raise", {"kind": "Boom", "non_retryable": True}),
            _branch("slow", "test.hang", {"path": str(log)}),
            _branch("c", "test.echo", "C"),
        ],
        "completion: {rule: quorum, min_successes: 2}\n            result: results\n"
        "            outcomes: outcomes",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    assert final.output["results"] == ["A", None, None, "C"]
    outcomes = final.output["outcomes"]
    assert sorted(outcomes["winners"]) == [0, 3]
    assert [b["status"] for b in outcomes["branches"]] == [
        "succeeded",
        "failed",
        "cancelled",
        "succeeded",
    ]
    assert outcomes["reason"] == "2 of 4 branches succeeded (quorum of 2)"
    wait_for(lambda: [e for e in _log(log) if e.get("event") == "abandoned"])
    status = client.status(final.id)
    assert status["decisions"][0]["reason"] == outcomes["reason"]


def test_quorum_with_too_many_failures_fails_early(client: Client, tmp_path: Path) -> None:
    boom = {"kind": "Boom", "non_retryable": True}
    wf = _parallel(
        tmp_path,
        [
            _branch("a", "test.raise", boom),
            _branch("b", "test.raise", boom),
            _branch("slow", "test.hang", None),
        ],
        "completion: {rule: quorum, min_successes: 2, tolerated_failures: 1}\n"
        "            catch: [{errors: ['*'], result: problem, next: failed}]",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    problem = final.output["error"]
    assert problem["type"] == "CompletionNotMet"
    assert "2 branches failed, more than the 1 tolerated" in problem["message"]


# --------------------------------------------------------------------------- map tolerance


@pytest.mark.parametrize(
    ("tolerated", "status"), [(1, "completed"), ("25%", "completed"), ("20%", "caught")]
)
def test_map_tolerated_failures(
    client: Client, tmp_path: Path, tolerated: Any, status: str
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: tol
        states:
          each:
            type: map
            items: [1, 2, 3, 4]
            concurrency: 2
            completion: {{tolerated_failures: {tolerated!r}}}
            result: out
            outcomes: how
            states:
              work:
                type: choice
                choices: [{{when: "{{{{ item == 3 }}}}", next: bad}}]
                default: good
              good: {{type: succeed, output: "{{{{ item * 10 }}}}"}}
              bad: {{type: fail, error: Bad}}
            catch: [{{errors: [CompletionNotMet], result: problem, next: caught}}]
            next: done
          done: {{type: succeed, output: {{out: "{{{{ vars.out }}}}", how: "{{{{ vars.how }}}}"}}}}
          caught: {{type: succeed, output: caught}}
        """,
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    if status == "caught":
        assert final.output == "caught"
        return
    assert final.output["out"] == [10, 20, None, 40]
    how = final.output["how"]
    assert how["reason"] == "all 4 items ended, 1 failed (1 tolerated)"
    assert how["branches"][2] == {
        "status": "failed",
        "error": {"type": "Bad", "message": "Bad", "details": None},
    }


def test_race_on_a_map_stops_launching_items(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: mrace
        states:
          each:
            type: map
            items: [1, 2, 3, 4, 5, 6]
            concurrency: 2
            completion: {rule: first}
            outcomes: how
            result: out
            states:
              work: {type: activity, activity: test.echo, input: "{{ item }}", end: true}
            next: done
          done: {type: succeed, output: "{{ vars.how }}"}
        """,
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    how = final.output
    assert how["succeeded"] == 1 and how["cancelled"] == 5
    # Items past the concurrency window were never started.
    assert len(of_type(history(client, final.id), "ActivityScheduled")) == 2


def test_empty_map_race_is_not_met(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: mempty
        states:
          each:
            type: map
            items: "{{ input.items }}"
            completion: {rule: first}
            states:
              work: {type: succeed}
            next: done
          done: {type: succeed}
        """,
    )
    final = run_to_end(client, wf, {"items": []})
    assert final.status == "failed"
    assert final.error["type"] == "CompletionNotMet"
    assert "no item to run" in final.error["message"]


# --------------------------------------------------------------------------- compensations


def test_compensations_of_a_cancelled_branch_stay_on_the_run(
    client: Client, tmp_path: Path
) -> None:
    """A losing branch whose step completed keeps its compensation: it runs when the run later
    fails, like any completed step's (a step cancelled mid-attempt records none)."""
    log = tmp_path / "comp.log"
    wf = write_workflow(
        tmp_path,
        f"""
        name: compfan
        states:
          fan:
            type: parallel
            completion: {{rule: quorum, min_successes: 1}}
            branches:
              - states:
                  first:
                    type: activity
                    activity: test.append
                    input: {{path: "{log}", line: kept}}
                    compensate: {{activity: test.append, input: {{path: "{log}", line: undo-kept}}}}
                    next: forever
                  forever: {{type: activity, activity: test.hang, end: true}}
              - states:
                  nap: {{type: sleep, duration: 200ms, next: win}}
                  win: {{type: succeed, output: won}}
            next: boom
          boom: {{type: fail, error: Later}}
        """,
    )
    final = run_to_end(client, wf)
    assert final.status == "failed" and final.error["type"] == "Later"
    lines = [e["line"] for e in _log(log)]
    assert lines == ["kept", "undo-kept"]


# --------------------------------------------------------------------------- detached children


def _detached(tmp_path: Path, policy: str | None, after: str = "done") -> Path:
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          work: {type: activity, activity: test.hang, end: true}
        """,
        name="kid.yaml",
    )
    close = f"parent_close: {policy}" if policy else ""
    hold = "hold: {type: wait, signal: go, next: done}" if after == "hold" else ""
    return write_workflow(
        tmp_path,
        f"""
        name: boss
        signals: {{go: {{}}}}
        states:
          spawn:
            type: child
            workflow: kid
            detached: true
            {close}
            result: kid_id
            next: {after}
          {hold}
          done: {{type: succeed, output: "{{{{ vars.kid_id }}}}"}}
        """,
        name="boss.yaml",
    )


@pytest.mark.parametrize(
    ("policy", "child_status"),
    [(None, "terminated"), ("terminate", "terminated"), ("cancel", "cancelled")],
)
def test_detached_child_gets_its_parent_close_policy(
    client: Client, tmp_path: Path, policy: str | None, child_status: str
) -> None:
    wf = _detached(tmp_path, policy)
    run_id = client.start(wf, None, run_id="boss-1")
    final = client.execute(run_id)
    assert final.status == "completed", final.error
    assert final.output == "boss-1.spawn"  # the state's result: the child's run id
    child = client.get("boss-1.spawn")
    assert child.parent_id == "boss-1"
    wait_for(lambda: client.get("boss-1.spawn").status == child_status)
    events = history(client, run_id)
    started = of_type(events, "ChildStarted")[0]["payload"]
    assert started["detached"] is True
    assert started["parent_close"] == (policy or "terminate")
    applied = of_type(events, "ParentClosePolicyApplied")
    assert [e["payload"] for e in applied] == [
        {"child": "boss-1.spawn", "policy": policy or "terminate"}
    ]
    assert client.status(run_id)["children"] == ["boss-1.spawn"]


def test_abandoned_detached_child_runs_on(client: Client, tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          work: {type: activity, activity: test.echo, input: kid-done, end: true}
        """,
        name="kid.yaml",
    )
    wf = write_workflow(
        tmp_path,
        """
        name: boss
        states:
          spawn: {type: child, workflow: kid, detached: true, parent_close: abandon, result: k,
                  next: done}
          done: {type: succeed, output: "{{ vars.k }}"}
        """,
        name="boss.yaml",
    )
    final = run_to_end(client, wf)
    assert final.status == "completed"
    kid = client.execute(final.output)
    assert kid.status == "completed" and kid.output == "kid-done"


def test_terminating_the_parent_applies_each_policy(client: Client, tmp_path: Path) -> None:
    """An outside terminate of the parent follows the detached children's policies; waited-for
    children are terminated with it, as before."""
    wf = _detached(tmp_path, "abandon", after="hold")
    run_id = client.start(wf, None, run_id="boss-t")
    done = threading.Event()

    def drive() -> None:
        try:
            client.execute(run_id)
        finally:
            done.set()

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    wait_for(lambda: client.store.get_run("boss-t.spawn") is not None)
    wait_for(lambda: client.get(run_id).state.get("detached"))
    client.terminate(run_id, "stop")
    assert client.get(run_id).status == "terminated"
    applied = of_type(history(client, run_id), "ParentClosePolicyApplied")
    assert [e["payload"]["policy"] for e in applied] == ["abandon"]
    assert client.get("boss-t.spawn").status == "running"  # abandoned: it runs on
    client.terminate("boss-t.spawn", "clean up")
    assert done.wait(30)


def test_detached_child_that_cannot_start_fails_its_state(client: Client, tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          work: {type: succeed}
        """,
        name="kid.yaml",
    )
    run_to_end(client, tmp_path / "kid.yaml")
    taken = client.list_runs(workflow="kid")[0].id
    wf = write_workflow(
        tmp_path,
        f"""
        name: boss
        states:
          spawn: {{type: child, workflow: kid, id: "{taken}", detached: true,
                  catch: [{{errors: [ChildFailed], result: e, next: done}}], next: done}}
          done: {{type: succeed, output: "{{{{ vars.e.details.error.type | default('none') }}}}"}}
        """,
    )
    final = run_to_end(client, wf)
    assert final.status == "completed", final.error
    assert final.output == "ChildIdInUse"


def test_continue_as_new_applies_the_parent_close_policy(client: Client, tmp_path: Path) -> None:
    """A segment that continues as new ends: its detached child gets its policy then, once."""
    write_workflow(
        tmp_path,
        """
        name: kid
        states:
          work: {type: activity, activity: test.hang, end: true}
        """,
        name="kid.yaml",
    )
    wf = write_workflow(
        tmp_path,
        """
        name: looper
        input_schema: {type: object, properties: {round: {type: integer}}}
        states:
          first:
            type: choice
            choices: [{when: "{{ (input.round | default(0)) >= 1 }}", next: done}]
            default: spawn
          spawn: {type: child, workflow: kid, detached: true, id: "{{ run.id }}-kid", next: again}
          again: {type: continue_as_new, input: {round: 1}}
          done: {type: succeed, output: ended}
        """,
        name="looper.yaml",
    )
    final = run_to_end(client, wf, {})
    assert final.status == "completed" and final.output == "ended"
    kid = wait_for(lambda: (r := client.get(f"{final.id}-kid")).status != "running" and r)
    assert kid.status == "terminated"
    events = list(client.store.iter_events(final.id))
    applied = [e for e in events if e["type"] == "ParentClosePolicyApplied"]
    assert [e["payload"]["policy"] for e in applied] == ["terminate"]
