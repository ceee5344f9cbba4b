"""Callback tasks (`completion: callback`) end to end on both stores: each map item and each
attempt gets its own token, retries make new tokens, start_to_close bounds the whole wait,
heartbeats from outside keep a wait alive, a completion that comes while the activity still
runs wins, and cancelling a run makes its tokens late."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cb_activities  # noqa: F401  (registers the cb.* activities)
import pytest
from run_helpers import Driven, history, of_type, token, types_of, wait_for, write_workflow

from interpreter import CallbackRefused, Client


def one_step(tmp_path: Path, extra: str = "", state_extra: str = "", name: str = "x") -> Path:
    return write_workflow(
        tmp_path,
        f"""
        name: callbacks
        {extra}
        states:
          ask:
            type: activity
            activity: cb.send
            completion: callback
            input: {{dir: "{tmp_path}", name: {name}, linger: "{{{{ input.linger }}}}"}}
            {state_extra}
            end: true
        """,
    )


def start(client: Client, store_url: str, wf: Path, input_: Any = None) -> Driven:
    run_id = client.start(wf, input_ or {"linger": 0})
    return Driven(store_url, run_id)


def test_each_map_item_waits_for_its_own_token(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: per_item
        states:
          each:
            type: map
            items: [a, b, c]
            states:
              ask:
                type: activity
                activity: cb.send
                completion: callback
                timeout: {{start_to_close: 1h}}
                input: {{dir: "{tmp_path}", name: "{{{{ item }}}}"}}
                end: true
            result: answers
            end: true
        """,
    )
    driven = start(client, store_url, wf)
    tokens = {name: token(tmp_path, name) for name in "abc"}
    assert len(set(tokens.values())) == 3
    for name in "cab":  # any order; the results keep the item order
        assert client.complete_callback(tokens[name], f"answer-{name}")["attempt"] == 1
    record = driven.result()
    assert record.status == "completed"
    assert record.output == ["answer-a", "answer-b", "answer-c"]


def test_a_failed_callback_retries_with_a_new_token(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = one_step(tmp_path, state_extra="retry: {max_attempts: 2, initial_interval: 100ms}")
    driven = start(client, store_url, wf)
    first = token(tmp_path, "x", 1)
    client.fail_callback(first, "Busy", "try later", {"queue": 3})
    second = token(tmp_path, "x", 2)
    assert second != first
    with pytest.raises(CallbackRefused) as late:
        client.complete_callback(first, "too late")
    assert late.value.reason == "used"  # the first token was spent by its failure
    client.complete_callback(second, {"done": True})
    record = driven.result()
    assert (record.status, record.output) == ("completed", {"done": True})
    events = history(client, record.id)
    failed = of_type(events, "ActivityFailed")[0]["payload"]
    assert failed["error"] == {"type": "Busy", "message": "try later", "details": {"queue": 3}}
    assert failed["will_retry"] is True
    assert [e["attempt"] for e in of_type(events, "CallbackWaiting")] == [1, 2]


def test_start_to_close_bounds_the_whole_wait(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = one_step(
        tmp_path, state_extra="timeout: {start_to_close: 1s}\n            retry: {max_attempts: 1}"
    )
    driven = start(client, store_url, wf)
    sent = token(tmp_path, "x")
    record = driven.result()  # nobody answers
    assert record.status == "failed"
    assert record.error["type"] == "Timeout"
    assert record.error["details"] == {"timeout": "start_to_close", "callback": True}
    with pytest.raises(CallbackRefused) as late:
        client.complete_callback(sent, 1)
    assert late.value.reason == "late"


def test_heartbeats_from_outside_keep_the_wait_alive(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = one_step(
        tmp_path,
        state_extra="timeout: {start_to_close: 1h, heartbeat: 1s}\n"
        "            retry: {max_attempts: 1}",
    )
    driven = start(client, store_url, wf)
    sent = token(tmp_path, "x")
    stop = threading.Event()
    for beat in range(6):  # 3 s of heartbeats every 0.5 s: three times the interval
        client.heartbeat_callback(sent, {"beat": beat})
        stop.wait(0.5)
    assert driven.thread.is_alive(), "the wait ended although heartbeats came"
    client.complete_callback(sent, "finished")
    assert driven.result().output == "finished"


def test_no_heartbeat_fails_the_wait(client: Client, store_url: str, tmp_path: Path) -> None:
    wf = one_step(
        tmp_path,
        state_extra="timeout: {start_to_close: 1h, heartbeat: 500ms}\n"
        "            retry: {max_attempts: 1}",
    )
    driven = start(client, store_url, wf)
    token(tmp_path, "x")
    record = driven.result()
    assert record.status == "failed" and record.error["type"] == "HeartbeatTimeout"


def test_a_completion_while_the_activity_runs_wins(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = one_step(tmp_path, state_extra="timeout: {start_to_close: 1h}")
    driven = start(client, store_url, wf, {"linger": 30})
    client.complete_callback(token(tmp_path, "x"), "early")
    record = driven.result()
    assert (record.status, record.output) == ("completed", "early")
    assert (tmp_path / "x.cancelled").exists(), "the activity did not see ctx.cancelled"
    types = types_of(history(client, record.id))
    assert "CallbackWaiting" not in types and "CallbackReceived" in types


def test_cancelling_the_run_makes_its_token_late(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    wf = one_step(tmp_path, state_extra="timeout: {start_to_close: 1h}")
    driven = start(client, store_url, wf)
    sent = token(tmp_path, "x")
    wait_for(lambda: of_type(history(client, driven_id(client)), "CallbackWaiting"), 30)
    client.cancel(driven_id(client))
    assert driven.result().status == "cancelled"
    with pytest.raises(CallbackRefused) as late:
        client.heartbeat_callback(sent)
    assert late.value.reason == "late"


def driven_id(client: Client) -> str:
    (run,) = client.list_runs()
    return run.id


def test_the_store_keeps_only_the_tokens_hash(sqlite_url: str, tmp_path: Path) -> None:
    """Neither the store file nor its WAL holds a token; its sha256 is there."""
    import hashlib

    with Client(sqlite_url) as client:
        driven = start(
            client, sqlite_url, one_step(tmp_path, state_extra="timeout: {start_to_close: 1h}")
        )
        sent = token(tmp_path, "x")
        assert sent.startswith("tfcb_") and len(sent) == 48
        wait_for(lambda: of_type(history(client, driven_id(client)), "CallbackWaiting"), 30)
        stored = b"".join(
            Path(sqlite_url + suffix).read_bytes()
            for suffix in ("", "-wal")
            if Path(sqlite_url + suffix).exists()
        )
        assert sent.encode() not in stored
        assert hashlib.sha256(sent.encode()).hexdigest().encode() in stored
        client.complete_callback(sent, "ok")
        assert driven.result().status == "completed"
