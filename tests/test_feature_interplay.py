"""Features built side by side, used together: a race whose loser waits for a callback, an
update that wakes a wait for one of several names, an exit handler before a detached child's
parent-close policy, and retry by error inside an exit handler. Each on every store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import activities_for_tests  # noqa: F401  (registers the test.* activities)
import cb_activities  # noqa: F401  (registers the cb.* activities)
import pytest
from run_helpers import history, of_type, types_of, wait_for, write_workflow

from interpreter import CallbackRefused, Client


def test_a_race_lost_by_a_callback_branch_makes_its_token_late(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: race-callback
        states:
          race:
            type: parallel
            completion: {{rule: first}}
            outcomes: how
            branches:
              - states:
                  ask:
                    type: activity
                    activity: cb.send
                    completion: callback
                    input: {{dir: "{tmp_path}", name: slow}}
                    timeout: {{start_to_close: 1h}}
                    end: true
              - states:
                  quick:
                    type: activity
                    activity: test.sleep
                    input: {{seconds: 0.3}}
                    end: true
            next: done
          done: {{type: succeed, output: "{{{{ vars.how }}}}"}}
        """,
    )
    run = client.execute(client.start(wf, {}))
    assert run.status == "completed", run.error
    assert run.output["winner"] == 1 and run.output["met"] is True
    assert [b["status"] for b in run.output["branches"]] == ["cancelled", "succeeded"]
    token = (tmp_path / "slow-1.token").read_text(encoding="utf-8")
    with pytest.raises(CallbackRefused) as refused:
        client.complete_callback(token, {"approved": True})
    assert refused.value.reason == "late"
    assert of_type(history(client, run.id), "CallbackReceived") == []


def test_an_update_wakes_a_wait_for_one_of_several_names(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: nudge
        vars: {nudges: 0}
        signals:
          approve: {schema: {type: object}}
        updates:
          nudge:
            schema: {type: object, required: [by], properties: {by: {type: string}}}
            vars: {nudges: "{{ vars.nudges + 1 }}"}
            returns: "{{ vars.nudges }}"
        states:
          wait:
            type: wait
            signals: [approve, nudge]
            timeout: 1h
            result: got
            next: done
          done: {type: succeed, output: {got: "{{ vars.got }}", nudges: "{{ vars.nudges }}"}}
        """,
    )
    run_id = client.start(wf, {})
    finished: dict[str, Any] = {}

    def drive() -> None:
        with Client(store_url) as own:
            finished["run"] = own.execute(run_id)

    worker = threading.Thread(target=drive, daemon=True)
    worker.start()
    wait_for(lambda: client.get(run_id).state["frames"] and client.status(run_id), 30)
    assert client.update(run_id, "nudge", {"by": "ana"}, timeout=30) == 1
    worker.join(60)
    run = finished["run"]
    assert run.status == "completed", run.error
    assert run.output == {"got": {"signal": "nudge", "payload": {"by": "ana"}}, "nudges": 1}


def test_the_exit_handler_runs_before_a_detached_childs_policy(
    client: Client, tmp_path: Path
) -> None:
    write_workflow(
        tmp_path,
        """
        name: drip
        states:
          nap: {type: sleep, duration: 1h, end: true}
        """,
        name="drip.yaml",
    )
    wf = write_workflow(
        tmp_path,
        """
        name: parent
        states:
          spawn:
            type: child
            workflow: drip.yaml
            detached: true
            parent_close: terminate
            result: child_id
            next: done
          done: {type: succeed, output: {child: "{{ vars.child_id }}"}}
        on_exit:
          always:
            states:
              note:
                type: activity
                activity: test.fail_sequence
                input: {path: "%s", failures: [{type: Busy}]}
                retry:
                  - {errors: [Busy], max_attempts: 2, initial_interval: 10ms}
                  - {errors: ["*"], max_attempts: 1}
                end: true
        """
        % (tmp_path / "calls"),
    )
    run = client.execute(client.start(wf, {}))
    assert run.status == "completed", run.error
    events = types_of(
        history(client, run.id),
        {"RetryScheduled", "ExitHandlerCompleted", "ParentClosePolicyApplied", "RunCompleted"},
    )
    assert events == [
        "RetryScheduled",
        "ExitHandlerCompleted",
        "ParentClosePolicyApplied",
        "RunCompleted",
    ]
    child = client.get(run.output["child"])
    wait_for(lambda: client.get(child.id).status == "terminated", 30)
