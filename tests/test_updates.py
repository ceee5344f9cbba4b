"""Updates (Client.update, `tideflow update`) against a real worker, and query arguments.

The worker runs in a thread of this process on its own store object (the same database), as
another process's worker would; the CLI tests run `tideflow` as a real subprocess.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, run_cli
from run_helpers import history, types_of, wait_for, write_workflow

from interpreter import (
    Client,
    InputInvalid,
    RunFinished,
    TideflowError,
    UpdateRejected,
    UpdateTimeout,
)

ENTITY = SAMPLES / "entity_greeting.yaml"


def root_vars(client: Client, run_id: str) -> dict[str, Any]:
    vars_: dict[str, Any] = client.status(run_id)["vars"]
    return vars_


def stored_updates(client: Client, run_id: str) -> list[Any]:
    return [i for i in client.store.read_inbox(run_id)[0] if i.kind == "update"]


# --------------------------------------------------------------------------- applied
def test_an_update_sets_vars_returns_its_value_and_is_recorded(
    client: Client, start_worker: Callable[[], None]
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    start_worker()
    assert client.update(run_id, "set_language", {"language": "fr"}, timeout=30) == "en"
    assert client.query(run_id, "greeting") == "Bonjour, Ada!"
    assert client.update(run_id, "set_language", {"language": "de"}, timeout=30) == "fr"
    assert client.query(run_id, "status") == {"language": "de", "changes": 2}
    applied = [e for e in history(client, run_id) if e["type"] == "UpdateApplied"]
    assert [
        (e["payload"]["update"], e["payload"]["payload"], e["payload"]["result"]) for e in applied
    ] == [
        ("set_language", {"language": "fr"}, "en"),
        ("set_language", {"language": "de"}, "fr"),
    ]
    assert client.get(run_id).status == "running"  # set_language wakes no wait


def test_an_update_wakes_the_wait_of_its_name(
    client: Client, start_worker: Callable[[], None]
) -> None:
    run_id = client.start(ENTITY, {"name": "Bo"})
    start_worker()
    client.update(run_id, "set_language", {"language": "es"}, timeout=30)
    assert client.update(run_id, "finish", timeout=30) == "Hola, Bo!"
    run = client.result(run_id, timeout=30)
    assert run.status == "completed"
    assert run.output == {"greeting": "Hola, Bo!", "language": "es", "changes": 1}
    assert types_of(history(client, run_id))[-5:] == [
        "UpdateApplied",
        "UpdateApplied",
        "SignalReceived",
        "StateEntered",
        "RunCompleted",
    ]


def test_an_update_is_applied_while_an_activity_runs(
    client: Client, start_worker: Callable[[], None], tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
dsl: "1.0"
name: busy
vars: {count: 0}
updates:
  bump:
    vars: {count: "{{ vars.count + payload }}"}
    returns: "{{ vars.count }}"
states:
  work:
    type: activity
    activity: test.sleep
    input: {seconds: 3}
    next: done
  done:
    type: succeed
    output: "{{ vars.count }}"
""",
    )
    run_id = client.start(wf)
    start_worker()
    wait_for(lambda: "ActivityStarted" in types_of(history(client, run_id)))
    assert client.update(run_id, "bump", 5, timeout=30) == 5
    assert client.update(run_id, "bump", 2, timeout=30) == 7
    assert client.get(run_id).status == "running"  # both applied before the activity ended
    assert client.result(run_id, timeout=30).output == 7


# --------------------------------------------------------------------------- rejected
def test_a_rejected_update_changes_nothing_and_records_no_event(
    client: Client, start_worker: Callable[[], None]
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    start_worker()
    wait_for(lambda: client.get(run_id).state["frames"])
    before = root_vars(client, run_id)
    with pytest.raises(UpdateRejected) as caught:
        client.update(run_id, "set_language", {"language": "tlh"}, update_id="bad", timeout=30)
    assert caught.value.message == "unsupported language tlh (supported: en, fr, de, es)"
    assert root_vars(client, run_id) == before
    assert "UpdateApplied" not in types_of(history(client, run_id))
    assert stored_updates(client, run_id) == []  # decided: its inbox item is consumed
    # The same id gives the same rejection, without asking the run again.
    with pytest.raises(UpdateRejected, match="unsupported language tlh"):
        client.update(run_id, "set_language", {"language": "tlh"}, update_id="bad")


def test_a_validator_or_template_that_fails_rejects_with_its_error(
    client: Client, start_worker: Callable[[], None], tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
dsl: "1.0"
name: strict
vars: {limit: 10, total: 0}
updates:
  add:
    validator: "{{ payload.amount <= vars.limit }}"
    vars: {total: "{{ vars.total + payload.amount }}"}
    returns: "{{ vars.total }}"
  broken:
    returns: "{{ vars.missing.deeper }}"
states:
  hold:
    type: wait
    signal: broken
    next: done
  done:
    type: succeed
""",
    )
    run_id = client.start(wf)
    start_worker()
    with pytest.raises(UpdateRejected, match="was rejected by its validator"):
        client.update(run_id, "add", {"amount": 11}, timeout=30)
    with pytest.raises(UpdateRejected, match="update 'add', validator"):
        client.update(run_id, "add", {"other": 1}, timeout=30)  # payload.amount is undefined
    with pytest.raises(UpdateRejected, match="update 'broken', returns"):
        client.update(run_id, "broken", timeout=30)
    assert root_vars(client, run_id) == {"limit": 10, "total": 0}
    assert client.update(run_id, "add", {"amount": 4}, timeout=30) == 4


# --------------------------------------------------------------------------- refused up front
def test_an_undeclared_update_or_a_bad_payload_is_refused_before_anything_is_stored(
    client: Client, store_url: str
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    with pytest.raises(InputInvalid, match="declares no update 'rename'") as caught:
        client.update(run_id, "rename", {})
    assert caught.value.hint == "declared updates: finish, set_language"
    with pytest.raises(InputInvalid, match="is invalid at /language"):
        client.update(run_id, "set_language", {"language": 3})
    for args, expected in (
        (("rename",), "declares no update 'rename'"),
        (("set_language", "--data", '{"language": 3}'), "is invalid at /language"),
        (("set_language", "--data", "{nope"), "not valid JSON"),
        (("set_language", "--data", '{"language": "fr"}', "--id", ""), "update id"),
    ):
        proc = run_cli("update", run_id, *args, "--db", store_url)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert stored_updates(client, run_id) == []


def test_an_update_id_used_for_another_update_is_refused(client: Client) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    with pytest.raises(UpdateTimeout):
        client.update(run_id, "set_language", {"language": "fr"}, update_id="u", timeout=0)
    with pytest.raises(InputInvalid, match="already used for another payload"):
        client.update(run_id, "set_language", {"language": "de"}, update_id="u", timeout=0)
    with pytest.raises(InputInvalid, match="already used for update 'set_language'"):
        client.update(run_id, "finish", update_id="u", timeout=0)
    assert len(stored_updates(client, run_id)) == 1


# --------------------------------------------------------------------------- once, and waiting
def test_the_same_update_id_returns_the_same_outcome_and_applies_once(
    client: Client, start_worker: Callable[[], None]
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    # No worker yet: the call times out, the update stays stored.
    with pytest.raises(UpdateTimeout, match="id 'u1'") as caught:
        client.update(run_id, "set_language", {"language": "fr"}, update_id="u1", timeout=0.1)
    assert caught.value.hint is not None and "worker" in caught.value.hint
    assert "--id u1" in caught.value.hint
    start_worker()
    for _ in range(3):
        assert (
            client.update(run_id, "set_language", {"language": "fr"}, update_id="u1", timeout=30)
            == "en"
        )
    assert client.query(run_id, "status") == {"language": "fr", "changes": 1}
    assert types_of(history(client, run_id)).count("UpdateApplied") == 1


def test_a_run_that_ends_before_applying_the_update_is_a_clear_error(client: Client) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    with pytest.raises(UpdateTimeout):
        client.update(run_id, "set_language", {"language": "fr"}, update_id="u1", timeout=0)
    client.terminate(run_id)
    with pytest.raises(
        RunFinished, match=r"ended \(terminated\) before it applied update 'set_language'"
    ):
        client.update(run_id, "set_language", {"language": "fr"}, update_id="u1", timeout=5)
    with pytest.raises(RunFinished, match="already ended"):  # a new update for an ended run
        client.update(run_id, "set_language", {"language": "fr"}, timeout=5)


def test_a_run_ended_by_another_update_still_answers_an_applied_id(
    client: Client, start_worker: Callable[[], None], store_url: str
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    start_worker()
    client.update(run_id, "finish", update_id="f", timeout=30)
    client.result(run_id, timeout=30)
    assert client.update(run_id, "finish", update_id="f") == "Hello, Ada!"
    proc = run_cli("update", run_id, "finish", "--id", "f", "--db", store_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "run_id": run_id,
        "update": "finish",
        "id": "f",
        "status": "applied",
        "value": "Hello, Ada!",
    }


def test_cli_update_prints_the_value_and_a_rejection_exits_1(
    client: Client, start_worker: Callable[[], None], store_url: str
) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    start_worker()
    proc = run_cli(
        "update", run_id, "set_language", "--data", '{"language": "fr"}', "--db", store_url
    )
    assert (proc.returncode, proc.stdout) == (0, "en\n"), proc.stderr
    proc = run_cli(
        "update",
        run_id,
        "set_language",
        "--data",
        '{"language": "xx"}',
        "--db",
        store_url,
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "rejected" and out["message"].startswith("unsupported language xx")
    assert "error: unsupported language xx" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_update_without_a_worker_times_out_with_exit_3(client: Client, store_url: str) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    proc = run_cli(
        "update", run_id, "finish", "--id", "later", "--timeout", "0.2", "--db", store_url
    )
    assert proc.returncode == 3, proc.stderr  # a timeout, as for `tideflow result --timeout`
    assert "was not applied within 0.2s" in proc.stderr and "--id later" in proc.stderr
    proc = run_cli("update", "nope", "finish", "--db", store_url)
    assert proc.returncode == 4 and "no run with id 'nope'" in proc.stderr


# --------------------------------------------------------------------------- query args
def test_a_query_sees_its_args(client: Client, store_url: str) -> None:
    run_id = client.start(ENTITY, {"name": "Ada"})
    assert client.query(run_id, "greeting_in", args={"language": "de"}) == "Hallo, Ada!"
    assert client.query(run_id, "greeting_in", args={"language": "xx"}) == "?, Ada!"
    with pytest.raises(TideflowError, match="query 'greeting_in'"):
        client.query(run_id, "greeting_in")  # args is None: args.language is undefined
    with pytest.raises(InputInvalid, match="args of query"):
        client.query(run_id, "greeting_in", args=float("nan"))
    proc = run_cli(
        "query", run_id, "greeting_in", "--data", '{"language": "fr"}', "--db", store_url
    )
    assert (proc.returncode, proc.stdout) == (0, "Bonjour, Ada!\n"), proc.stderr
    proc = run_cli(
        "query", run_id, "greeting_in", "--data", '{"language": "es"}', "--db", store_url, "--json"
    )
    assert json.loads(proc.stdout)["value"] == "Hola, Ada!"


def test_an_update_applied_before_its_wait_begins_wakes_it_when_it_does(
    client: Client, start_worker: Callable[[], None], tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
dsl: "1.0"
name: early
vars: {note: none}
updates:
  go:
    vars: {note: "{{ payload }}"}
    returns: accepted
states:
  work:
    type: activity
    activity: test.sleep
    input: {seconds: 2}
    next: hold
  hold:
    type: wait
    signal: go
    result: woken_by
    next: done
  done:
    type: succeed
    output: {note: "{{ vars.note }}", woken_by: "{{ vars.woken_by }}"}
""",
    )
    run_id = client.start(wf)
    start_worker()
    wait_for(lambda: "ActivityStarted" in types_of(history(client, run_id)))
    assert client.update(run_id, "go", "early", timeout=30) == "accepted"
    run = client.result(run_id, timeout=30)
    assert run.output == {"note": "early", "woken_by": "early"}
    assert types_of(
        history(client, run_id), {"UpdateApplied", "ActivityCompleted", "SignalReceived"}
    ) == [
        "UpdateApplied",
        "ActivityCompleted",
        "SignalReceived",
    ]


WAITS = """
name: waits
signals:
  go: {schema: {type: object}}
updates:
  nudge: {schema: {type: object}}
  poke: {schema: {type: object}}
states:
  hold:
    type: wait
    %s
    next: done
  done: {type: succeed}
"""


@pytest.mark.parametrize(
    ("names", "current", "text"),
    [
        ("signal: go", {"waiting_for": "signal", "signal": "go"}, "signal go"),
        ("signal: nudge", {"waiting_for": "update", "update": "nudge"}, "update nudge"),
        (
            "signals: [nudge, poke]",
            {"waiting_for": "update", "update": ["nudge", "poke"]},
            "one of the updates nudge, poke",
        ),
        (
            "signals: [go, nudge]",
            {"waiting_for": "signal_or_update", "signal": ["go"], "update": ["nudge"]},
            "one of signal go, update nudge",
        ),
    ],
    ids=["signal", "update", "updates", "both"],
)
def test_status_says_whether_a_wait_waits_for_a_signal_an_update_or_both(
    client: Client,
    start_worker: Callable[[], None],
    store_url: str,
    tmp_path: Path,
    names: str,
    current: dict[str, Any],
    text: str,
) -> None:
    run_id = client.start(write_workflow(tmp_path, WAITS % names))
    start_worker()
    wait_for(lambda: client.status(run_id)["current"])
    proc = run_cli("status", run_id, "--db", store_url, "--json")
    assert proc.returncode == 0, proc.stderr
    [found] = json.loads(proc.stdout)["current"]
    assert {k: v for k, v in found.items() if k != "frame"} == {"state": "hold", **current}
    proc = run_cli("status", run_id, "--db", store_url)
    assert proc.returncode == 0, proc.stderr
    assert f"current    hold (waiting for {text})\n" in proc.stdout
