"""The pure core's update decisions (interpreter/core/updates.py), without a store or a worker:
the same definition, state and update always give the same outcome, events and commands."""

from __future__ import annotations

import copy
from typing import Any

from ruamel.yaml import YAML

from interpreter.core.definition import Definition
from interpreter.core.engine import Engine
from interpreter.core.records import new_run_state
from interpreter.core.updates import WAKES, apply_update

NOW = 1_800_000_000.0

WORKFLOW = """
dsl: "1.0"
name: counter
vars: {count: 0, limit: 10}
updates:
  add:
    validator: "{{ payload <= vars.limit }}"
    message: "{{ payload }} is over the limit of {{ vars.limit }}"
    vars: {count: "{{ vars.count + payload }}", last: "{{ vars.count }}"}
    returns: {count: "{{ vars.count }}", before: "{{ vars.last }}"}
  stop:
    returns: "{{ vars.count }}"
  bad_vars:
    vars: {count: "{{ vars.nope.deeper }}"}
states:
  work:
    type: sleep
    duration: 1h
    next: hold
  hold:
    type: wait
    signal: stop
    result: stopped_with
    next: done
  done:
    type: succeed
    output: "{{ vars.count }}"
"""


def started(text: str = WORKFLOW) -> tuple[Definition, dict[str, Any]]:
    defn = Definition.from_data(YAML(typ="safe").load(text))
    state = new_run_state(defn, "r1", None, NOW)
    engine = Engine(defn, state, NOW)
    engine.start()
    engine.advance()
    return defn, state


def decide(
    defn: Definition, state: dict[str, Any], update_id: str, name: str, payload: Any
) -> Engine:
    engine = Engine(defn, state, NOW + 1)
    apply_update(engine, engine, 7, update_id, name, payload)
    return engine


def outcome_of(engine: Engine) -> dict[str, Any]:
    kinds = [c.kind for c in engine.commands]
    assert kinds == ["consume_signal", "update_outcome"], kinds
    assert engine.commands[0].data == {"id": 7}
    result: dict[str, Any] = engine.commands[1].data
    return result


def root_vars(state: dict[str, Any]) -> dict[str, Any]:
    vars_: dict[str, Any] = state["frames"][state["root"]]["vars"]
    return vars_


def test_an_applied_update_sets_vars_returns_after_them_and_records_one_event() -> None:
    defn, state = started()
    engine = decide(defn, state, "u1", "add", 4)
    assert outcome_of(engine) == {
        "id": "u1",
        "status": "applied",
        "result": {"count": 4, "before": 0},
        "message": None,
    }
    assert root_vars(state) == {"count": 4, "limit": 10, "last": 0}
    [event] = engine.events
    assert (event.type, event.state) == ("UpdateApplied", "work")
    assert event.payload == {
        "update": "add",
        "id": "u1",
        "payload": 4,
        "result": {"count": 4, "before": 0},
    }


def test_a_rejected_update_changes_nothing_and_records_nothing() -> None:
    defn, state = started()
    before = copy.deepcopy(state)
    for name, payload, message in (
        ("add", 11, "11 is over the limit of 10"),
        ("add", "x", "update 'add', validator"),  # '<=' between str and int fails
        ("bad_vars", None, "update 'bad_vars', vars"),
    ):
        engine = decide(defn, state, "u", name, payload)
        decided = outcome_of(engine)
        assert decided["status"] == "rejected" and message in decided["message"], decided
        assert engine.events == []
        assert state == before


def test_an_update_wakes_a_wait_in_progress_for_its_name() -> None:
    defn, state = started()
    engine = Engine(defn, state, NOW + 3601)
    engine.fire_due_timers()  # the sleep ends: the run waits for `stop`
    assert state["frames"][state["root"]]["status"] == "waiting"
    decide(defn, state, "u1", "add", 5)
    engine = decide(defn, state, "u2", "stop", "now")
    assert outcome_of(engine)["result"] == 5
    assert [e.type for e in engine.events] == [
        "UpdateApplied",
        "SignalReceived",
        "StateEntered",
        "RunCompleted",
    ]
    assert state["status"] == "completed" and state["output"] == 5
    assert WAKES not in state


def test_an_update_before_its_wait_is_kept_until_the_wait_begins() -> None:
    defn, state = started()
    engine = decide(defn, state, "u1", "stop", "early")
    assert outcome_of(engine)["status"] == "applied"
    assert state[WAKES] == [{"name": "stop", "payload": "early", "id": "u1"}]
    assert [e.type for e in engine.events] == ["UpdateApplied"]
    engine = Engine(defn, state, NOW + 3601)
    engine.fire_due_timers()
    assert [e.type for e in engine.events] == [
        "TimerFired",
        "StateEntered",
        "SignalReceived",
        "StateEntered",
        "RunCompleted",
    ]
    assert root_vars(state)["stopped_with"] == "early"
    assert WAKES not in state


def test_an_update_no_wait_names_is_not_kept() -> None:
    defn, state = started()
    decide(defn, state, "u1", "add", 1)
    assert WAKES not in state


def test_a_cancelling_run_rejects_updates() -> None:
    defn, state = started()
    engine = Engine(defn, state, NOW)
    engine.cancel()
    engine = decide(defn, state, "u1", "add", 1)
    assert outcome_of(engine)["status"] == "rejected"
    assert "the run is ending" in outcome_of(engine)["message"]


def test_the_same_inputs_give_the_same_decision() -> None:
    defn, state = started()
    twin = copy.deepcopy(state)
    one, two = decide(defn, state, "u1", "add", 3), decide(defn, twin, "u1", "add", 3)
    assert one.commands == two.commands and one.events == two.events and state == twin
